-- Monitoring: per-minute rollups that windows are read from, alert rules, alerts with their history,
-- and every webhook delivery (one per alert event and webhook) is a row with its own state, so a
-- restart loses none.

-- What each batch (and each label) added to a model's minute, by event time: a window is the merge
-- of its minutes (MessagePack bodies). Several rows of one minute are compacted into one in the
-- background.
CREATE TABLE rollups (
    id        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    model_id  BIGINT NOT NULL REFERENCES models (id),
    bucket_ms BIGINT NOT NULL,
    body      BYTEA NOT NULL
);
CREATE INDEX rollups_by_minute ON rollups (model_id, bucket_ms);

-- Prediction counts on batch rows: `GET /v1/models` sums batches instead of counting predictions.
ALTER TABLE batches ADD COLUMN predictions BIGINT NOT NULL DEFAULT 0;
UPDATE batches b SET predictions = c.n
FROM (SELECT batch_seq, count(*) AS n FROM predictions GROUP BY batch_seq) c WHERE c.batch_seq = b.seq;

CREATE TABLE alert_rules (
    name       TEXT PRIMARY KEY,
    body       TEXT NOT NULL,
    updated_ms BIGINT NOT NULL
);

-- One row per episode: fired at started_ms, resolved at resolved_ms (NULL while firing).
CREATE TABLE alerts (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    rule            TEXT NOT NULL,
    model           TEXT NOT NULL,
    version         TEXT NOT NULL,
    subject         TEXT NOT NULL,
    metric          TEXT NOT NULL,
    severity        TEXT NOT NULL,
    value           DOUBLE PRECISION,
    threshold       DOUBLE PRECISION,
    message         TEXT NOT NULL,
    window_start_ms BIGINT NOT NULL,
    started_ms      BIGINT NOT NULL,
    resolved_ms     BIGINT
);
-- Deduplication: at most one firing alert per rule, model version and subject.
CREATE UNIQUE INDEX alerts_open ON alerts (rule, model, version, subject) WHERE resolved_ms IS NULL;
CREATE INDEX alerts_by_model ON alerts (model, id);

CREATE TABLE deliveries (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    alert_id        BIGINT NOT NULL REFERENCES alerts (id),
    event           TEXT NOT NULL,
    url             TEXT NOT NULL,
    state           TEXT NOT NULL,
    attempts        BIGINT NOT NULL,
    next_attempt_ms BIGINT NOT NULL,
    last_error      TEXT,
    delivered_ms    BIGINT
);
CREATE INDEX deliveries_due ON deliveries (state, next_attempt_ms);
CREATE INDEX deliveries_by_alert ON deliveries (alert_id);
