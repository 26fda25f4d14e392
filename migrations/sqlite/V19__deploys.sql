-- Each deploy of a published site (`funnel deploy`): where it went, what is
-- live there now, who did it. Twin: migrations/postgres/V19__deploys.sql.
CREATE TABLE deploys (
    id INTEGER PRIMARY KEY,
    site TEXT NOT NULL,
    target TEXT NOT NULL,
    revision TEXT NOT NULL,
    changed INTEGER NOT NULL,
    files INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    actor TEXT NOT NULL,
    deployed_at INTEGER NOT NULL
);
CREATE INDEX deploys_by_site ON deploys (site, deployed_at);
