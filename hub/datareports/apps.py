from django.apps import AppConfig


class DataReportsConfig(AppConfig):
    name = "hub.datareports"
    label = "datareports"
    verbose_name = "Data reports and contamination"

    def ready(self) -> None:
        """Hear the catalog: a validated dataset version gets its report; tasks enqueue queued work and, on
        publication, the contamination checks."""
        from hub.catalog.signals import version_passed_validation
        from hub.datareports import receivers, tasks  # noqa: F401 - tasks connects the receivers that enqueue

        version_passed_validation.connect(receivers.on_version_validated, dispatch_uid="datareports.validated")
