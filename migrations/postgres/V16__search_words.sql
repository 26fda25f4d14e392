-- Search splits text into words at anything not a letter or a digit, as the
-- SQLite twin's FTS5 tokenizer does (migrations/sqlite/V16__search_words.sql).
-- PostgreSQL's parser keeps an email address or a host name as one token, so
-- `edsger@structured.example` was not found by the words `structured example`:
-- the generated column and the custom fields' index now see the text with its
-- punctuation turned into spaces first.
ALTER TABLE contacts DROP COLUMN search;
ALTER TABLE contacts ADD COLUMN search tsvector GENERATED ALWAYS AS (
    to_tsvector('simple', regexp_replace(
        coalesce(email, '') || ' ' || coalesce(name, '') || ' ' || coalesce(company_domain, ''),
        '[^[:alnum:]]+', ' ', 'g'))
) STORED;
CREATE INDEX contacts_search ON contacts USING GIN (search);

DROP INDEX contact_fields_search;
CREATE INDEX contact_fields_search ON contact_fields
    USING GIN (to_tsvector('simple', regexp_replace(value_text, '[^[:alnum:]]+', ' ', 'g')))
    WHERE value_text IS NOT NULL;
