-- People: users with a name, an email and a role, each with their own API
-- tokens (a token of a user has the user's role, and opens nothing once the
-- user is removed); comments on proposals. Twin:
-- migrations/postgres/V21__users_and_comments.sql.
-- V1 made a placeholder `users` table nothing ever used; this one replaces it.
DROP TABLE users;
CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    email TEXT NOT NULL,
    name TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('owner', 'editor', 'viewer')),
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    removed_at INTEGER
);
CREATE UNIQUE INDEX users_active_email ON users (email) WHERE removed_at IS NULL;

ALTER TABLE api_tokens ADD COLUMN user_id INTEGER REFERENCES users (id);

CREATE TABLE proposal_comments (
    id INTEGER PRIMARY KEY,
    proposal_id INTEGER NOT NULL REFERENCES proposals (id) ON DELETE CASCADE,
    author TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX proposal_comments_by_proposal ON proposal_comments (proposal_id, id);
