"""Data reports of dataset versions, contamination checks of training datasets against eval sets, and curation:
moderators' marks on dataset versions and users' collections of adapters and datasets.

A report is one row per (content hash, report version): the hash covers the data files, their splits and the
tokenizers of the hub's base models it counts tokens with, so identical content is reported once and a new base
model (or engine report version) makes a new report. A contamination check is one row per (training dataset
version, eval dataset version, eval split, method version). Both are jobs with a lease, like eval runs.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from hub.catalog.models import NAME_VALIDATOR, Repository, Version


class JobState(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    FINISHED = "finished", "Finished"
    FAILED = "failed", "Failed"


class _Job(models.Model):
    state = models.CharField(max_length=16, choices=JobState.choices, default=JobState.QUEUED)
    failure_reason = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    enqueued_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True


class DataReport(_Job):
    content_hash = models.CharField(max_length=64)
    report_version = models.CharField(max_length=16)
    spec = models.JSONField(default=dict)  # files [(path, sha256)], splits, budgets: what the worker reads
    report = models.JSONField(default=dict, blank=True)
    versions = models.ManyToManyField(Version, related_name="data_reports")

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [models.UniqueConstraint(fields=["content_hash", "report_version"], name="unique_data_report")]
        indexes = [models.Index(fields=["state", "lease_expires_at"])]

    def __str__(self) -> str:
        return f"data report {self.content_hash[:12]} (v{self.report_version}, {self.state})"


class Contamination(_Job):
    train_version = models.ForeignKey(Version, on_delete=models.CASCADE, related_name="contamination_as_training")
    eval_version = models.ForeignKey(Version, on_delete=models.CASCADE, related_name="contamination_as_eval")
    eval_split = models.CharField(max_length=64, blank=True)  # blank: every data file of the eval dataset
    method_version = models.CharField(max_length=16)
    spec = models.JSONField(default=dict)  # training files and eval files [(path, sha256)]
    eval_rows = models.PositiveIntegerField(default=0)
    training_rows = models.PositiveIntegerField(default=0)
    rows = models.PositiveIntegerField(default=0)  # eval rows found in the training data (by 13-gram or near)
    ngram_rows = models.PositiveIntegerField(default=0)
    near_rows = models.PositiveIntegerField(default=0)
    overlap = models.FloatField(default=0.0)  # rows / eval_rows
    examples = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [models.UniqueConstraint(fields=["train_version", "eval_version", "eval_split", "method_version"],
                                               name="unique_contamination_check")]
        indexes = [models.Index(fields=["state", "lease_expires_at"])]

    def __str__(self) -> str:
        split = f":{self.eval_split}" if self.eval_split else ""
        return f"{self.train_version} against {self.eval_version}{split}"


class Curation(models.Model):
    """A moderator's mark that a dataset version was reviewed and is good data (shown as a badge, filterable)."""

    version = models.OneToOneField(Version, on_delete=models.CASCADE, related_name="curation")
    curated_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    curated_at = models.DateTimeField(default=timezone.now)
    note = models.CharField(max_length=500, blank=True)

    def __str__(self) -> str:
        return f"{self.version} curated by {self.curated_by}"


class Collection(models.Model):
    """A named, ordered list of adapters and datasets with a description, made by a user (or a moderator)."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="collections")
    name = models.CharField(max_length=96, validators=[NAME_VALIDATOR])
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True, max_length=5000)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-updated_at", "-pk"]
        constraints = [models.UniqueConstraint(fields=["owner", "name"], name="unique_collection_name")]

    def __str__(self) -> str:
        return f"{self.owner.username}/{self.name}"


class CollectionItem(models.Model):
    collection = models.ForeignKey(Collection, on_delete=models.CASCADE, related_name="items")
    position = models.PositiveIntegerField()
    repository = models.ForeignKey(Repository, on_delete=models.CASCADE, related_name="+")
    note = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["collection", "position"]
        constraints = [models.UniqueConstraint(fields=["collection", "position"], name="unique_collection_position"),
                       models.UniqueConstraint(fields=["collection", "repository"], name="unique_collection_item")]

    def __str__(self) -> str:
        return f"{self.collection} #{self.position + 1}: {self.repository}"
