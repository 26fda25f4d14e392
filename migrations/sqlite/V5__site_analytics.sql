-- Site analytics without cookies (see src/analytics.rs). Twin:
-- migrations/postgres/V5__site_analytics.sql.
--
-- A visitor is a daily hash of site, address and browser; when a visitor submits
-- a form or arrives through a tracked email link, the day's hash is tied to the
-- contact here, and that visitor's events of the day carry the contact.
CREATE TABLE visitor_contacts (
    site_id TEXT NOT NULL,
    visitor TEXT NOT NULL,
    contact_id INTEGER NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    day INTEGER NOT NULL,
    PRIMARY KEY (site_id, visitor)
);
CREATE INDEX visitor_contacts_by_contact ON visitor_contacts (contact_id);
-- A visitor's events of the day, to tie them to a contact in one statement.
CREATE INDEX analytics_events_by_visitor ON analytics_events (site_id, visitor, occurred_at);
