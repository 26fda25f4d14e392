-- Site analytics without cookies. Twin: migrations/sqlite/V5__site_analytics.sql.
CREATE TABLE visitor_contacts (
    site_id TEXT NOT NULL,
    visitor TEXT NOT NULL,
    contact_id BIGINT NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    day BIGINT NOT NULL,
    PRIMARY KEY (site_id, visitor)
);
CREATE INDEX visitor_contacts_by_contact ON visitor_contacts (contact_id);
CREATE INDEX analytics_events_by_visitor ON analytics_events (site_id, visitor, occurred_at);
