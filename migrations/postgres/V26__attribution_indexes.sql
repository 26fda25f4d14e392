-- ROI reads the deals won in a period by the time of their stage change, and
-- behaviour paths read a converting contact's events of the day before the
-- conversion: both are range reads of an index now instead of scans.
-- Twin: migrations/sqlite/V26__attribution_indexes.sql.
CREATE INDEX deal_stage_history_by_time ON deal_stage_history (changed_at);
DROP INDEX analytics_events_by_contact;
CREATE INDEX analytics_events_by_contact ON analytics_events (contact_id, occurred_at);
