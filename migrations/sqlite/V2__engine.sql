-- Executions waiting for a named event about a contact (`wait_for_event`), found
-- by event name and contact when an event is ingested. Twin:
-- migrations/postgres/V2__engine.sql.
CREATE TABLE event_waits (
    id INTEGER PRIMARY KEY,
    execution_id INTEGER NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    fiber INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    event TEXT NOT NULL,
    contact_id INTEGER REFERENCES contacts (id) ON DELETE CASCADE,
    match_expr TEXT,
    expires_at INTEGER NOT NULL
);
CREATE INDEX event_waits_by_event ON event_waits (event, contact_id);
CREATE INDEX event_waits_by_execution ON event_waits (execution_id, fiber);

-- Finished executions are pruned by age; step records follow by cascade.
CREATE INDEX executions_by_completion ON executions (completed_at);

-- The last cron occurrence each schedule-triggered workflow fired, so a worker that
-- starts after downtime knows what it missed (see docs/engine.md, catch-up).
CREATE TABLE schedule_state (
    workflow_id TEXT PRIMARY KEY,
    last_occurrence INTEGER NOT NULL
);

-- Contact search is indexed in batches, not inside every write: a trigger queues
-- each changed contact (with the values the index holds for it, which a delete
-- from this external-content FTS5 table needs) and the worker's indexer, or a
-- search, moves the queue into contacts_fts. Flushing FTS5 at every job's
-- savepoint cost a tenth of the writer's time. PostgreSQL's generated tsvector
-- column needs no queue. (`ON CONFLICT DO NOTHING`, not `OR IGNORE`: an outer
-- upsert's conflict handling would override a trigger's `OR IGNORE`.)
DROP TRIGGER contacts_fts_insert;
DROP TRIGGER contacts_fts_delete;
DROP TRIGGER contacts_fts_update;
CREATE TABLE contacts_fts_queue (
    contact_id INTEGER PRIMARY KEY,
    indexed INTEGER NOT NULL,
    old_email TEXT,
    old_name TEXT,
    old_company_domain TEXT
);
CREATE TRIGGER contacts_fts_queue_insert AFTER INSERT ON contacts BEGIN
    INSERT INTO contacts_fts_queue (contact_id, indexed) VALUES (new.id, 0)
    ON CONFLICT (contact_id) DO NOTHING;
END;
CREATE TRIGGER contacts_fts_queue_update AFTER UPDATE OF email, name, company_domain ON contacts
WHEN old.email IS NOT new.email OR old.name IS NOT new.name
    OR old.company_domain IS NOT new.company_domain BEGIN
    INSERT INTO contacts_fts_queue (contact_id, indexed, old_email, old_name, old_company_domain)
    VALUES (old.id, 1, old.email, old.name, old.company_domain)
    ON CONFLICT (contact_id) DO NOTHING;
END;
CREATE TRIGGER contacts_fts_queue_delete AFTER DELETE ON contacts BEGIN
    INSERT INTO contacts_fts_queue (contact_id, indexed, old_email, old_name, old_company_domain)
    VALUES (old.id, 1, old.email, old.name, old.company_domain)
    ON CONFLICT (contact_id) DO NOTHING;
END;

-- Unfinished executions by workflow, for a workflow's `concurrency` limit: only the
-- rows that are not finished are in it, so it stays small.
CREATE INDEX executions_unfinished ON executions (workflow_id, status)
    WHERE status IN ('running', 'waiting', 'queued');

-- Unfinished executions are found by the partial index above and finished ones by
-- workflow or completion time; an index on (status, updated_at) only cost a delete
-- and an insert at every save.
DROP INDEX executions_by_status;
