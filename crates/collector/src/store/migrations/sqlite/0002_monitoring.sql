-- Monitoring: per-minute rollups that windows are read from, alert rules, alerts with their history,
-- and every webhook delivery (one per alert event and webhook) is a row with its own state, so a
-- restart loses none.

-- What each batch (and each label) added to a model's minute, by event time: a window is the merge
-- of its minutes (MessagePack bodies). Several rows of one minute are compacted into one in the
-- background.
CREATE TABLE rollups (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    model_id  INTEGER NOT NULL REFERENCES models (id),
    bucket_ms INTEGER NOT NULL,
    body      BLOB NOT NULL
);
CREATE INDEX rollups_by_minute ON rollups (model_id, bucket_ms);

-- Prediction counts on batch rows: `GET /v1/models` sums batches instead of counting predictions.
ALTER TABLE batches ADD COLUMN predictions INTEGER NOT NULL DEFAULT 0;
UPDATE batches SET predictions = (SELECT count(*) FROM predictions p WHERE p.batch_seq = batches.seq);

CREATE TABLE alert_rules (
    name       TEXT PRIMARY KEY,
    body       TEXT NOT NULL,
    updated_ms INTEGER NOT NULL
);

-- One row per episode: fired at started_ms, resolved at resolved_ms (NULL while firing).
CREATE TABLE alerts (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    rule            TEXT NOT NULL,
    model           TEXT NOT NULL,
    version         TEXT NOT NULL,
    subject         TEXT NOT NULL,
    metric          TEXT NOT NULL,
    severity        TEXT NOT NULL,
    value           REAL,
    threshold       REAL,
    message         TEXT NOT NULL,
    window_start_ms INTEGER NOT NULL,
    started_ms      INTEGER NOT NULL,
    resolved_ms     INTEGER
);
-- Deduplication: at most one firing alert per rule, model version and subject.
CREATE UNIQUE INDEX alerts_open ON alerts (rule, model, version, subject) WHERE resolved_ms IS NULL;
CREATE INDEX alerts_by_model ON alerts (model, id);

CREATE TABLE deliveries (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    alert_id        INTEGER NOT NULL REFERENCES alerts (id),
    event           TEXT NOT NULL,
    url             TEXT NOT NULL,
    state           TEXT NOT NULL,
    attempts        INTEGER NOT NULL,
    next_attempt_ms INTEGER NOT NULL,
    last_error      TEXT,
    delivered_ms    INTEGER
);
CREATE INDEX deliveries_due ON deliveries (state, next_attempt_ms);
CREATE INDEX deliveries_by_alert ON deliveries (alert_id);
