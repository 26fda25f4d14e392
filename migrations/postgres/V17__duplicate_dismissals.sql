-- A pair of contacts someone looked at and decided are two people: the
-- duplicates queue (the TUI, `contacts dedupe`) never offers it again. Twin:
-- migrations/sqlite/V17__duplicate_dismissals.sql.
CREATE TABLE duplicate_dismissals (
    a_id BIGINT NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    b_id BIGINT NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    dismissed_by TEXT NOT NULL,
    dismissed_at BIGINT NOT NULL,
    PRIMARY KEY (a_id, b_id)
);
CREATE INDEX duplicate_dismissals_by_b ON duplicate_dismissals (b_id);
