import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("federation", "0001_initial"),
    ]

    operations = [
        migrations.CreateModel(
            name="RemoteItem",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("object_id", models.URLField(max_length=500, unique=True)),
                ("mode", models.CharField(choices=[("metadata", "Metadata only"), ("mirror", "Mirror files"),
                                                   ("on_demand", "Fetch files on demand")], max_length=10)),
                ("state", models.CharField(choices=[("listed", "Listed; its files are held at its origin"),
                                                    ("fetching", "Asked for: being fetched and validated"),
                                                    ("removed", "Taken down at its origin")],
                                           default="listed", max_length=10)),
                ("activity", models.JSONField()),
                ("sources", models.JSONField(blank=True, default=dict)),
                ("attestations", models.JSONField(blank=True, default=list)),
                ("received_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("requested_at", models.DateTimeField(blank=True, null=True)),
                ("peer", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="remote_items",
                                           to="federation.peer")),
            ],
            options={
                "ordering": ["-received_at", "-pk"],
            },
        ),
    ]
