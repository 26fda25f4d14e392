-- Sync pages are applied side by side on the hub's writer connections. An
-- apply used to set `sync_clock.applying` for its transaction, which held the
-- one clock row's lock to its end, so rounds waited for each other whole. The
-- flag is now a transaction-local setting (`funnel.sync_applying`, set with
-- `set_config(…, true)`) that only the applying transaction sees and that ends
-- with it; the column stays for the SQLite twin's sake and is no longer set.
-- Twin: migrations/sqlite/V30__sync_side_by_side.sql.
CREATE OR REPLACE FUNCTION sync_stamp(c BIGINT, it TEXT, r BIGINT) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    clk RECORD;
BEGIN
    IF current_setting('funnel.sync_applying', true) = '1' THEN
        RETURN;
    END IF;
    SELECT node, wall, applying, enabled INTO clk FROM sync_clock;
    IF NOT FOUND OR clk.applying <> 0 OR clk.enabled = 0 THEN
        RETURN;
    END IF;
    PERFORM pg_advisory_xact_lock_shared(sync_lock_key());
    IF r IS NULL THEN
        INSERT INTO sync_stamps (contact_id, item, wall, node, ord)
        VALUES (c, it, greatest(clk.wall + 1, (extract(epoch FROM clock_timestamp()) * 1000)::bigint),
            clk.node, nextval('sync_ord'))
        ON CONFLICT (contact_id, item) DO UPDATE SET wall = greatest(excluded.wall, sync_stamps.wall + 1),
            node = excluded.node, ord = excluded.ord, peer = NULL;
    ELSE
        INSERT INTO sync_stamps (contact_id, item, ref, wall, node, ord)
        VALUES (c, it || clk.node || ':' || r, r,
            greatest(clk.wall + 1, (extract(epoch FROM clock_timestamp()) * 1000)::bigint),
            clk.node, nextval('sync_ord'))
        ON CONFLICT (contact_id, item) DO NOTHING;
    END IF;
END $$;
