"""The stored search document of each repository (hub/catalog/services.py `repository_search_refresh`, read by
selectors `_searched`): the column, and on PostgreSQL its GIN index and the backfill, one UPDATE over the catalog
(the very statement the services run for one repository). The GIN index of migration 0005 on the names' computed
tsvector is dropped: the stored document replaces it."""

from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVector, SearchVectorField
from django.db import migrations

OLD_DOCUMENT_INDEX = "catalog_repository_document_fts"
SEARCH_INDEX = "catalog_repository_search_gin"


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    from hub.catalog.services import SEARCH_DOCUMENT_SQL

    repository = apps.get_model("catalog", "Repository")
    schema_editor.execute(f'DROP INDEX IF EXISTS "{OLD_DOCUMENT_INDEX}"')
    schema_editor.execute(SEARCH_DOCUMENT_SQL)
    schema_editor.add_index(repository, GinIndex(fields=["search_document"], name=SEARCH_INDEX))


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    repository = apps.get_model("catalog", "Repository")
    schema_editor.execute(f'DROP INDEX IF EXISTS "{SEARCH_INDEX}"')
    document = SearchVector("name", config="simple", weight="A") + SearchVector("summary", config="english", weight="B")
    schema_editor.add_index(repository, GinIndex(document, name=OLD_DOCUMENT_INDEX))


class Migration(migrations.Migration):
    dependencies = [("catalog", "0006_download_flush")]

    operations = [
        migrations.AddField(model_name="repository", name="search_document",
                            field=SearchVectorField(editable=False, null=True)),
        migrations.RunPython(create, drop),
    ]
