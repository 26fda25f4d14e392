-- Funnels' email steps and the status block read the opens and clicks of a
-- period; these partial indexes make that a range read of the period (rows
-- never opened or clicked are not in them). `workflow_analytics`, kept since
-- V1 and never written, is dropped: `workflow_days` (V25) holds the daily
-- figures. Twin: migrations/sqlite/V28__email_event_indexes.sql.
CREATE INDEX email_sends_by_open ON email_sends (opened_at) WHERE opened_at IS NOT NULL;
CREATE INDEX email_sends_by_click ON email_sends (clicked_at) WHERE clicked_at IS NOT NULL;
DROP TABLE workflow_analytics;
