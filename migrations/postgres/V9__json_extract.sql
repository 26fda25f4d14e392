-- SQLite's json_extract for the statements both backends share. Twin:
-- migrations/sqlite/V9__json_extract.sql (SQLite has it built in).
--
-- json_extract(doc, '$.a.b'): the value at a path, as text for comparisons the
-- way SQLite's reads once compared with a bound value: a string unquoted, a
-- number in its shortest float form (20.0 as 20), true and false as 1 and 0,
-- JSON null as NULL. Keys may be quoted ('$."a b"'); a key holding a dot is not
-- supported.
CREATE FUNCTION json_extract(doc jsonb, path text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE jsonb_typeof(v)
        WHEN 'boolean' THEN CASE WHEN v = 'true'::jsonb THEN '1' ELSE '0' END
        WHEN 'null' THEN NULL
        -- A number as a float prints it: 20.0 and 20 alike read 20.
        WHEN 'number' THEN ((v #>> '{}')::float8)::text
        ELSE v #>> '{}'
    END
    FROM (SELECT doc #> string_to_array(replace(substr(path, 3), '"', ''), '.') AS v) AS at_path
$$;

-- Documents kept as TEXT (first and last touch) read the same way.
CREATE FUNCTION json_extract(doc text, path text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS 'SELECT json_extract(doc::jsonb, path)';
