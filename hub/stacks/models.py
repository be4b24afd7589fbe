"""Stack builds: one row per recipe hash, so identical requests share one build and one artifact."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from hub.catalog.models import BaseModel, Blob, Version


class BuildState(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    VERIFYING = "verifying", "Verifying"
    READY = "ready", "Ready"
    FAILED = "failed", "Failed"


class StackBuild(models.Model):
    recipe_hash = models.CharField(max_length=64, unique=True)
    recipe = models.JSONField()  # the engine's canonical recipe (with every source hash)
    request = models.JSONField(default=dict)  # what the client asked for, for display
    base_model = models.ForeignKey(BaseModel, on_delete=models.PROTECT, related_name="stacks")
    method = models.CharField(max_length=32)
    output = models.CharField(max_length=32)
    state = models.CharField(max_length=16, choices=BuildState.choices, default=BuildState.QUEUED)
    failure_reason = models.TextField(blank=True)
    progress = models.FloatField(default=0.0)
    progress_message = models.CharField(max_length=200, blank=True)
    manifest = models.JSONField(default=dict, blank=True)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    request_count = models.PositiveIntegerField(default=1)
    downloads = models.BigIntegerField(default=0)
    attempts = models.PositiveIntegerField(default=0)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["state", "lease_expires_at"]), models.Index(fields=["-downloads"])]

    def __str__(self) -> str:
        return f"stack {self.recipe_hash[:12]} ({self.method} → {self.output})"

    @property
    def display_name(self) -> str:
        """A stack as people name it: "alice/sql ×0.7 + bob/poet ×0.5, ties" (prefetch members where listed)."""
        members = " + ".join(f"{m.version.repository.full_name} ×{m.weight:g}" for m in self.members.all())
        return f"{members}, {self.method}" if members else f"stack {self.recipe_hash[:12]}"

    @property
    def seconds(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None


class StackAdapter(models.Model):
    """The adapter versions of a stack, in recipe order, with their weights."""

    build = models.ForeignKey(StackBuild, on_delete=models.CASCADE, related_name="members")
    version = models.ForeignKey(Version, on_delete=models.PROTECT, related_name="stack_memberships")
    position = models.PositiveSmallIntegerField()
    weight = models.FloatField()

    class Meta:
        ordering = ["build", "position"]
        constraints = [models.UniqueConstraint(fields=["build", "position"], name="unique_stack_position")]

    def __str__(self) -> str:
        return f"{self.version} × {self.weight}"


class StackFile(models.Model):
    build = models.ForeignKey(StackBuild, on_delete=models.CASCADE, related_name="files")
    path = models.CharField(max_length=255)
    blob = models.ForeignKey(Blob, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["path"]
        constraints = [models.UniqueConstraint(fields=["build", "path"], name="unique_stack_file")]

    def __str__(self) -> str:
        return f"{self.build.recipe_hash[:12]}/{self.path}"
