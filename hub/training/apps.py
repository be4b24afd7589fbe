from django.apps import AppConfig


class TrainingConfig(AppConfig):
    name = "hub.training"
    label = "training"
    verbose_name = "Training jobs"

    def ready(self) -> None:
        from hub.training import tasks  # noqa: F401 - connects the receiver that enqueues queued jobs
