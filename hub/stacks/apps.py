from django.apps import AppConfig


class StacksConfig(AppConfig):
    name = "hub.stacks"
    label = "stacks"

    def ready(self) -> None:
        from hub.stacks import (
            hf,  # noqa: F401 - registers the `stacks/<hash>` repos with the HF-compatible API
            tasks,  # noqa: F401 - connects the receiver that enqueues builds
        )
