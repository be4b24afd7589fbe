"""The audit log moves here from moderation: state only, the table (`moderation_auditentry`), its rows and its
PostgreSQL append-only trigger stay as they are. The table was created by moderation's 0001, hence the
dependency on moderation's history (moderation's 0004 drops the model from its state)."""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        ("moderation", "0003_role_groups_for_existing_users"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="AuditEntry",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False,
                                                   verbose_name="ID")),
                        ("created_at", models.DateTimeField(db_index=True, default=django.utils.timezone.now)),
                        ("actor_name", models.CharField(max_length=150)),
                        ("action", models.CharField(db_index=True, max_length=40)),
                        ("target_kind", models.CharField(max_length=16)),
                        ("target_id", models.PositiveBigIntegerField()),
                        ("target_label", models.CharField(max_length=200)),
                        ("before", models.JSONField(blank=True, default=dict)),
                        ("after", models.JSONField(blank=True, default=dict)),
                        ("reason", models.TextField(blank=True)),
                        ("actor", models.ForeignKey(blank=True, null=True,
                                                    on_delete=django.db.models.deletion.PROTECT, related_name="+",
                                                    to=settings.AUTH_USER_MODEL)),
                    ],
                    options={
                        "verbose_name_plural": "audit entries",
                        "db_table": "moderation_auditentry",
                        "ordering": ["-created_at", "-pk"],
                        "indexes": [models.Index(fields=["target_kind", "target_id"],
                                                 name="moderation__target__a7a402_idx")],
                    },
                ),
            ],
            database_operations=[],
        ),
    ]
