-- Only untied events are indexed by visitor (see the SQLite twin,
-- migrations/sqlite/V6__untied_visits.sql, for why).
DROP INDEX analytics_events_by_visitor;
CREATE INDEX analytics_events_untied ON analytics_events (site_id, visitor, occurred_at)
    WHERE contact_id IS NULL;

-- Every ingestion reads the operators' overrides of `active:`; the few overridden
-- workflows are found by index rather than by scanning the table.
CREATE INDEX workflows_overridden ON workflows (id) WHERE active_override IS NOT NULL;
