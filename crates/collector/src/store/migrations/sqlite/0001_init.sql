-- The collector's first schema. Every row of telemetry hangs off the batch that delivered it, and a
-- batch_id is stored once: that unique index is the idempotency guarantee.
CREATE TABLE models (
    id      INTEGER PRIMARY KEY,
    name    TEXT NOT NULL,
    version TEXT NOT NULL,
    hash    TEXT NOT NULL,
    UNIQUE (name, version, hash)
);

CREATE TABLE batches (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    batch_id    TEXT NOT NULL UNIQUE,
    session     TEXT NOT NULL,
    model_id    INTEGER NOT NULL REFERENCES models (id),
    source_kind TEXT NOT NULL,
    source_node TEXT NOT NULL,
    sdk_version TEXT NOT NULL,
    key_id      INTEGER,
    received_ms INTEGER NOT NULL,
    records     INTEGER NOT NULL,
    rejected    INTEGER NOT NULL
);
CREATE INDEX batches_by_model ON batches (model_id, seq);

-- Loss totals are running per session: the collector keeps the largest it has seen.
CREATE TABLE sessions (
    session     TEXT PRIMARY KEY,
    model_id    INTEGER NOT NULL REFERENCES models (id),
    dropped     INTEGER NOT NULL,
    unconfirmed INTEGER NOT NULL
);
CREATE INDEX sessions_by_model ON sessions (model_id);

CREATE TABLE predictions (
    seq           INTEGER PRIMARY KEY,
    batch_seq     INTEGER NOT NULL,
    model_id      INTEGER NOT NULL,
    prediction_id TEXT NOT NULL,
    timestamp_ms  INTEGER NOT NULL,
    latency_us    INTEGER NOT NULL,
    engine        TEXT NOT NULL,
    label         TEXT,
    score         REAL,
    value         REAL,
    top_k         TEXT
);
CREATE INDEX predictions_by_model ON predictions (model_id, seq);
CREATE INDEX predictions_by_id ON predictions (prediction_id);

-- One label per prediction: a later label for the same prediction corrects the earlier one.
CREATE TABLE labels (
    prediction_id TEXT PRIMARY KEY,
    timestamp_ms  INTEGER NOT NULL,
    truth_class   TEXT,
    truth_value   REAL,
    received_ms   INTEGER NOT NULL
);

CREATE TABLE feature_summaries (
    seq             INTEGER PRIMARY KEY,
    batch_seq       INTEGER NOT NULL,
    model_id        INTEGER NOT NULL,
    window_start_ms INTEGER NOT NULL,
    rows            INTEGER NOT NULL,
    body            TEXT NOT NULL
);
CREATE INDEX feature_summaries_by_model ON feature_summaries (model_id, seq);

CREATE TABLE errors (
    seq          INTEGER PRIMARY KEY,
    batch_seq    INTEGER NOT NULL,
    model_id     INTEGER NOT NULL,
    timestamp_ms INTEGER NOT NULL,
    kind         TEXT NOT NULL,
    message      TEXT NOT NULL
);
CREATE INDEX errors_by_model ON errors (model_id, seq);

CREATE TABLE profiles (
    model       TEXT NOT NULL,
    version     TEXT NOT NULL,
    body        TEXT NOT NULL,
    updated_ms  INTEGER NOT NULL,
    PRIMARY KEY (model, version)
);

-- API keys, stored as SHA-256 digests of the token: the token itself is shown once, at creation.
CREATE TABLE api_keys (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT NOT NULL,
    role        TEXT NOT NULL,
    digest      TEXT NOT NULL UNIQUE,
    created_ms  INTEGER NOT NULL,
    revoked_ms  INTEGER
);
