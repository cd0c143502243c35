-- The schema the shipped sinks write their tables into (collection.name.format
-- "warehouse.<topic>"); docker-compose.yml's warehouse profile runs this on a new database.
CREATE SCHEMA IF NOT EXISTS warehouse;
