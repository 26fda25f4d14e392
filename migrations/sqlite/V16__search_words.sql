-- Twin of migrations/postgres/V16__search_words.sql, which makes PostgreSQL's
-- search split words at punctuation. FTS5's unicode61 tokenizer here already
-- does: nothing changes.
SELECT 1;
