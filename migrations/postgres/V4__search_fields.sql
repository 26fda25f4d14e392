-- Contact search covers custom fields. Twin: migrations/sqlite/V4__search_fields.sql
-- (there the FTS5 index takes a fourth column). Here contacts.search stays a
-- generated column of the contact row, and the text values of custom fields get
-- their own GIN index, which a search ORs with contacts.search (a documented
-- dialect difference, like contacts.search itself).
CREATE INDEX contact_fields_search ON contact_fields
    USING GIN (to_tsvector('simple', value_text)) WHERE value_text IS NOT NULL;
