-- `funnel status` and the daemon's per-minute rollups count the emails sent
-- and bounced in a window; these partial indexes keep that a range read of
-- the window (rows not yet sent or never bounced are not in them).
-- Twin: migrations/postgres/V24__status_indexes.sql.
CREATE INDEX email_sends_by_sent ON email_sends (sent_at) WHERE sent_at IS NOT NULL;
CREATE INDEX email_sends_by_bounce ON email_sends (bounced_at) WHERE bounced_at IS NOT NULL;
