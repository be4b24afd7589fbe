from django.apps import AppConfig


class CatalogConfig(AppConfig):
    name = "hub.catalog"
    label = "catalog"

    def ready(self) -> None:
        from hub.catalog import tasks  # noqa: F401 - connects the receiver that enqueues validation
