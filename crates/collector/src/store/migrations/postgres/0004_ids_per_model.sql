-- Batch ids and sessions are unique per model version, not across the whole collector: a key
-- that may write only its own models cannot claim a batch id or a session another deployment
-- will use (its batch would answer `duplicate`) or raise that session's loss totals. A retried
-- batch carries the same model, so it is still found.
ALTER TABLE batches DROP CONSTRAINT batches_batch_id_key;
ALTER TABLE batches ADD CONSTRAINT batches_model_batch_id UNIQUE (model_id, batch_id);

ALTER TABLE sessions DROP CONSTRAINT sessions_pkey;
ALTER TABLE sessions ADD PRIMARY KEY (model_id, session);
DROP INDEX sessions_by_model;
