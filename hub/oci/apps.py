from django.apps import AppConfig


class OciConfig(AppConfig):
    name = "hub.oci"
    verbose_name = "OCI registry (pull)"
