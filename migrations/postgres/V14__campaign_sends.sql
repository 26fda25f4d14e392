-- Campaigns from campaigns/<id>.yaml: the file's id, its definition as frozen
-- when sending began (later edits change nothing in flight), and the A/B test's
-- end and winner. Each recipient is one email_sends row, frozen with its variant
-- ('planned'; 'held' for the part of the audience that waits for the winner).
ALTER TABLE email_campaigns ADD COLUMN campaign_key TEXT;
ALTER TABLE email_campaigns ADD COLUMN definition TEXT;
ALTER TABLE email_campaigns ADD COLUMN winner TEXT;
ALTER TABLE email_campaigns ADD COLUMN test_ends_at BIGINT;
-- When a send's recipient unsubscribed through it, for the campaign's report.
ALTER TABLE email_sends ADD COLUMN unsubscribed_at BIGINT;
CREATE UNIQUE INDEX email_campaigns_by_key ON email_campaigns (campaign_key);
CREATE INDEX email_sends_by_campaign_id ON email_sends (campaign_id, status, id);
-- SQLite's random bytes and hex, so that one statement freezes a campaign's
-- recipients with their send ids on both stores.
CREATE FUNCTION randomblob(n bigint) RETURNS bytea LANGUAGE sql VOLATILE AS $$
  SELECT decode(substr(md5(random()::text || clock_timestamp()::text)
    || md5(random()::text || clock_timestamp()::text), 1, (least(n, 32) * 2)::int), 'hex')
$$;
CREATE FUNCTION hex(b bytea) RETURNS text LANGUAGE sql IMMUTABLE AS $$
  SELECT upper(encode(b, 'hex'))
$$;
