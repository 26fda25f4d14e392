-- PostgreSQL's twin (migrations/postgres/V30__sync_side_by_side.sql) lets sync
-- pages be applied side by side on its several writer connections. SQLite has
-- one writer, whose transaction sets `sync_clock.applying` as before: nothing
-- changes here.
SELECT 1;
