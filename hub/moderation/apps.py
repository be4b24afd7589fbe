from django.apps import AppConfig


class ModerationConfig(AppConfig):
    name = "hub.moderation"
    label = "moderation"

    def ready(self) -> None:
        """Connect to the catalog's events (moderation builds on the catalog; the catalog knows nothing of it)."""
        from hub.catalog.services import BLOB_REFUSALS
        from hub.catalog.signals import version_passed_validation
        from hub.moderation import receivers
        from hub.moderation.selectors import blocked_digest_reason

        if blocked_digest_reason not in BLOB_REFUSALS:
            BLOB_REFUSALS.append(blocked_digest_reason)

        version_passed_validation.connect(receivers.on_version_passed_validation,
                                          dispatch_uid="moderation.version_passed_validation")
