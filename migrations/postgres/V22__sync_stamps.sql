-- Sync: a stamp (hybrid clock wall, node) per synced item of a contact, kept
-- by triggers in the transaction that changes the item. Twin of
-- migrations/sqlite/V22__sync_stamps.sql, which explains the items. Here
-- writers run side by side, so a stamp's `ord` (from a sequence) may commit
-- after a larger one: every stamping transaction holds a shared advisory lock
-- (`sync_lock_key()`), and the feed reads only up to the sequence's value
-- taken while it briefly held that lock alone, when no stamp was in flight.
CREATE TABLE sync_clock (
    one INTEGER PRIMARY KEY CHECK (one = 1),
    node TEXT NOT NULL,
    wall BIGINT NOT NULL DEFAULT 0,
    applying INTEGER NOT NULL DEFAULT 0,
    -- 1 once the store synced (see the twin).
    enabled INTEGER NOT NULL DEFAULT 0,
    -- SQLite's twin keeps its largest deleted `ord` here; the sequence
    -- never goes back.
    ord_floor BIGINT NOT NULL DEFAULT 0
);
INSERT INTO sync_clock (one, node) VALUES (1, lower(hex(randomblob(8))));

CREATE SEQUENCE sync_ord START 2;
CREATE TABLE sync_stamps (
    id BIGSERIAL PRIMARY KEY,
    contact_id BIGINT NOT NULL,
    item TEXT NOT NULL,
    ref BIGINT,
    wall BIGINT NOT NULL,
    node TEXT NOT NULL,
    ord BIGINT NOT NULL,
    peer TEXT,
    UNIQUE (contact_id, item)
);
CREATE INDEX sync_stamps_feed ON sync_stamps (ord, id);

-- The advisory lock of this schema's feed (tests run one schema each).
CREATE FUNCTION sync_lock_key() RETURNS bigint LANGUAGE sql STABLE AS $$
  SELECT hashtext(current_schema() || '.funnel_sync')::bigint
$$;

-- Up to which `ord` the feed is final: the sequence's value read while
-- holding the feed's lock alone (NULL while stamping transactions hold it).
-- A session lock outlives a rolled-back transaction, so it is released on
-- every path, the failing one included.
CREATE FUNCTION sync_horizon() RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    last BIGINT;
BEGIN
    IF NOT pg_try_advisory_lock(sync_lock_key()) THEN
        RETURN NULL;
    END IF;
    BEGIN
        SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END INTO last FROM sync_ord;
    EXCEPTION WHEN OTHERS THEN
        PERFORM pg_advisory_unlock(sync_lock_key());
        RAISE;
    END;
    PERFORM pg_advisory_unlock(sync_lock_key());
    RETURN last;
END $$;

CREATE TABLE sync_peers (
    peer TEXT PRIMARY KEY,
    name TEXT,
    pushed TEXT NOT NULL DEFAULT '',
    pulled TEXT NOT NULL DEFAULT '',
    synced_at BIGINT
);

-- One stamp: the item of a contact changed now, on this node, and always
-- after the item's previous stamp. A register's stamp moves; a union item's
-- (`ref` set) is written once.
CREATE FUNCTION sync_stamp(c BIGINT, it TEXT, r BIGINT) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    clk RECORD;
BEGIN
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

CREATE FUNCTION sync_contacts_stamp() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        DELETE FROM sync_stamps WHERE contact_id = OLD.id;
        RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' THEN
        IF NEW.name IS NOT NULL THEN PERFORM sync_stamp(NEW.id, 'f:name', NULL); END IF;
        IF NEW.phone IS NOT NULL THEN PERFORM sync_stamp(NEW.id, 'f:phone', NULL); END IF;
        IF NEW.company_domain IS NOT NULL THEN PERFORM sync_stamp(NEW.id, 'f:company_domain', NULL); END IF;
        IF NEW.status IS NOT NULL THEN PERFORM sync_stamp(NEW.id, 'f:status', NULL); END IF;
        IF NEW.stage IS NOT NULL THEN PERFORM sync_stamp(NEW.id, 'f:stage', NULL); END IF;
    ELSE
        IF NEW.name IS DISTINCT FROM OLD.name THEN PERFORM sync_stamp(NEW.id, 'f:name', NULL); END IF;
        IF NEW.phone IS DISTINCT FROM OLD.phone THEN PERFORM sync_stamp(NEW.id, 'f:phone', NULL); END IF;
        IF NEW.company_domain IS DISTINCT FROM OLD.company_domain THEN PERFORM sync_stamp(NEW.id, 'f:company_domain', NULL); END IF;
        IF NEW.status IS DISTINCT FROM OLD.status THEN PERFORM sync_stamp(NEW.id, 'f:status', NULL); END IF;
        IF NEW.stage IS DISTINCT FROM OLD.stage THEN PERFORM sync_stamp(NEW.id, 'f:stage', NULL); END IF;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER sync_contacts AFTER INSERT OR UPDATE OF name, phone, company_domain, status, stage OR DELETE
