-- Sync: a stamp (hybrid clock wall, node) per synced item of a contact, kept
-- by triggers in the transaction that changes the item (once the store syncs),
-- so no write path can forget it. Items: 'f:<column>' (name, phone, company_domain, status, stage),
-- 'c:<custom field>', 't:<tag>', 'l:<list>' (registers: latest stamp wins);
-- 'a:<node>:<id>' activities, 'p:<node>:<id>' score adjustments,
-- 'k:<node>:<id>' consent records (unions; `ref` is the local row) and
-- 's:<email hash>' suppressions (contact_id 0). `ord` orders the change feed:
-- every stamp written gets a new one, so a cursor (ord, id) pages through
-- what changed since. `peer` is the store a change came from (NULL: made here),
-- so a change is never sent back where it came from. Twin:
-- migrations/postgres/V22__sync_stamps.sql.
CREATE TABLE sync_clock (
    one INTEGER PRIMARY KEY CHECK (one = 1),
    node TEXT NOT NULL,
    -- The latest wall seen from another store: local stamps sort after it.
    wall INTEGER NOT NULL DEFAULT 0,
    -- 1 inside the transaction that applies another store's changes: those
    -- keep their own stamps.
    applying INTEGER NOT NULL DEFAULT 0,
    -- 1 once the store synced: until then no trigger writes anything (a
    -- store that never syncs pays one read of this row per change), and the
    -- first sync stamps what the store holds (`sync::store::enable`).
    enabled INTEGER NOT NULL DEFAULT 0,
    -- The largest `ord` ever deleted: a new stamp's `ord` stays above it, so
    -- the feed never hands out a place a cursor has passed.
    ord_floor INTEGER NOT NULL DEFAULT 0
);
INSERT INTO sync_clock (one, node) VALUES (1, lower(hex(randomblob(8))));

CREATE TABLE sync_stamps (
    id INTEGER PRIMARY KEY,
    contact_id INTEGER NOT NULL,
    item TEXT NOT NULL,
    ref INTEGER,
    wall INTEGER NOT NULL,
    node TEXT NOT NULL,
    ord INTEGER NOT NULL,
    peer TEXT,
    UNIQUE (contact_id, item)
);
CREATE INDEX sync_stamps_feed ON sync_stamps (ord, id);

-- Where this store stands with each store it syncs with: the last of its own
-- feed the other acknowledged, and the last of the other's feed applied here.
CREATE TABLE sync_peers (
    peer TEXT PRIMARY KEY,
    name TEXT,
    pushed TEXT NOT NULL DEFAULT '',
    pulled TEXT NOT NULL DEFAULT '',
    synced_at INTEGER
);

-- One stamp: the item of a contact changed now, on this node, and always
-- after the item's previous stamp (a clock stepping back or a stamp received
-- from a faster clock never makes a new edit sort before an older one).
-- (SQLite has no functions; each trigger repeats this statement.)
CREATE TRIGGER sync_contacts_insert AFTER INSERT ON contacts
WHEN (SELECT enabled = 1 AND applying = 0 FROM sync_clock) BEGIN
    INSERT INTO sync_stamps (contact_id, item, wall, node, ord)
    SELECT new.id, 'f:' || k, max(c.wall + 1, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)),
        c.node, max(c.ord_floor, (SELECT coalesce(max(ord), 0) FROM sync_stamps)) + 1
    FROM sync_clock c, (
        SELECT 'name' AS k WHERE new.name IS NOT NULL
        UNION ALL SELECT 'phone' WHERE new.phone IS NOT NULL
        UNION ALL SELECT 'company_domain' WHERE new.company_domain IS NOT NULL
        UNION ALL SELECT 'status' WHERE new.status IS NOT NULL
        UNION ALL SELECT 'stage' WHERE new.stage IS NOT NULL
    ) WHERE true
    ON CONFLICT (contact_id, item) DO UPDATE SET wall = max(excluded.wall, sync_stamps.wall + 1), node = excluded.node,
        ord = excluded.ord, peer = NULL;
END;

CREATE TRIGGER sync_contacts_update AFTER UPDATE OF name, phone, company_domain, status, stage ON contacts
WHEN (SELECT enabled = 1 AND applying = 0 FROM sync_clock) BEGIN
    INSERT INTO sync_stamps (contact_id, item, wall, node, ord)
    SELECT new.id, 'f:' || k, max(c.wall + 1, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)),
        c.node, max(c.ord_floor, (SELECT coalesce(max(ord), 0) FROM sync_stamps)) + 1
    FROM sync_clock c, (
        SELECT 'name' AS k WHERE new.name IS NOT old.name
        UNION ALL SELECT 'phone' WHERE new.phone IS NOT old.phone
        UNION ALL SELECT 'company_domain' WHERE new.company_domain IS NOT old.company_domain
        UNION ALL SELECT 'status' WHERE new.status IS NOT old.status
        UNION ALL SELECT 'stage' WHERE new.stage IS NOT old.stage
    ) WHERE true
    ON CONFLICT (contact_id, item) DO UPDATE SET wall = max(excluded.wall, sync_stamps.wall + 1), node = excluded.node,
        ord = excluded.ord, peer = NULL;
