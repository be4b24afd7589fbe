"""The audit log is now the `audit` app's (see audit 0001): drop it from moderation's state only."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("moderation", "0003_role_groups_for_existing_users"),
        ("audit", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="AuditEntry")],
            database_operations=[],
        ),
    ]
