from django.apps import AppConfig


class CatalogConfig(AppConfig):
    name = "hub.catalog"
    label = "catalog"

    def ready(self) -> None:
        from django.db.models.signals import m2m_changed, post_delete, post_save

        from hub.catalog import tasks  # noqa: F401 - connects the receiver that enqueues validation
        from hub.catalog.models import BaseModel, Repository, Version, VersionFile
        from hub.core.anoncache import anonymous_reads_changed

        # Anonymous reads are cached (hub/core/anoncache.py): any change to what they show makes them stale.
        for model in (BaseModel, Repository, Version, VersionFile):
            post_save.connect(anonymous_reads_changed, sender=model, dispatch_uid=f"anonymous-reads-{model.__name__}")
            post_delete.connect(anonymous_reads_changed, sender=model, dispatch_uid=f"anonymous-reads-d-{model.__name__}")
        m2m_changed.connect(anonymous_reads_changed, sender=Version.tags.through, dispatch_uid="anonymous-reads-tags")
