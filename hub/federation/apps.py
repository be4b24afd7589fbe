from django.apps import AppConfig


class FederationConfig(AppConfig):
    """ActivityPub between hubs: actors, keys, inbox/outbox, follows, peers and their policies.

    The top of the layer order: it may import every other hub app; nothing imports it but urls and settings."""

    name = "hub.federation"
    label = "federation"

    def ready(self) -> None:
        """Publish what changes here (hub.federation.receivers) and register the mirroring task."""
        from hub.federation import receivers

        receivers.connect()
