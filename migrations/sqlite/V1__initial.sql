-- funnel's run-time store, SQLite dialect. Twin: migrations/postgres/V1__initial.sql.
-- Times are INTEGER milliseconds since the Unix epoch (UTC) in both dialects.
-- JSON documents are TEXT here and JSONB in PostgreSQL.
-- Full-text search: the FTS5 table contacts_fts here; a tsvector column there.

CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    uid TEXT NOT NULL UNIQUE,
    email TEXT NOT NULL UNIQUE,
    name TEXT,
    role TEXT NOT NULL DEFAULT 'admin',
    token_hash TEXT,
    created_at INTEGER NOT NULL
);

-- Published state of sites; their design lives in the workspace's YAML.
CREATE TABLE sites (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    domain TEXT,
    template_id TEXT NOT NULL,
    content_hash TEXT,
    published_at INTEGER
);

CREATE TABLE components (
    site_id TEXT NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    id TEXT NOT NULL,
    type TEXT NOT NULL,
    page TEXT NOT NULL,
    position INTEGER NOT NULL,
    config TEXT NOT NULL DEFAULT '{}',
    workflows_connected TEXT NOT NULL DEFAULT '[]',
    PRIMARY KEY (site_id, id)
);

CREATE TABLE templates (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    category TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);

-- Workflows: an operator's enable/disable override, and every version by hash.
CREATE TABLE workflows (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    active_override INTEGER,
    current_hash TEXT,
    updated_at INTEGER NOT NULL
);

CREATE TABLE workflow_versions (
    hash TEXT PRIMARY KEY,
    workflow_id TEXT NOT NULL,
    definition TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX workflow_versions_by_workflow ON workflow_versions (workflow_id, created_at);

CREATE TABLE contacts (
    id INTEGER PRIMARY KEY,
    uid TEXT NOT NULL UNIQUE,
    email TEXT NOT NULL UNIQUE,
    name TEXT,
    phone TEXT,
    company_domain TEXT,
    source_site TEXT,
    source_component TEXT,
    source_workflow TEXT,
    first_touch TEXT,
    last_touch TEXT,
    status TEXT NOT NULL DEFAULT 'active',
    stage TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    last_activity INTEGER
);
CREATE INDEX contacts_by_created ON contacts (created_at);
CREATE INDEX contacts_by_status ON contacts (status);
CREATE INDEX contacts_by_domain ON contacts (company_domain);
CREATE INDEX contacts_by_name ON contacts (name);

-- Custom field values, typed by contacts/fields.yaml: text in value_text, numbers,
-- booleans and dates in value_num, so both compare by index.
CREATE TABLE contact_fields (
    contact_id INTEGER NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    field TEXT NOT NULL,
    value_text TEXT,
    value_num REAL,
    PRIMARY KEY (contact_id, field)
) WITHOUT ROWID;
CREATE INDEX contact_fields_by_text ON contact_fields (field, value_text);
CREATE INDEX contact_fields_by_num ON contact_fields (field, value_num);

CREATE TABLE contact_tags (
    contact_id INTEGER NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    tag TEXT NOT NULL,
    added_at INTEGER NOT NULL,
    PRIMARY KEY (contact_id, tag)
) WITHOUT ROWID;
CREATE INDEX contact_tags_by_tag ON contact_tags (tag, contact_id);

CREATE TABLE list_members (
    list_id TEXT NOT NULL,
    contact_id INTEGER NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    added_at INTEGER NOT NULL,
    PRIMARY KEY (list_id, contact_id)
) WITHOUT ROWID;
CREATE INDEX list_members_by_contact ON list_members (contact_id);

-- The timeline. `subject` holds the activity's main object (a page path, a template
-- id, a URL) so that "viewed /pricing twice in 7 days" is an index range.
CREATE TABLE activities (
    id INTEGER PRIMARY KEY,
    contact_id INTEGER NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    type TEXT NOT NULL,
    subject TEXT,
    data TEXT NOT NULL DEFAULT '{}',
    source TEXT,
    occurred_at INTEGER NOT NULL
);
CREATE INDEX activities_timeline ON activities (contact_id, occurred_at DESC, id DESC);
CREATE INDEX activities_by_subject ON activities (type, subject, occurred_at);

CREATE TABLE score_adjustments (
    id INTEGER PRIMARY KEY,
    contact_id INTEGER NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    points REAL NOT NULL,
    reason TEXT,
    execution_id INTEGER,
    created_at INTEGER NOT NULL
);
CREATE INDEX score_adjustments_by_contact ON score_adjustments (contact_id, created_at);

