"""Carry the audit log's content type (and with it the `view_auditentry` permission the moderator and admin
groups hold) from the moderation app to this one, so that `audit.view_auditentry` is the same permission
row and no group loses it."""

from django.db import migrations


def relabel(source: str, target: str):
    def run(apps, schema_editor):
        ContentType = apps.get_model("contenttypes", "ContentType")
        Permission = apps.get_model("auth", "Permission")
        old = ContentType.objects.filter(app_label=source, model="auditentry").first()
        new = ContentType.objects.filter(app_label=target, model="auditentry").first()
        if old is None:
            return  # a new database: the permissions are created under the new label after migrating
        if new is None:
            old.app_label = target
            old.save()
            return
        # Both exist (permissions were created in between): hand each group's old permission to the new one.
        for permission in Permission.objects.filter(content_type=old):
            moved = Permission.objects.filter(content_type=new, codename=permission.codename).first()
            if moved is not None:
                moved.group_set.add(*permission.group_set.all())
        old.delete()

    return run


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0001_initial"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(relabel("moderation", "audit"), relabel("audit", "moderation"))]
