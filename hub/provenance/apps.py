from django.apps import AppConfig


class ProvenanceConfig(AppConfig):
    name = "hub.provenance"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from hub.catalog.api import FILE_ENTRY_EXTRAS
        from hub.catalog.selectors import BLOB_RELATIONS
        from hub.provenance import receivers  # noqa: F401 - connects the signing receivers
        from hub.provenance.api import file_links

        if file_links not in FILE_ENTRY_EXTRAS:
            FILE_ENTRY_EXTRAS.append(file_links)
        if "swarm" not in BLOB_RELATIONS:
            BLOB_RELATIONS.append("swarm")