ON contacts FOR EACH ROW EXECUTE FUNCTION sync_contacts_stamp();

-- A membership's or field's removal is stamped only while its contact exists
-- (not while the contact's own deletion cascades).
CREATE FUNCTION sync_member_stamp() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    row_contact BIGINT;
    key TEXT;
BEGIN
    IF TG_OP = 'DELETE' THEN
        row_contact := OLD.contact_id;
        IF NOT EXISTS (SELECT 1 FROM contacts WHERE id = row_contact) THEN
            RETURN NULL;
        END IF;
    ELSE
        row_contact := NEW.contact_id;
    END IF;
    IF TG_TABLE_NAME = 'contact_fields' THEN
        IF TG_OP = 'UPDATE' AND NEW.value_text IS NOT DISTINCT FROM OLD.value_text
            AND NEW.value_num IS NOT DISTINCT FROM OLD.value_num THEN
            RETURN NULL;
        END IF;
        key := 'c:' || CASE WHEN TG_OP = 'DELETE' THEN OLD.field ELSE NEW.field END;
    ELSIF TG_TABLE_NAME = 'contact_tags' THEN
        key := 't:' || CASE WHEN TG_OP = 'DELETE' THEN OLD.tag ELSE NEW.tag END;
    ELSE
        key := 'l:' || CASE WHEN TG_OP = 'DELETE' THEN OLD.list_id ELSE NEW.list_id END;
    END IF;
    PERFORM sync_stamp(row_contact, key, NULL);
    RETURN NULL;
END $$;
CREATE TRIGGER sync_fields AFTER INSERT OR UPDATE OR DELETE ON contact_fields
FOR EACH ROW EXECUTE FUNCTION sync_member_stamp();
CREATE TRIGGER sync_tags AFTER INSERT OR DELETE ON contact_tags
FOR EACH ROW EXECUTE FUNCTION sync_member_stamp();
CREATE TRIGGER sync_lists AFTER INSERT OR DELETE ON list_members
FOR EACH ROW EXECUTE FUNCTION sync_member_stamp();

CREATE FUNCTION sync_union_stamp() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.contact_id IS NULL THEN
        RETURN NULL;
    END IF;
    PERFORM sync_stamp(NEW.contact_id, TG_ARGV[0], NEW.id);
    RETURN NULL;
END $$;
CREATE TRIGGER sync_activities AFTER INSERT ON activities
FOR EACH ROW EXECUTE FUNCTION sync_union_stamp('a:');
CREATE TRIGGER sync_adjustments AFTER INSERT ON score_adjustments
FOR EACH ROW EXECUTE FUNCTION sync_union_stamp('p:');
CREATE TRIGGER sync_consent AFTER INSERT ON consent_ledger
FOR EACH ROW EXECUTE FUNCTION sync_union_stamp('k:');

CREATE FUNCTION sync_suppression_stamp() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.reason IS NOT DISTINCT FROM OLD.reason THEN
        RETURN NULL;
    END IF;
    PERFORM sync_stamp(0, 's:' || NEW.email_hash, NULL);
    RETURN NULL;
END $$;
CREATE TRIGGER sync_suppressions AFTER INSERT OR UPDATE OF reason ON suppressions
FOR EACH ROW EXECUTE FUNCTION sync_suppression_stamp();

