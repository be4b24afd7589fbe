from django.apps import AppConfig


class TrainingConfig(AppConfig):
    name = "hub.training"
    label = "training"
    verbose_name = "Training jobs"

    def ready(self) -> None:
        from hub.catalog.signals import version_published
        from hub.training import demo, tasks  # noqa: F401 - tasks connects the receiver that enqueues queued jobs

        # The demo stack is requested once both of its members are published.
        version_published.connect(demo.on_version_published, dispatch_uid="training.demo_stack")
