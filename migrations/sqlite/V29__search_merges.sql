-- The contact search index merges its segments in bounded steps taken by each
-- indexing batch (`store::search`), not automatically: FTS5's automatic merges
-- grow with the index (200 ms and more at a few hundred thousand contacts) and
-- run inside whichever write flushed the index, where a form post may wait
-- behind them. Twin: migrations/postgres/V29__search_merges.sql.
INSERT INTO contacts_fts (contacts_fts, rank) VALUES ('automerge', 0);
