-- Proposals: changes to workspace files made through the API, each a commit on a
-- branch `funnel/proposals/<uid>` until an owner merges or rejects it.
CREATE TABLE proposals (
    id INTEGER PRIMARY KEY,
    uid TEXT NOT NULL UNIQUE,
    title TEXT NOT NULL,
    author TEXT NOT NULL,
    branch TEXT NOT NULL,
    commit_id TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('open', 'merged', 'rejected')),
    files TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    decided_by TEXT,
    decided_at INTEGER
);
CREATE INDEX proposals_open ON proposals (status, id);
