-- Lead scoring kept exact at read time without reading timelines (see
-- src/crm/scoring.rs). Twin: migrations/sqlite/V3__crm.sql.
ALTER TABLE contacts ADD COLUMN engagement DOUBLE PRECISION NOT NULL DEFAULT 0;
ALTER TABLE contacts ADD COLUMN adjustments DOUBLE PRECISION NOT NULL DEFAULT 0;
ALTER TABLE contacts ADD COLUMN score_seen DOUBLE PRECISION NOT NULL DEFAULT 0;
CREATE INDEX contacts_scored ON contacts (score_seen) WHERE score_seen <> 0;

DROP INDEX activities_by_subject;
CREATE INDEX activities_by_subject ON activities (type, subject, occurred_at, contact_id);

DROP INDEX contacts_by_status;
DROP INDEX contact_fields_by_text;
DROP INDEX contact_fields_by_num;
CREATE INDEX contact_fields_by_text ON contact_fields (field, value_text) WHERE value_text IS NOT NULL;
CREATE INDEX contact_fields_by_num ON contact_fields (field, value_num) WHERE value_num IS NOT NULL;

CREATE TABLE crm_state (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
