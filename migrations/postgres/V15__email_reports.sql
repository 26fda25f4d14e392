-- Bounce and complaint reports: each message goes from its own tagged envelope
-- sender (VERP), so a report that comes back names its send; complaints are
-- counted per send like bounces. The hourly sending count, and pending
-- double opt-in requests.
ALTER TABLE outbox ADD COLUMN return_path TEXT;
ALTER TABLE email_sends ADD COLUMN complained_at BIGINT;

-- Emails handed over per clock hour (`email.hourly_limit`), counted where the
-- sends are recorded, so every worker and a restarted one see the same count.
CREATE TABLE email_hourly (
    hour BIGINT PRIMARY KEY,
    sent BIGINT NOT NULL
);

-- Double opt-in: a join of a list that asks for confirmation waits here until
-- the emailed link is used.
CREATE TABLE list_requests (
    list_id TEXT NOT NULL,
    contact_id BIGINT NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    requested_at BIGINT NOT NULL,
    confirmed_at BIGINT,
    PRIMARY KEY (list_id, contact_id)
);
