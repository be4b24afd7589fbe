"""Indexes for a catalog of 100,000 adapters (bench/catalog_scale.py): every list order ends with the primary key
(hub/api/pagination.py's keyset cursors), so the ordering indexes do too, and a page of any depth is an index seek.
On PostgreSQL also (RunPython, database only, as in 0003): the ordering by score with its NULLs last, a GIN index on
the names' document (the very expression hub/catalog/selectors.py `name_document` compiles to) and trigram indexes
on upper-cased names and summaries (what `icontains` compiles to), so that each way a search matches is answered by
an index. Nothing of those on SQLite."""

from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVector
from django.db import migrations, models
from django.db.models import F

DOCUMENT_INDEX = "catalog_repository_document_fts"
NAME_UPPER_INDEX = "catalog_repository_name_upper_trgm"
SUMMARY_UPPER_INDEX = "catalog_repository_summary_upper_trgm"
SCORE_INDEX = "catalog_repo_score_idx"


def indexes(apps):
    repository = apps.get_model("catalog", "Repository")
    document = SearchVector("name", config="simple", weight="A") + SearchVector("summary", config="english", weight="B")
    return [(repository, GinIndex(document, name=DOCUMENT_INDEX)),
            (repository, models.Index(F("kind"), F("score").desc(nulls_last=True), F("id").desc(), name=SCORE_INDEX))]


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for model, index in indexes(apps):
        schema_editor.add_index(model, index)
    # `icontains` is UPPER(column) LIKE UPPER('%…%') on PostgreSQL: trigram indexes of that very expression (SQL of
    # our own: Django renders an operator class on an expression index in parentheses PostgreSQL refuses)
    for name, column in ((NAME_UPPER_INDEX, "name"), (SUMMARY_UPPER_INDEX, "summary")):
        schema_editor.execute(f'CREATE INDEX "{name}" ON "catalog_repository" USING gin (UPPER("{column}") gin_trgm_ops)')


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for model, index in indexes(apps):
        schema_editor.remove_index(model, index)
    for name in (NAME_UPPER_INDEX, SUMMARY_UPPER_INDEX):
        schema_editor.execute(f'DROP INDEX IF EXISTS "{name}"')


class Migration(migrations.Migration):
    dependencies = [("catalog", "0004_origins")]

    operations = [
        migrations.RemoveIndex(model_name="repository", name="catalog_rep_kind_194b47_idx"),
        migrations.RemoveIndex(model_name="repository", name="catalog_rep_kind_5d4f72_idx"),
        migrations.AddIndex(model_name="repository",
                            index=models.Index(fields=["kind", "-downloads", "-id"], name="catalog_repo_popular_idx")),
        migrations.AddIndex(model_name="repository",
                            index=models.Index(fields=["kind", "-created_at", "-id"], name="catalog_repo_newest_idx")),
        migrations.AddIndex(model_name="repository",
                            index=models.Index(fields=["kind", "name", "-id"], name="catalog_repo_name_idx")),
        migrations.RunPython(create, drop),
    ]
