-- Lead scoring kept exact at read time without reading timelines (see
-- src/crm/scoring.rs). Twin: migrations/postgres/V3__crm.sql.
--   engagement: the sum of each engagement rule's points for the contact's
--     activities, each weighted 2^((occurred_at - epoch) / half_life), so that the
--     decayed total at any moment is this column times one factor for all rows;
--   adjustments: the sum of score_adjustments, kept with every insert there;
--   score_seen: the score when last observed, to detect threshold crossings.
ALTER TABLE contacts ADD COLUMN engagement REAL NOT NULL DEFAULT 0;
ALTER TABLE contacts ADD COLUMN adjustments REAL NOT NULL DEFAULT 0;
ALTER TABLE contacts ADD COLUMN score_seen REAL NOT NULL DEFAULT 0;
-- The sweep for downward crossings visits only contacts with a score.
CREATE INDEX contacts_scored ON contacts (score_seen) WHERE score_seen <> 0;

-- Activity conditions ("viewed /pricing twice in 7 days") read this index for the
-- contact ids; with contact_id in it they never touch the table rows.
DROP INDEX activities_by_subject;
CREATE INDEX activities_by_subject ON activities (type, subject, occurred_at, contact_id);

-- Every contact write paid for indexes no query reads: status has five values
-- (a scan is as fast), and a field value is either text or a number, so each
-- field index holds only the rows of its kind (a comparison `value_num > ?`
-- implies the partial index's condition, so the planner still uses it).
DROP INDEX contacts_by_status;
DROP INDEX contact_fields_by_text;
DROP INDEX contact_fields_by_num;
CREATE INDEX contact_fields_by_text ON contact_fields (field, value_text) WHERE value_text IS NOT NULL;
CREATE INDEX contact_fields_by_num ON contact_fields (field, value_num) WHERE value_num IS NOT NULL;

-- Small CRM settings that belong to the store, such as the scoring epoch and the
-- hash of the rules the engagement column was computed with.
CREATE TABLE crm_state (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
