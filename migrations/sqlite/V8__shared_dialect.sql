-- Nothing to change: the PostgreSQL twin (migrations/postgres/V8__shared_dialect.sql)
-- defines there the SQLite functions (json, two-argument max and min, instr) that
-- the store's shared statements use. Kept so both sets have the same versions.
SELECT 1;
