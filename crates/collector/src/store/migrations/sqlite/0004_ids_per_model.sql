-- Batch ids and sessions are unique per model version, not across the whole collector: a key
-- that may write only its own models cannot claim a batch id or a session another deployment
-- will use (its batch would answer `duplicate`) or raise that session's loss totals. A retried
-- batch carries the same model, so it is still found. SQLite cannot drop a UNIQUE or a PRIMARY
-- KEY in place: both tables are rebuilt (AUTOINCREMENT carries on from the largest seq copied).
CREATE TABLE batches_new (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    batch_id    TEXT NOT NULL,
    session     TEXT NOT NULL,
    model_id    INTEGER NOT NULL REFERENCES models (id),
    source_kind TEXT NOT NULL,
    source_node TEXT NOT NULL,
    sdk_version TEXT NOT NULL,
    key_id      INTEGER,
    received_ms INTEGER NOT NULL,
    records     INTEGER NOT NULL,
    rejected    INTEGER NOT NULL,
    predictions INTEGER NOT NULL DEFAULT 0,
    UNIQUE (model_id, batch_id)
);
INSERT INTO batches_new (seq, batch_id, session, model_id, source_kind, source_node, sdk_version, key_id,
                         received_ms, records, rejected, predictions)
SELECT seq, batch_id, session, model_id, source_kind, source_node, sdk_version, key_id,
       received_ms, records, rejected, predictions
FROM batches;
DROP TABLE batches;
ALTER TABLE batches_new RENAME TO batches;
CREATE INDEX batches_by_model ON batches (model_id, seq);

CREATE TABLE sessions_new (
    model_id    INTEGER NOT NULL REFERENCES models (id),
    session     TEXT NOT NULL,
    dropped     INTEGER NOT NULL,
    unconfirmed INTEGER NOT NULL,
    PRIMARY KEY (model_id, session)
);
INSERT INTO sessions_new (model_id, session, dropped, unconfirmed)
SELECT model_id, session, dropped, unconfirmed FROM sessions;
DROP TABLE sessions;
ALTER TABLE sessions_new RENAME TO sessions;
