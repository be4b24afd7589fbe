"""On PostgreSQL the database itself refuses UPDATE and DELETE on the audit log, whoever asks.

(TRUNCATE, an administrator's whole-table operation that test runs use to reset the database, is
not a row change and is not blocked.) Other databases rely on the model and admin guards.
"""

from django.db import migrations

FORBID = """
CREATE OR REPLACE FUNCTION moderation_auditentry_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only: % refused on moderation_auditentry', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER moderation_auditentry_append_only
    BEFORE UPDATE OR DELETE ON moderation_auditentry
    FOR EACH ROW EXECUTE FUNCTION moderation_auditentry_append_only();
"""
ALLOW = """
DROP TRIGGER IF EXISTS moderation_auditentry_append_only ON moderation_auditentry;
DROP FUNCTION IF EXISTS moderation_auditentry_append_only();
"""


def run_on_postgresql(sql: str):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql, params=None)  # no placeholders: RAISE uses % itself

    return run


class Migration(migrations.Migration):
    dependencies = [("moderation", "0001_initial")]

    operations = [migrations.RunPython(run_on_postgresql(FORBID), run_on_postgresql(ALLOW))]
