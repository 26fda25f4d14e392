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

-- While a page is applied the stamping triggers are not called at all: a
-- trigger's `WHEN` is checked before an after-row event is queued, where a
-- call of the function cost 5 to 7 µs a row of every page. A contact's
-- deletion still removes its stamps (its own trigger, always called).
DROP TRIGGER sync_contacts ON contacts;
CREATE TRIGGER sync_contacts AFTER INSERT OR UPDATE OF name, phone, company_domain, status, stage
ON contacts FOR EACH ROW
WHEN (current_setting('funnel.sync_applying', true) IS DISTINCT FROM '1')
EXECUTE FUNCTION sync_contacts_stamp();
CREATE TRIGGER sync_contacts_gone AFTER DELETE ON contacts
FOR EACH ROW EXECUTE FUNCTION sync_contacts_stamp();

DROP TRIGGER sync_fields ON contact_fields;
CREATE TRIGGER sync_fields AFTER INSERT OR UPDATE OR DELETE ON contact_fields FOR EACH ROW
WHEN (current_setting('funnel.sync_applying', true) IS DISTINCT FROM '1')
EXECUTE FUNCTION sync_member_stamp();
DROP TRIGGER sync_tags ON contact_tags;
CREATE TRIGGER sync_tags AFTER INSERT OR DELETE ON contact_tags FOR EACH ROW
WHEN (current_setting('funnel.sync_applying', true) IS DISTINCT FROM '1')
EXECUTE FUNCTION sync_member_stamp();
DROP TRIGGER sync_lists ON list_members;
CREATE TRIGGER sync_lists AFTER INSERT OR DELETE ON list_members FOR EACH ROW
WHEN (current_setting('funnel.sync_applying', true) IS DISTINCT FROM '1')
EXECUTE FUNCTION sync_member_stamp();
DROP TRIGGER sync_activities ON activities;
CREATE TRIGGER sync_activities AFTER INSERT ON activities FOR EACH ROW
WHEN (current_setting('funnel.sync_applying', true) IS DISTINCT FROM '1')
EXECUTE FUNCTION sync_union_stamp('a:');
DROP TRIGGER sync_adjustments ON score_adjustments;
CREATE TRIGGER sync_adjustments AFTER INSERT ON score_adjustments FOR EACH ROW
WHEN (current_setting('funnel.sync_applying', true) IS DISTINCT FROM '1')
EXECUTE FUNCTION sync_union_stamp('p:');
DROP TRIGGER sync_consent ON consent_ledger;
CREATE TRIGGER sync_consent AFTER INSERT ON consent_ledger FOR EACH ROW
WHEN (current_setting('funnel.sync_applying', true) IS DISTINCT FROM '1')
EXECUTE FUNCTION sync_union_stamp('k:');
DROP TRIGGER sync_suppressions ON suppressions;
CREATE TRIGGER sync_suppressions AFTER INSERT OR UPDATE OF reason ON suppressions FOR EACH ROW
WHEN (current_setting('funnel.sync_applying', true) IS DISTINCT FROM '1')
EXECUTE FUNCTION sync_suppression_stamp();
