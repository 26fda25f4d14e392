-- Bounce and complaint reports: each message goes from its own tagged envelope
-- sender (VERP), so a report that comes back names its send; complaints are
-- counted per send like bounces. And the hourly sending count.
ALTER TABLE outbox ADD COLUMN return_path TEXT;
ALTER TABLE email_sends ADD COLUMN complained_at BIGINT;

-- Emails handed over per clock hour (`email.hourly_limit`), counted where the
-- sends are recorded, so every worker and a restarted one see the same count.
CREATE TABLE email_hourly (
    hour BIGINT PRIMARY KEY,
    sent BIGINT NOT NULL
);
