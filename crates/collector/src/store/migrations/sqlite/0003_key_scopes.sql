-- Ingest keys scoped to the models they may write: comma-separated names or `prefix*`
-- patterns; null (every key made before this) allows every model.
ALTER TABLE api_keys ADD COLUMN models TEXT;
