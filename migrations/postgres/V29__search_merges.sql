-- Nothing to change on PostgreSQL: its search is a GIN index kept by the
-- server. The version keeps both backends' migrations in step. Twin:
-- migrations/sqlite/V29__search_merges.sql.
SELECT 1;
