"""Put users who had a role before moderation existed into their role's group.

New databases need nothing here: hub.accounts.services creates each group on first use. The policy
below is this migration's frozen copy of accounts.services.ROLE_GROUPS.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

MODERATOR = ["moderation.skip_review", "moderation.review_version", "moderation.resolve_report",
             "moderation.view_auditentry"]
ROLE_GROUPS = {
    "trusted": ("trusted uploaders", ["moderation.skip_review"]),
    "moderator": ("moderators", MODERATOR),
    "admin": ("admins", [*MODERATOR, "accounts.change_user"]),
}


def forwards(apps, schema_editor):
    User = apps.get_model("accounts", "User")
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    if not User.objects.filter(role__in=ROLE_GROUPS).exists():
        return
    for app_config in apps.get_app_configs():  # the permissions of this migration's models do not exist yet
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    for role, (name, perms) in ROLE_GROUPS.items():
        group, _ = Group.objects.get_or_create(name=name)
        for perm in perms:
            app_label, codename = perm.split(".")
            group.permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
        for user in User.objects.filter(role=role):
            user.groups.add(group)


class Migration(migrations.Migration):
    dependencies = [
        ("moderation", "0002_audit_append_only"),
        ("accounts", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
