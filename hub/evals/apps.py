from django.apps import AppConfig


class EvalsConfig(AppConfig):
    name = "hub.evals"
    label = "evals"

    def ready(self) -> None:
        """Connect the receivers that schedule evaluations on publication and on stack builds, and enqueue runs."""
        from hub.catalog.signals import version_published
        from hub.evals import receivers, tasks  # noqa: F401 - tasks connects the receiver that enqueues runs
        from hub.stacks.signals import stack_ready

        version_published.connect(receivers.on_version_published, dispatch_uid="evals.version_published")
        stack_ready.connect(receivers.on_stack_ready, dispatch_uid="evals.stack_ready")
