-- Campaigns from campaigns/<id>.yaml: the file's id, its definition as frozen
-- when sending began (later edits change nothing in flight), and the A/B test's
-- end and winner. Each recipient is one email_sends row, frozen with its variant
-- ('planned'; 'held' for the part of the audience that waits for the winner).
ALTER TABLE email_campaigns ADD COLUMN campaign_key TEXT;
ALTER TABLE email_campaigns ADD COLUMN definition TEXT;
ALTER TABLE email_campaigns ADD COLUMN winner TEXT;
ALTER TABLE email_campaigns ADD COLUMN test_ends_at INTEGER;
-- When a send's recipient unsubscribed through it, for the campaign's report.
ALTER TABLE email_sends ADD COLUMN unsubscribed_at INTEGER;
CREATE UNIQUE INDEX email_campaigns_by_key ON email_campaigns (campaign_key);
CREATE INDEX email_sends_by_campaign_id ON email_sends (campaign_id, status, id);