END;

-- A deleted contact (merged away or erased) takes its stamps with it; an
-- erasure leaves its suppression's stamp.
CREATE TRIGGER sync_contacts_delete AFTER DELETE ON contacts
WHEN (SELECT enabled FROM sync_clock) = 1 BEGIN
    UPDATE sync_clock SET ord_floor = max(ord_floor, (SELECT coalesce(max(ord), 0) FROM sync_stamps));
    DELETE FROM sync_stamps WHERE contact_id = old.id;
END;

CREATE TRIGGER sync_fields_insert AFTER INSERT ON contact_fields
WHEN (SELECT enabled = 1 AND applying = 0 FROM sync_clock) BEGIN
    INSERT INTO sync_stamps (contact_id, item, wall, node, ord)
    SELECT new.contact_id, 'c:' || new.field, max(c.wall + 1, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)),
        c.node, max(c.ord_floor, (SELECT coalesce(max(ord), 0) FROM sync_stamps)) + 1
    FROM sync_clock c WHERE true
    ON CONFLICT (contact_id, item) DO UPDATE SET wall = max(excluded.wall, sync_stamps.wall + 1), node = excluded.node,
        ord = excluded.ord, peer = NULL;
END;

CREATE TRIGGER sync_fields_update AFTER UPDATE ON contact_fields
WHEN (SELECT enabled = 1 AND applying = 0 FROM sync_clock)
    AND (new.value_text IS NOT old.value_text OR new.value_num IS NOT old.value_num) BEGIN
    INSERT INTO sync_stamps (contact_id, item, wall, node, ord)
    SELECT new.contact_id, 'c:' || new.field, max(c.wall + 1, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)),
        c.node, max(c.ord_floor, (SELECT coalesce(max(ord), 0) FROM sync_stamps)) + 1
    FROM sync_clock c WHERE true
    ON CONFLICT (contact_id, item) DO UPDATE SET wall = max(excluded.wall, sync_stamps.wall + 1), node = excluded.node,
        ord = excluded.ord, peer = NULL;
END;

CREATE TRIGGER sync_fields_delete AFTER DELETE ON contact_fields
WHEN (SELECT enabled = 1 AND applying = 0 FROM sync_clock) BEGIN
    INSERT INTO sync_stamps (contact_id, item, wall, node, ord)
    SELECT old.contact_id, 'c:' || old.field, max(c.wall + 1, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)),
        c.node, max(c.ord_floor, (SELECT coalesce(max(ord), 0) FROM sync_stamps)) + 1
    FROM sync_clock c WHERE EXISTS (SELECT 1 FROM contacts WHERE id = old.contact_id)
    ON CONFLICT (contact_id, item) DO UPDATE SET wall = max(excluded.wall, sync_stamps.wall + 1), node = excluded.node,
        ord = excluded.ord, peer = NULL;
END;

CREATE TRIGGER sync_tags_insert AFTER INSERT ON contact_tags
WHEN (SELECT enabled = 1 AND applying = 0 FROM sync_clock) BEGIN
    INSERT INTO sync_stamps (contact_id, item, wall, node, ord)
    SELECT new.contact_id, 't:' || new.tag, max(c.wall + 1, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)),
        c.node, max(c.ord_floor, (SELECT coalesce(max(ord), 0) FROM sync_stamps)) + 1
    FROM sync_clock c WHERE true
    ON CONFLICT (contact_id, item) DO UPDATE SET wall = max(excluded.wall, sync_stamps.wall + 1), node = excluded.node,
        ord = excluded.ord, peer = NULL;
END;

CREATE TRIGGER sync_tags_delete AFTER DELETE ON contact_tags
WHEN (SELECT enabled = 1 AND applying = 0 FROM sync_clock) BEGIN
    INSERT INTO sync_stamps (contact_id, item, wall, node, ord)
    SELECT old.contact_id, 't:' || old.tag, max(c.wall + 1, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)),
        c.node, max(c.ord_floor, (SELECT coalesce(max(ord), 0) FROM sync_stamps)) + 1
    FROM sync_clock c WHERE EXISTS (SELECT 1 FROM contacts WHERE id = old.contact_id)
    ON CONFLICT (contact_id, item) DO UPDATE SET wall = max(excluded.wall, sync_stamps.wall + 1), node = excluded.node,
        ord = excluded.ord, peer = NULL;
END;

