"""Evaluation runs: one row per (suite, suite version, subject content hash), so a result is computed once.

The subject is what was evaluated: a base model (its HF folder or one of its GGUF files), an adapter
version on its base, or a stack artifact (its HF folder or one of its GGUF files). Its hash is of
content, not of names: the base model's run is shared by every adapter trained for it, and an
identical upload reuses the result. A run is a job (state, lease, attempts) and, once finished,
its result: metrics, per-item records and everything needed to reproduce them.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from hub.catalog.models import BaseModel, Version
from hub.stacks.models import StackBuild


class RunState(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    FINISHED = "finished", "Finished"
    FAILED = "failed", "Failed"


class SubjectKind(models.TextChoices):
    BASE = "base", "Base model"
    ADAPTER = "adapter", "Adapter"
    STACK = "stack", "Stack"


class Runtime(models.TextChoices):
    TRANSFORMERS = "transformers", "transformers"
    GGUF = "gguf", "GGUF (llama.cpp)"


class EvalRun(models.Model):
    suite = models.CharField(max_length=200)  # "general-perplexity" or "task:owner/dataset[:split]"
    suite_version = models.CharField(max_length=100)
    suite_kind = models.CharField(max_length=32)  # perplexity | multiple_choice | generation
    suite_spec = models.JSONField(default=dict)  # what the worker rebuilds the suite from
    subject_hash = models.CharField(max_length=64)
    subject_kind = models.CharField(max_length=8, choices=SubjectKind.choices)
    runtime = models.CharField(max_length=16, choices=Runtime.choices, default=Runtime.TRANSFORMERS)
    base_model = models.ForeignKey(BaseModel, on_delete=models.PROTECT, related_name="eval_runs")
    version = models.ForeignKey(Version, null=True, blank=True, on_delete=models.CASCADE, related_name="eval_runs")
    build = models.ForeignKey(StackBuild, null=True, blank=True, on_delete=models.CASCADE, related_name="eval_runs")
    artifact_path = models.CharField(max_length=255, blank=True)  # the GGUF file, for runtime gguf
    dataset_version = models.ForeignKey(Version, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    hashes = models.JSONField(default=dict)  # sha256 of every input: base, adapters, artifact, dataset

    state = models.CharField(max_length=16, choices=RunState.choices, default=RunState.QUEUED)
    failure_reason = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="+")  # the moderator of the latest re-run
    created_at = models.DateTimeField(default=timezone.now)
    enqueued_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    seed = models.IntegerField(null=True, blank=True)
    metrics = models.JSONField(default=dict, blank=True)  # {name: {value, stderr, higher_is_better}}
    suite_settings = models.JSONField(default=dict, blank=True)  # as run on this model, e.g. {"max_length": 1024}
    suite_params = models.JSONField(default=dict, blank=True)  # the engine's description of the suite
    model = models.JSONField(default=dict, blank=True)  # the backend's description: files, adapters, dtype
    library_versions = models.JSONField(default=dict, blank=True)
    records = models.JSONField(default=list, blank=True)  # one per item: inputs, outputs, log-likelihoods
    seconds = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [models.UniqueConstraint(fields=["suite", "suite_version", "subject_hash"],
                                               name="unique_eval_result")]
        indexes = [models.Index(fields=["state", "lease_expires_at"]), models.Index(fields=["base_model", "suite"])]

    def __str__(self) -> str:
        return f"{self.suite}@{self.suite_version} on {self.subject_label}"

    @property
    def subject_label(self) -> str:
        if self.version_id:
            label = str(self.version)
        elif self.build_id:
            label = f"stack {self.build.recipe_hash[:12]}"
        else:
            label = self.base_model.name
        return f"{label} ({self.artifact_path})" if self.artifact_path else label

    @property
    def is_done(self) -> bool:
        return self.state in {RunState.FINISHED, RunState.FAILED}
