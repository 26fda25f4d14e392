-- A form post ties the day's visitor to a contact (src/analytics.rs, `tie`): it
-- looks for that visitor's events not tied yet. Indexing every event of the
-- visitor made each post scan the ones tied before, so one address posting all
-- day got slower with every post. Only untied events are indexed now; once tied,
-- an event leaves the index. Twin: migrations/postgres/V6__untied_visits.sql.
DROP INDEX analytics_events_by_visitor;
CREATE INDEX analytics_events_untied ON analytics_events (site_id, visitor, occurred_at)
    WHERE contact_id IS NULL;

-- Every ingestion reads the operators' overrides of `active:`; the few overridden
-- workflows are found by index rather than by scanning the table.
CREATE INDEX workflows_overridden ON workflows (id) WHERE active_override IS NOT NULL;
