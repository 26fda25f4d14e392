-- Imports: where an imported contact came from, and the CRM events an import
-- causes, queued durably in its own transaction and ingested afterwards by the
-- worker (or the import command), a batch at a time. Twin:
-- migrations/postgres/V7__import_source_and_event_batches.sql.
ALTER TABLE contacts ADD COLUMN source_import TEXT;

CREATE TABLE crm_event_batches (
    id INTEGER PRIMARY KEY,
    -- A JSON array of CRM events (contact_created, tag_added, field_changed, …).
    events TEXT NOT NULL,
    -- How many of them are ingested; the row goes when all are.
    done INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
);
