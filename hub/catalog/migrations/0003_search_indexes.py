"""Indexes for catalog search on PostgreSQL (hub/catalog/selectors.py `_searched`): the pg_trgm extension, a GIN
index on the cards' English tsvector (the very expression SearchVector("card_text", config="english") compiles to,
so the planner uses it) and a trigram GIN index on repository names for typo-tolerant matching. Nothing on SQLite.
The indexes live only in the database (RunPython, not model state): they are expression and opclass indexes that
the models need not know."""

from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVector
from django.db import migrations

CARD_INDEX = "catalog_version_card_fts"
NAME_INDEX = "catalog_repository_name_trgm"


def indexes(apps):
    return [(apps.get_model("catalog", "Version"), GinIndex(SearchVector("card_text", config="english"), name=CARD_INDEX)),
            (apps.get_model("catalog", "Repository"), GinIndex(fields=["name"], name=NAME_INDEX,
                                                                 opclasses=["gin_trgm_ops"]))]


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for model, index in indexes(apps):
        schema_editor.add_index(model, index)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for model, index in indexes(apps):
        schema_editor.remove_index(model, index)


class Migration(migrations.Migration):
    dependencies = [("catalog", "0002_upload_session")]

    operations = [migrations.RunPython(create, drop)]
