"""Training jobs: a hosted dataset version and a spec in, a new version of an adapter repository out.

One row per job hash (the canonical spec with the content hashes of the dataset and the base model and the
library versions, like a stack recipe's), so an identical request is trained once and shares the job.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from hub.catalog.models import BaseModel, Version


class JobState(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    FINISHED = "finished", "Finished"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


ACTIVE_STATES = (JobState.QUEUED, JobState.RUNNING)


class TrainingJob(models.Model):
    spec_hash = models.CharField(max_length=64, unique=True)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="training_jobs")
    request = models.JSONField(default=dict)  # what the client asked for, for display
    spec = models.JSONField()  # the engine's canonical TrainingSpec
    base_model = models.ForeignKey(BaseModel, on_delete=models.PROTECT, related_name="+")
    dataset_version = models.ForeignKey(Version, on_delete=models.PROTECT, related_name="training_jobs")
    split = models.CharField(max_length=64)
    eval_split = models.CharField(max_length=64, blank=True)
    into = models.CharField(max_length=200)  # "owner/name" of the adapter repository the result becomes a version of
    state = models.CharField(max_length=16, choices=JobState.choices, default=JobState.QUEUED)
    failure_reason = models.TextField(blank=True)
    cancel_requested = models.BooleanField(default=False)
    step = models.PositiveIntegerField(default=0)
    total_steps = models.PositiveIntegerField(default=0)
    loss = models.FloatField(null=True, blank=True)
    tokens_per_second = models.FloatField(null=True, blank=True)
    eta_seconds = models.FloatField(null=True, blank=True)
    loss_history = models.JSONField(default=list, blank=True)  # [[step, loss], ...], at most LOSS_POINTS
    checkpoint_step = models.PositiveIntegerField(default=0)  # the last checkpoint written
    resumed_from_step = models.PositiveIntegerField(default=0)  # where the last attempt started (0: from scratch)
    result = models.JSONField(default=dict, blank=True)  # train/eval loss, seconds, tokens, rows, device
    version = models.ForeignKey(Version, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    attempts = models.PositiveIntegerField(default=0)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["state", "lease_expires_at"]), models.Index(fields=["owner", "state"])]

    def __str__(self) -> str:
        return f"training {self.pk} → {self.into}"

    @property
    def is_active(self) -> bool:
        return self.state in ACTIVE_STATES

    @property
    def progress_fraction(self) -> float:
        return self.step / self.total_steps if self.total_steps else 0.0
