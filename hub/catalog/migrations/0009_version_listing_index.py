"""The versions' listing index (issue #19, bench/catalog_scale.py), on PostgreSQL (RunPython, database only, as in
0005): (repository, state) with the id, task and license included, so that the lists' "has a visible version" check,
the tag filter's walk from versions to their tags and the browse page's facets over its first 200 repositories read
the index alone (index-only scans) instead of a heap row per version. Nothing on SQLite, which has no INCLUDE."""

from django.db import migrations, models

LISTING_INDEX = "catalog_version_listing_idx"


def index() -> models.Index:
    return models.Index(fields=["repository", "state"], include=["id", "task", "license"], name=LISTING_INDEX)


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.add_index(apps.get_model("catalog", "Version"), index())


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.remove_index(apps.get_model("catalog", "Version"), index())


class Migration(migrations.Migration):
    dependencies = [("catalog", "0008_listed_versions")]

    operations = [migrations.RunPython(create, drop)]
