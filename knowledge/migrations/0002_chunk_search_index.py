"""Full-text index over chunks, one per database engine.

PostgreSQL: a ``search_vector tsvector`` column on ``knowledge_chunk`` (heading path weighted A, text
weighted B) in the text-search configuration of the chunk's knowledge base, kept current by a trigger,
with a GIN index. SQLite: an external-content FTS5 table ``knowledge_chunk_fts`` (porter stemming)
kept in sync by triggers. Neither exists in Django's model state, so ``makemigrations`` ignores them
and the ORM never loads the vector.

Note for later migrations on SQLite: Django rebuilds a table to alter it, which drops its triggers;
a migration that alters ``knowledge_chunk`` must create the FTS5 triggers again (the statements below).
"""

from django.db import migrations

# The SQL exactly as this migration runs it (history is frozen: a later change is a new migration,
# never an edit here).
POSTGRES_INSTALL_SQL = [
    'ALTER TABLE knowledge_chunk ADD COLUMN search_vector tsvector',
    r"""
    CREATE FUNCTION knowledge_chunk_search_vector() RETURNS trigger AS $$
    DECLARE
        cfg regconfig;
    BEGIN
        SELECT kb.search_config::regconfig INTO cfg
          FROM knowledge_document d
          JOIN knowledge_knowledgebase kb ON kb.id = d.knowledge_base_id
         WHERE d.id = NEW.document_id;
        cfg := coalesce(cfg, 'simple'::regconfig);
        NEW.search_vector :=
            setweight(to_tsvector(cfg, coalesce(NEW.heading_path, '')), 'A')
            || setweight(to_tsvector(cfg, coalesce(NEW.text, '')), 'B');
        RETURN NEW;
    END
    $$ LANGUAGE plpgsql
    """,
    r"""
    CREATE TRIGGER knowledge_chunk_search_vector_trg
    BEFORE INSERT OR UPDATE OF text, heading_path, document_id ON knowledge_chunk
    FOR EACH ROW EXECUTE FUNCTION knowledge_chunk_search_vector()
    """,
    'UPDATE knowledge_chunk SET heading_path = heading_path',
    'CREATE INDEX knowledge_chunk_search_gin ON knowledge_chunk USING gin (search_vector)',
]

POSTGRES_UNINSTALL_SQL = [
    'DROP INDEX IF EXISTS knowledge_chunk_search_gin',
    'DROP TRIGGER IF EXISTS knowledge_chunk_search_vector_trg ON knowledge_chunk',
    'DROP FUNCTION IF EXISTS knowledge_chunk_search_vector()',
    'ALTER TABLE knowledge_chunk DROP COLUMN IF EXISTS search_vector',
]

SQLITE_INSTALL_SQL = [
    'DROP TRIGGER IF EXISTS knowledge_chunk_fts_ai',
    'DROP TRIGGER IF EXISTS knowledge_chunk_fts_ad',
    'DROP TRIGGER IF EXISTS knowledge_chunk_fts_au',
    'DROP TABLE IF EXISTS knowledge_chunk_fts',
    r"""
    CREATE VIRTUAL TABLE knowledge_chunk_fts USING fts5(
        heading_path, text, content='knowledge_chunk', content_rowid='id',
        tokenize='porter unicode61 remove_diacritics 2'
    )
    """,
    r"""
    CREATE TRIGGER knowledge_chunk_fts_ai AFTER INSERT ON knowledge_chunk BEGIN
        INSERT INTO knowledge_chunk_fts(rowid, heading_path, text)
        VALUES (new.id, new.heading_path, new.text);
    END
    """,
    r"""
    CREATE TRIGGER knowledge_chunk_fts_ad AFTER DELETE ON knowledge_chunk BEGIN
        INSERT INTO knowledge_chunk_fts(knowledge_chunk_fts, rowid, heading_path, text)
        VALUES ('delete', old.id, old.heading_path, old.text);
    END
    """,
    r"""
    CREATE TRIGGER knowledge_chunk_fts_au AFTER UPDATE ON knowledge_chunk BEGIN
        INSERT INTO knowledge_chunk_fts(knowledge_chunk_fts, rowid, heading_path, text)
        VALUES ('delete', old.id, old.heading_path, old.text);
        INSERT INTO knowledge_chunk_fts(rowid, heading_path, text)
        VALUES (new.id, new.heading_path, new.text);
    END
    """,
    "INSERT INTO knowledge_chunk_fts(knowledge_chunk_fts) VALUES ('rebuild')",
]

SQLITE_UNINSTALL_SQL = [
    'DROP TRIGGER IF EXISTS knowledge_chunk_fts_ai',
    'DROP TRIGGER IF EXISTS knowledge_chunk_fts_ad',
    'DROP TRIGGER IF EXISTS knowledge_chunk_fts_au',
    'DROP TABLE IF EXISTS knowledge_chunk_fts',
]


def _run(schema_editor, statements: dict) -> None:
    for statement in statements.get(schema_editor.connection.vendor, []):
        schema_editor.execute(statement)


def forwards(apps, schema_editor):
    _run(schema_editor, {"postgresql": POSTGRES_INSTALL_SQL, "sqlite": SQLITE_INSTALL_SQL})


def backwards(apps, schema_editor):
    _run(schema_editor, {"postgresql": POSTGRES_UNINSTALL_SQL, "sqlite": SQLITE_UNINSTALL_SQL})


class Migration(migrations.Migration):
    dependencies = [("knowledge", "0001_initial")]

    operations = [migrations.RunPython(forwards, backwards, elidable=False)]
