"""What provenance keeps per blob: its torrent and piece hashes, made once and shared by every file that serves it."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from hub.catalog.models import Blob


class BlobSwarm(models.Model):
    """A blob's BitTorrent v1+v2 hybrid torrent (bencoded, without web seeds: those are added when it is served)
    and the sha-256 of each of its pieces (published in the Metalink for clients that fetch ranges)."""

    blob = models.OneToOneField(Blob, primary_key=True, on_delete=models.CASCADE, related_name="swarm")
    name = models.CharField(max_length=255)  # the torrent's file name
    piece_length = models.PositiveIntegerField()
    btih = models.CharField(max_length=40)  # v1 info hash (SHA-1), hex
    btmh = models.CharField(max_length=64)  # v2 info hash (SHA-256), hex
    torrent = models.BinaryField()
    piece_sha256 = models.JSONField(default=list)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"swarm {self.blob_id[:12]} ({self.name})"
