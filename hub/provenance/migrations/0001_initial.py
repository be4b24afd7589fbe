import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ("catalog", "0001_initial"),
    ]

    operations = [
        migrations.CreateModel(
            name="BlobSwarm",
            fields=[
                ("blob", models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, primary_key=True,
                                              related_name="swarm", serialize=False, to="catalog.blob")),
                ("name", models.CharField(max_length=255)),
                ("piece_length", models.PositiveIntegerField()),
                ("btih", models.CharField(max_length=40)),
                ("btmh", models.CharField(max_length=64)),
                ("torrent", models.BinaryField()),
                ("piece_sha256", models.JSONField(default=list)),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
            ],
        ),
    ]
