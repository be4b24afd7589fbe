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


class OriginSignature(models.Model):
    """What a version mirrored here keeps of other hubs' provenance, byte for byte: its origin's model.sig and the
    files that bundle signs which the origin made (its attestations, its GGUF LoRA), and the mirror attestations of
    the hubs that relayed it. Recorded (verified) when the files are fetched; once this hub has validated the
    version again, they become its files beside this hub's own mirror attestation (signing.version_countersign)."""

    version = models.OneToOneField("catalog.Version", primary_key=True, on_delete=models.CASCADE,
                                   related_name="origin_signature")
    hub = models.URLField(max_length=300)  # the origin hub, whose key signed model.sig
    files = models.JSONField(default=dict)  # path -> sha256 (blobs held here)
    keys = models.JSONField(default=list)  # [{"hub", "key_id", "pem"}]: the keys each kept file verified with
    verified_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"signature of {self.hub} kept on version {self.version_id}"