CREATE TABLE deals (
    id INTEGER PRIMARY KEY,
    uid TEXT NOT NULL UNIQUE,
    contact_id INTEGER NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    pipeline TEXT NOT NULL,
    stage TEXT NOT NULL,
    value REAL,
    status TEXT NOT NULL DEFAULT 'open',
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX deals_by_contact ON deals (contact_id, pipeline, status);
CREATE INDEX deals_by_stage ON deals (pipeline, stage);

CREATE TABLE deal_stage_history (
    id INTEGER PRIMARY KEY,
    deal_id INTEGER NOT NULL REFERENCES deals (id) ON DELETE CASCADE,
    from_stage TEXT,
    to_stage TEXT NOT NULL,
    source TEXT,
    changed_at INTEGER NOT NULL
);
CREATE INDEX deal_stage_history_by_deal ON deal_stage_history (deal_id, changed_at);

CREATE TABLE contact_merges (
    id INTEGER PRIMARY KEY,
    kept_id INTEGER NOT NULL,
    merged_id INTEGER NOT NULL,
    snapshot TEXT NOT NULL,
    merged_at INTEGER NOT NULL,
    undone_at INTEGER
);
CREATE INDEX contact_merges_by_kept ON contact_merges (kept_id);

-- Consent and suppression: emails only as hashes once a person is forgotten.
CREATE TABLE consent_ledger (
    id INTEGER PRIMARY KEY,
    contact_id INTEGER REFERENCES contacts (id) ON DELETE SET NULL,
    email_hash TEXT NOT NULL,
    purpose TEXT NOT NULL,
    granted INTEGER NOT NULL,
    source TEXT,
    wording TEXT,
    recorded_at INTEGER NOT NULL
);
CREATE INDEX consent_ledger_by_email ON consent_ledger (email_hash, recorded_at);

CREATE TABLE suppressions (
    email_hash TEXT PRIMARY KEY,
    reason TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

-- Executions: the engine's journal.
CREATE TABLE executions (
    id INTEGER PRIMARY KEY,
    uid TEXT NOT NULL UNIQUE,
    workflow_id TEXT NOT NULL,
    version_hash TEXT NOT NULL REFERENCES workflow_versions (hash),
    contact_id INTEGER REFERENCES contacts (id) ON DELETE SET NULL,
    status TEXT NOT NULL,
    trigger_data TEXT NOT NULL DEFAULT '{}',
    state TEXT NOT NULL DEFAULT '{}',
    error TEXT,
    started_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    completed_at INTEGER
);
CREATE INDEX executions_by_workflow ON executions (workflow_id, started_at);
CREATE INDEX executions_by_status ON executions (status, updated_at);
CREATE INDEX executions_by_contact ON executions (contact_id);

CREATE TABLE step_runs (
    id INTEGER PRIMARY KEY,
    execution_id INTEGER NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    step_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    status TEXT NOT NULL,
    output TEXT,
    error TEXT,
    started_at INTEGER NOT NULL,
    finished_at INTEGER
);
CREATE INDEX step_runs_by_execution ON step_runs (execution_id, id);

-- Due work: delays, waits, retries and cron occurrences. `dedupe_key` makes each
-- cron occurrence fire once, whatever the number of workers.
CREATE TABLE timers (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    execution_id INTEGER REFERENCES executions (id) ON DELETE CASCADE,
    due_at INTEGER NOT NULL,
    payload TEXT NOT NULL DEFAULT '{}',
    dedupe_key TEXT UNIQUE,
    claimed_by TEXT,
    claimed_until INTEGER,
    attempts INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX timers_due ON timers (due_at);
CREATE INDEX timers_by_execution ON timers (execution_id);

-- Email.
CREATE TABLE email_campaigns (
    id INTEGER PRIMARY KEY,
    uid TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    subject TEXT,
    template_id TEXT,
    workflow_id TEXT,
    status TEXT NOT NULL,
    scheduled_at INTEGER,
    sent_at INTEGER,
    recipients_count INTEGER NOT NULL DEFAULT 0,
    opens_count INTEGER NOT NULL DEFAULT 0,
    clicks_count INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
);

CREATE TABLE email_sends (
    id INTEGER PRIMARY KEY,
    uid TEXT NOT NULL UNIQUE,
    campaign_id INTEGER REFERENCES email_campaigns (id) ON DELETE SET NULL,
    contact_id INTEGER REFERENCES contacts (id) ON DELETE SET NULL,
    execution_id INTEGER REFERENCES executions (id) ON DELETE SET NULL,
    template_id TEXT NOT NULL,
    variant TEXT,
    status TEXT NOT NULL,
    sent_at INTEGER,
    opened_at INTEGER,
    clicked_at INTEGER,
    bounced_at INTEGER,
    created_at INTEGER NOT NULL
);
CREATE INDEX email_sends_by_campaign ON email_sends (campaign_id, status);
CREATE INDEX email_sends_by_contact ON email_sends (contact_id, created_at);

-- One row per idempotency key: a second send of the same step is refused.
CREATE TABLE outbox (
    id INTEGER PRIMARY KEY,
    idempotency_key TEXT NOT NULL UNIQUE,
    send_id INTEGER REFERENCES email_sends (id) ON DELETE SET NULL,
    to_address TEXT NOT NULL,
    subject TEXT NOT NULL,
    message TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    sent_at INTEGER
);
CREATE INDEX outbox_pending ON outbox (status, next_attempt_at);

-- Analytics: raw events, and daily rollups per the seed's analytics tables.
CREATE TABLE analytics_events (
    id INTEGER PRIMARY KEY,
    site_id TEXT NOT NULL,
    page TEXT,
    component_id TEXT,
    type TEXT NOT NULL,
    visitor TEXT,
    contact_id INTEGER REFERENCES contacts (id) ON DELETE SET NULL,
    data TEXT NOT NULL DEFAULT '{}',
    occurred_at INTEGER NOT NULL
);
CREATE INDEX analytics_events_by_site ON analytics_events (site_id, occurred_at);
CREATE INDEX analytics_events_by_component ON analytics_events (site_id, component_id, type, occurred_at);
CREATE INDEX analytics_events_by_contact ON analytics_events (contact_id);

CREATE TABLE site_analytics (
    site_id TEXT NOT NULL,
    day INTEGER NOT NULL,
    visitors INTEGER NOT NULL DEFAULT 0,
    page_views INTEGER NOT NULL DEFAULT 0,
    conversions INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (site_id, day)
);

CREATE TABLE component_analytics (
    site_id TEXT NOT NULL,
    component_id TEXT NOT NULL,
    day INTEGER NOT NULL,
    views INTEGER NOT NULL DEFAULT 0,
    interactions INTEGER NOT NULL DEFAULT 0,
    conversions INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (site_id, component_id, day)
);

CREATE TABLE workflow_analytics (
    workflow_id TEXT NOT NULL,
    day INTEGER NOT NULL,
    executions INTEGER NOT NULL DEFAULT 0,
    succeeded INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0,
    total_duration_ms INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (workflow_id, day)
);

CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    entity TEXT NOT NULL,
    entity_id TEXT,
    details TEXT NOT NULL DEFAULT '{}',
    recorded_at INTEGER NOT NULL
);
CREATE INDEX audit_log_by_entity ON audit_log (entity, entity_id, recorded_at);
CREATE INDEX audit_log_by_time ON audit_log (recorded_at);

-- Full-text search over contacts (dialect-specific: FTS5 here).
CREATE VIRTUAL TABLE contacts_fts USING fts5 (
    email, name, company_domain,
    content = 'contacts', content_rowid = 'id',
    tokenize = 'unicode61 remove_diacritics 2', prefix = '2 3'
);
CREATE TRIGGER contacts_fts_insert AFTER INSERT ON contacts BEGIN
    INSERT INTO contacts_fts (rowid, email, name, company_domain)
    VALUES (new.id, new.email, new.name, new.company_domain);
END;
CREATE TRIGGER contacts_fts_delete AFTER DELETE ON contacts BEGIN
    INSERT INTO contacts_fts (contacts_fts, rowid, email, name, company_domain)
    VALUES ('delete', old.id, old.email, old.name, old.company_domain);
END;
CREATE TRIGGER contacts_fts_update AFTER UPDATE OF email, name, company_domain ON contacts BEGIN
    INSERT INTO contacts_fts (contacts_fts, rowid, email, name, company_domain)
    VALUES ('delete', old.id, old.email, old.name, old.company_domain);
    INSERT INTO contacts_fts (rowid, email, name, company_domain)
    VALUES (new.id, new.email, new.name, new.company_domain);
END;
