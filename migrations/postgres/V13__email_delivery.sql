-- Email delivery: whether a message is marketing (an unsubscribe stops it even
-- after it was queued), and why its last delivery attempt failed.
ALTER TABLE outbox ADD COLUMN marketing BIGINT NOT NULL DEFAULT 0;
ALTER TABLE outbox ADD COLUMN last_error TEXT;
