-- Which key first sent each model version: a key may register only so many
-- (`max_model_versions_per_key`), so a public key cannot grow the models every evaluator pass,
-- gauge and `GET /v1/models` walk. Rows from before have none and count for no key.
ALTER TABLE models ADD COLUMN key_id BIGINT;
CREATE INDEX models_by_key ON models (key_id);
