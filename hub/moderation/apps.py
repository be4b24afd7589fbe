from django.apps import AppConfig


class ModerationConfig(AppConfig):
    name = "hub.moderation"
    label = "moderation"

    def ready(self) -> None:
        """Connect to the catalog's events (moderation builds on the catalog; the catalog knows nothing of it)."""
        from hub.catalog.signals import version_passed_validation
        from hub.moderation import receivers

        version_passed_validation.connect(receivers.on_version_passed_validation,
                                          dispatch_uid="moderation.version_passed_validation")
