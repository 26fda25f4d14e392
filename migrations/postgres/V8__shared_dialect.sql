-- The few SQLite functions the store's shared statements use, defined here so that
-- one statement text serves both backends (see src/store/db.rs). Each is a plain
-- SQL function the planner inlines. Twin: migrations/sqlite/V8__shared_dialect.sql.

-- json(text): a JSON document from its text (SQLite checks and minifies it).
CREATE FUNCTION json(doc text) RETURNS jsonb
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS 'SELECT doc::jsonb';

-- SQLite's two-argument max and min are PostgreSQL's greatest and least.
CREATE FUNCTION max(a bigint, b bigint) RETURNS bigint
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS 'SELECT greatest(a, b)';
CREATE FUNCTION min(a bigint, b bigint) RETURNS bigint
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS 'SELECT least(a, b)';

-- instr(haystack, needle): the 1-based position of needle, 0 when absent.
CREATE FUNCTION instr(haystack text, needle text) RETURNS bigint
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS 'SELECT strpos(haystack, needle)::bigint';

-- Documents stored as JSONB read as their text where SQLite reads stored text.
CREATE FUNCTION lower(doc jsonb) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS 'SELECT lower(doc::text)';
CREATE FUNCTION json_array_length(doc jsonb) RETURNS bigint
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS 'SELECT jsonb_array_length(doc)::bigint';
