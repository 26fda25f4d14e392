-- Contact search covers custom fields: the text values of contact_fields (text,
-- select and email fields) join email, name and company domain in the index.
-- Twin: migrations/postgres/V4__search_fields.sql.
--
-- The index no longer mirrors one table, so it is contentless (it keeps tokens,
-- not text) with contentless_delete: a contact's row is removed by rowid alone,
-- without the old values an external-content table needs. The queue of V2 stays
-- as it is (its old_* columns are no longer read); a change to a contact's fields
-- queues the contact too.
DROP TABLE contacts_fts;
CREATE VIRTUAL TABLE contacts_fts USING fts5 (
    email, name, company_domain, fields,
    content = '', contentless_delete = 1,
    tokenize = 'unicode61 remove_diacritics 2', prefix = '2 3'
);
CREATE TRIGGER contacts_fts_queue_field_insert AFTER INSERT ON contact_fields
WHEN new.value_text IS NOT NULL BEGIN
    INSERT INTO contacts_fts_queue (contact_id, indexed) VALUES (new.contact_id, 1)
    ON CONFLICT (contact_id) DO NOTHING;
END;
CREATE TRIGGER contacts_fts_queue_field_update AFTER UPDATE OF value_text ON contact_fields
WHEN old.value_text IS NOT new.value_text BEGIN
    INSERT INTO contacts_fts_queue (contact_id, indexed) VALUES (new.contact_id, 1)
    ON CONFLICT (contact_id) DO NOTHING;
END;
CREATE TRIGGER contacts_fts_queue_field_delete AFTER DELETE ON contact_fields
WHEN old.value_text IS NOT NULL BEGIN
    INSERT INTO contacts_fts_queue (contact_id, indexed) VALUES (old.contact_id, 1)
    ON CONFLICT (contact_id) DO NOTHING;
END;
-- Everything is indexed afresh (by the worker, or the first search).
DELETE FROM contacts_fts_queue;
INSERT INTO contacts_fts_queue (contact_id, indexed) SELECT id, 0 FROM contacts;
