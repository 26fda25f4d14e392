-- Visitors, page views and exits per site, page and UTC day, computed once
-- when the day is over (src/analytics/site_days.rs): counting distinct
-- visitors and the last page of each visit over raw events took a second on
-- a month of 2,000,000 events; reports now read one row per page and day,
-- and compute only the days not rolled up yet. `site_analytics.visitors` is
-- filled at the same time; the mark is `rollup_marks` 'site_days'.
-- Twin: migrations/sqlite/V27__page_days.sql.
CREATE TABLE page_days (
    site_id TEXT NOT NULL,
    day BIGINT NOT NULL,
    page TEXT NOT NULL,
    views BIGINT NOT NULL,
    -- Visits whose last page this was, without a form post.
    exits BIGINT NOT NULL,
    PRIMARY KEY (site_id, day, page)
);
