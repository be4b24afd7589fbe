import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("catalog", "0001_initial"),
        ("provenance", "0001_initial"),
    ]

    operations = [
        migrations.CreateModel(
            name="OriginSignature",
            fields=[
                ("version", models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, primary_key=True,
                                                 related_name="origin_signature", serialize=False,
                                                 to="catalog.version")),
                ("hub", models.URLField(max_length=300)),
                ("files", models.JSONField(default=dict)),
                ("keys", models.JSONField(default=list)),
                ("verified_at", models.DateTimeField(default=django.utils.timezone.now)),
            ],
        ),
    ]
