-- SQLite has json_extract built in; PostgreSQL defines it for the statements both
-- backends share. Twin: migrations/postgres/V9__json_extract.sql.
SELECT 1;