CREATE TRIGGER sync_lists_insert AFTER INSERT ON list_members
WHEN (SELECT enabled = 1 AND applying = 0 FROM sync_clock) BEGIN
    INSERT INTO sync_stamps (contact_id, item, wall, node, ord)
    SELECT new.contact_id, 'l:' || new.list_id, max(c.wall + 1, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)),
        c.node, max(c.ord_floor, (SELECT coalesce(max(ord), 0) FROM sync_stamps)) + 1
    FROM sync_clock c WHERE true
    ON CONFLICT (contact_id, item) DO UPDATE SET wall = max(excluded.wall, sync_stamps.wall + 1), node = excluded.node,
        ord = excluded.ord, peer = NULL;
END;

CREATE TRIGGER sync_lists_delete AFTER DELETE ON list_members
WHEN (SELECT enabled = 1 AND applying = 0 FROM sync_clock) BEGIN
    INSERT INTO sync_stamps (contact_id, item, wall, node, ord)
    SELECT old.contact_id, 'l:' || old.list_id, max(c.wall + 1, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)),
        c.node, max(c.ord_floor, (SELECT coalesce(max(ord), 0) FROM sync_stamps)) + 1
    FROM sync_clock c WHERE EXISTS (SELECT 1 FROM contacts WHERE id = old.contact_id)
    ON CONFLICT (contact_id, item) DO UPDATE SET wall = max(excluded.wall, sync_stamps.wall + 1), node = excluded.node,
        ord = excluded.ord, peer = NULL;
END;

CREATE TRIGGER sync_activities_insert AFTER INSERT ON activities
WHEN (SELECT enabled = 1 AND applying = 0 FROM sync_clock) BEGIN
    INSERT INTO sync_stamps (contact_id, item, ref, wall, node, ord)
    SELECT new.contact_id, 'a:' || c.node || ':' || new.id, new.id,
        max(c.wall + 1, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)),
        c.node, max(c.ord_floor, (SELECT coalesce(max(ord), 0) FROM sync_stamps)) + 1
    FROM sync_clock c WHERE true
    ON CONFLICT (contact_id, item) DO NOTHING;
END;

CREATE TRIGGER sync_adjustments_insert AFTER INSERT ON score_adjustments
WHEN (SELECT enabled = 1 AND applying = 0 FROM sync_clock) BEGIN
    INSERT INTO sync_stamps (contact_id, item, ref, wall, node, ord)
    SELECT new.contact_id, 'p:' || c.node || ':' || new.id, new.id,
        max(c.wall + 1, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)),
        c.node, max(c.ord_floor, (SELECT coalesce(max(ord), 0) FROM sync_stamps)) + 1
    FROM sync_clock c WHERE true
    ON CONFLICT (contact_id, item) DO NOTHING;
END;

CREATE TRIGGER sync_consent_insert AFTER INSERT ON consent_ledger
WHEN (SELECT enabled = 1 AND applying = 0 FROM sync_clock) AND new.contact_id IS NOT NULL BEGIN
    INSERT INTO sync_stamps (contact_id, item, ref, wall, node, ord)
    SELECT new.contact_id, 'k:' || c.node || ':' || new.id, new.id,
        max(c.wall + 1, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)),
        c.node, max(c.ord_floor, (SELECT coalesce(max(ord), 0) FROM sync_stamps)) + 1
    FROM sync_clock c WHERE true
    ON CONFLICT (contact_id, item) DO NOTHING;
END;

-- A suppression (and an erasure, the 'forgotten' one) reaches every store.
CREATE TRIGGER sync_suppressions_insert AFTER INSERT ON suppressions
WHEN (SELECT enabled = 1 AND applying = 0 FROM sync_clock) BEGIN
    INSERT INTO sync_stamps (contact_id, item, wall, node, ord)
    SELECT 0, 's:' || new.email_hash, max(c.wall + 1, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)),
        c.node, max(c.ord_floor, (SELECT coalesce(max(ord), 0) FROM sync_stamps)) + 1
    FROM sync_clock c WHERE true
    ON CONFLICT (contact_id, item) DO UPDATE SET wall = max(excluded.wall, sync_stamps.wall + 1), node = excluded.node,
        ord = excluded.ord, peer = NULL;
END;

CREATE TRIGGER sync_suppressions_update AFTER UPDATE OF reason ON suppressions
WHEN (SELECT enabled = 1 AND applying = 0 FROM sync_clock) AND new.reason IS NOT old.reason BEGIN
    INSERT INTO sync_stamps (contact_id, item, wall, node, ord)
    SELECT 0, 's:' || new.email_hash, max(c.wall + 1, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)),
        c.node, max(c.ord_floor, (SELECT coalesce(max(ord), 0) FROM sync_stamps)) + 1
    FROM sync_clock c WHERE true
    ON CONFLICT (contact_id, item) DO UPDATE SET wall = max(excluded.wall, sync_stamps.wall + 1), node = excluded.node,
        ord = excluded.ord, peer = NULL;
END;

