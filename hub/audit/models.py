"""The append-only audit log: who did what to which target, when and why.

An app of its own at the bottom of the hub (it knows users only as settings.AUTH_USER_MODEL), so that
every app, accounts included, can record into it without importing the apps above it. The table keeps
its first name, `moderation_auditentry` (the model moved here from moderation with its rows and trigger).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class AuditLogImmutable(Exception):
    """The audit log is append-only: entries are never changed or deleted."""


class AuditQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AuditLogImmutable("audit entries cannot be updated")

    def delete(self):
        raise AuditLogImmutable("audit entries cannot be deleted")

    def bulk_update(self, objs, fields, batch_size=None):
        raise AuditLogImmutable("audit entries cannot be updated")


class AuditEntry(models.Model):
    """Who did what to which target, when, why, and the state before and after.

    Append-only three times over: this model refuses to save an existing row or delete one, the
    admin is read-only, and on PostgreSQL a trigger refuses UPDATE and DELETE (moderation's
    migration 0002, on this same table).
    """

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    # PROTECT: a user with audit entries cannot be deleted, so the log never loses its actors.
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                              related_name="+")  # null: the hub itself (e.g. reports crossed the threshold)
    actor_name = models.CharField(max_length=150)
    action = models.CharField(max_length=40, db_index=True)
    target_kind = models.CharField(max_length=16)
    target_id = models.PositiveBigIntegerField()
    target_label = models.CharField(max_length=200)
    before = models.JSONField(default=dict, blank=True)
    after = models.JSONField(default=dict, blank=True)
    reason = models.TextField(blank=True)

    objects = AuditQuerySet.as_manager()

    class Meta:
        db_table = "moderation_auditentry"  # moved from moderation without touching the table or its trigger
        ordering = ["-created_at", "-pk"]
        verbose_name_plural = "audit entries"
        indexes = [models.Index(fields=["target_kind", "target_id"], name="moderation__target__a7a402_idx")]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.actor_name} {self.action} {self.target_label}"

    def save(self, *args, **kwargs) -> None:
        if not self._state.adding:
            raise AuditLogImmutable("audit entries cannot be changed")
        kwargs["force_insert"] = True
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AuditLogImmutable("audit entries cannot be deleted")
