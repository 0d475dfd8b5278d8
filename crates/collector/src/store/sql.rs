//! Every statement the store runs, each written once. Where SQLite and PostgreSQL differ (list
//! parameters, bulk rows from JSON, row locks) the pair sits side by side. [`ALL`] lists them; the store
//! prepares each when it opens, so every test on either database checks them all.

use super::conn::Sql;

/// Statements whose texts differ: SQLite takes lists as JSON arrays (`json_each`), PostgreSQL as
/// arrays (`ANY`), and bulk rows come as one JSON array of arrays.
macro_rules! pair {
    ($sqlite:expr, $postgres:expr $(,)?) => {
        Sql::Pair { sqlite: $sqlite, postgres: $postgres }
    };
}

// Schema.

pub(super) const SCHEMA_VERSION: Sql =
    Sql::Both("SELECT CAST(coalesce(max(version), 0) AS BIGINT) FROM schema_migrations");
pub(super) const RECORD_MIGRATION: Sql =
    Sql::Both("INSERT INTO schema_migrations (version, name, applied_ms) VALUES ($1, $2, $3)");

// Ingest.

/// `$4`: the key that registers it.
pub(super) const INSERT_MODEL: Sql =
    Sql::Both("INSERT INTO models (name, version, hash, key_id) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING");
/// How many model versions a key has registered.
pub(super) const MODELS_OF_KEY: Sql = Sql::Both("SELECT count(*) FROM models WHERE key_id = $1");
pub(super) const MODEL_ID: Sql = Sql::Both("SELECT id FROM models WHERE name = $1 AND version = $2 AND hash = $3");
/// No row back: this model version has this `batch_id` stored already (ids are the model's, so
/// no other model's key can claim them). Across PostgreSQL processes the second insert of an id
/// waits for the first one's transaction, then finds the conflict.
pub(super) const INSERT_BATCH: Sql = Sql::Both(
    "INSERT INTO batches (batch_id, session, model_id, source_kind, source_node, sdk_version, key_id,
                          received_ms, records, rejected, predictions)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (model_id, batch_id) DO NOTHING RETURNING seq",
);
/// A session's loss totals (per model version) are the largest any of its batches reported.
pub(super) const UPSERT_SESSION: Sql = Sql::Both(
    "INSERT INTO sessions (session, model_id, dropped, unconfirmed) VALUES ($1, $2, $3, $4)
     ON CONFLICT (model_id, session) DO UPDATE SET
         dropped = CASE WHEN excluded.dropped > sessions.dropped THEN excluded.dropped ELSE sessions.dropped END,
         unconfirmed = CASE WHEN excluded.unconfirmed > sessions.unconfirmed
                            THEN excluded.unconfirmed ELSE sessions.unconfirmed END",
);
/// Rows: `[id, timestamp_ms, latency_us, engine, label, score, value, top_k]` (`writes::BatchRows`).
pub(super) const INSERT_PREDICTIONS: Sql = pair!(
    "INSERT INTO predictions (batch_seq, model_id, prediction_id, timestamp_ms, latency_us, engine,
                              label, score, value, top_k)
     SELECT $1, $2, r.value->>0, r.value->>1, r.value->>2, r.value->>3, r.value->>4, r.value->>5, r.value->>6,
            r.value->>7
     FROM json_each($3) AS r ORDER BY r.key",
    "INSERT INTO predictions (batch_seq, model_id, prediction_id, timestamp_ms, latency_us, engine,
                              label, score, value, top_k)
     SELECT $1, $2, r->>0, (r->>1)::bigint, (r->>2)::bigint, r->>3, r->>4, (r->>5)::float8, (r->>6)::float8, r->>7
     FROM jsonb_array_elements($3::text::jsonb) WITH ORDINALITY AS e(r, n) ORDER BY n",
);
pub(super) const INSERT_FEATURES: Sql = Sql::Both(
    "INSERT INTO feature_summaries (batch_seq, model_id, window_start_ms, rows, body) VALUES ($1, $2, $3, $4, $5)",
);
pub(super) const INSERT_ERROR: Sql =
    Sql::Both("INSERT INTO errors (batch_seq, model_id, timestamp_ms, kind, message) VALUES ($1, $2, $3, $4, $5)");
pub(super) const INSERT_ROLLUP: Sql = Sql::Both("INSERT INTO rollups (model_id, bucket_ms, body) VALUES ($1, $2, $3)");

// Labels.

/// The stored truths of these predictions.
pub(super) const LABELS_OF: Sql = pair!(
    "SELECT prediction_id, truth_class, truth_value FROM labels
     WHERE model = $1 AND prediction_id IN (SELECT value FROM json_each($2))",
    "SELECT prediction_id, truth_class, truth_value FROM labels WHERE model = $1 AND prediction_id = ANY($2)",
);
/// The same, locked until commit: two corrections of one prediction at once take back the right
/// pair. SQLite's single writer needs no lock.
pub(super) const LABELS_OF_FOR_UPDATE: Sql = pair!(
    "SELECT prediction_id, truth_class, truth_value FROM labels
     WHERE model = $1 AND prediction_id IN (SELECT value FROM json_each($2))",
    "SELECT prediction_id, truth_class, truth_value FROM labels WHERE model = $1 AND prediction_id = ANY($2) FOR UPDATE",
);
/// The predictions of model `$1` (any version) these labels are for, oldest first (the first
/// one per id counts).
pub(super) const PREDICTIONS_OF: Sql = pair!(
    "SELECT p.prediction_id, p.model_id, p.timestamp_ms, p.label, p.value FROM predictions p
     JOIN models m ON m.id = p.model_id
     WHERE m.name = $1 AND p.prediction_id IN (SELECT value FROM json_each($2)) ORDER BY p.seq",
    "SELECT p.prediction_id, p.model_id, p.timestamp_ms, p.label, p.value FROM predictions p
     JOIN models m ON m.id = p.model_id
     WHERE m.name = $1 AND p.prediction_id = ANY($2) ORDER BY p.seq",
);
/// The model names each of these predictions is stored under, sorted.
pub(super) const MODELS_OF_PREDICTIONS: Sql = pair!(
    "SELECT DISTINCT p.prediction_id, m.name FROM predictions p JOIN models m ON m.id = p.model_id
     WHERE p.prediction_id IN (SELECT value FROM json_each($1)) ORDER BY p.prediction_id, m.name",
    "SELECT DISTINCT p.prediction_id, m.name FROM predictions p JOIN models m ON m.id = p.model_id
     WHERE p.prediction_id = ANY($1) ORDER BY p.prediction_id, m.name",
);
/// Rows: `[prediction_id, timestamp_ms, truth_class, truth_value]` (`writes::LabelRows`); a later
/// label replaces an earlier one. (SQLite needs the `WHERE` to parse `ON CONFLICT` after a
/// `SELECT`.)
pub(super) const UPSERT_LABELS: Sql = pair!(
    "INSERT INTO labels (model, prediction_id, timestamp_ms, truth_class, truth_value, received_ms)
     SELECT $1, r.value->>0, r.value->>1, r.value->>2, r.value->>3, $3 FROM json_each($2) AS r WHERE true
     ON CONFLICT (model, prediction_id) DO UPDATE SET timestamp_ms = excluded.timestamp_ms,
         truth_class = excluded.truth_class, truth_value = excluded.truth_value, received_ms = excluded.received_ms",
    "INSERT INTO labels (model, prediction_id, timestamp_ms, truth_class, truth_value, received_ms)
     SELECT $1, r->>0, (r->>1)::bigint, r->>2, (r->>3)::float8, $3 FROM jsonb_array_elements($2::text::jsonb) AS r
     ON CONFLICT (model, prediction_id) DO UPDATE SET timestamp_ms = excluded.timestamp_ms,
         truth_class = excluded.truth_class, truth_value = excluded.truth_value, received_ms = excluded.received_ms",
);

// Profiles and models.

pub(super) const PUT_PROFILE: Sql = Sql::Both(
    "INSERT INTO profiles (model, version, body, updated_ms) VALUES ($1, $2, $3, $4)
     ON CONFLICT (model, version) DO UPDATE SET body = excluded.body, updated_ms = excluded.updated_ms",
);
pub(super) const PROFILE: Sql = Sql::Both("SELECT body FROM profiles WHERE model = $1 AND version = $2");
/// Columns in `rows::model_summary` order.
pub(super) const MODELS: Sql = Sql::Both(
    "SELECT m.name, m.version, m.hash,
        (SELECT count(*) FROM batches b WHERE b.model_id = m.id),
        (SELECT CAST(coalesce(sum(predictions), 0) AS BIGINT) FROM batches b WHERE b.model_id = m.id),
        (SELECT count(*) FROM sessions s WHERE s.model_id = m.id),
        (SELECT CAST(coalesce(sum(dropped), 0) AS BIGINT) FROM sessions s WHERE s.model_id = m.id),
        (SELECT CAST(coalesce(sum(unconfirmed), 0) AS BIGINT) FROM sessions s WHERE s.model_id = m.id),
        (SELECT max(received_ms) FROM batches b WHERE b.model_id = m.id),
        EXISTS (SELECT 1 FROM profiles f WHERE f.model = m.name AND f.version = m.version)
     FROM models m ORDER BY m.name, m.version, m.hash",
);
pub(super) const MODEL_VERSIONS: Sql = Sql::Both(
    "SELECT m.name, m.version, max((SELECT max(seq) FROM batches b WHERE b.model_id = m.id))
     FROM models m GROUP BY m.name, m.version ORDER BY m.name, m.version",
);

// History pages: `$1`/`$2` a model version where there is one, then after and limit.

pub(super) const BATCHES: Sql = Sql::Both(
    "SELECT b.seq, b.batch_id, b.session, m.name, m.version, b.source_kind, b.source_node,
            b.received_ms, b.records, b.rejected
     FROM batches b JOIN models m ON m.id = b.model_id
     WHERE b.seq > $1 ORDER BY b.seq LIMIT $2",
);
pub(super) const PREDICTIONS: Sql = Sql::Both(
    "SELECT p.seq, p.prediction_id, p.timestamp_ms, p.latency_us, p.engine, p.label, p.score,
            p.value, p.top_k, l.truth_class, l.truth_value
     FROM predictions p LEFT JOIN labels l ON l.model = $1 AND l.prediction_id = p.prediction_id
     WHERE p.model_id IN (SELECT id FROM models WHERE name = $1 AND version = $2)
       AND p.seq > $3 ORDER BY p.seq LIMIT $4",
);
pub(super) const FEATURES: Sql = Sql::Both(
    "SELECT seq, body FROM feature_summaries
     WHERE model_id IN (SELECT id FROM models WHERE name = $1 AND version = $2)
       AND seq > $3 ORDER BY seq LIMIT $4",
);
pub(super) const ERRORS: Sql = Sql::Both(
    "SELECT seq, timestamp_ms, kind, message FROM errors
     WHERE model_id IN (SELECT id FROM models WHERE name = $1 AND version = $2)
       AND seq > $3 ORDER BY seq LIMIT $4",
);

// Keys.

pub(super) const CREATE_KEY: Sql =
    Sql::Both("INSERT INTO api_keys (name, role, models, digest, created_ms) VALUES ($1, $2, $3, $4, $5) RETURNING id");
/// A row if there is any key, revoked ones included.
pub(super) const ANY_KEY: Sql = Sql::Both("SELECT id FROM api_keys LIMIT 1");
/// Columns in `rows::key` order.
pub(super) const FIND_KEY: Sql = Sql::Both(
    "SELECT id, name, role, created_ms, revoked_ms, models FROM api_keys WHERE digest = $1 AND revoked_ms IS NULL",
);
pub(super) const KEYS: Sql =
    Sql::Both("SELECT id, name, role, created_ms, revoked_ms, models FROM api_keys ORDER BY id");
pub(super) const REVOKE_KEY: Sql =
    Sql::Both("UPDATE api_keys SET revoked_ms = $1 WHERE id = $2 AND revoked_ms IS NULL");

// Rollups.

pub(super) const WINDOW: Sql = Sql::Both(
    "SELECT body FROM rollups
     WHERE model_id IN (SELECT id FROM models WHERE name = $1 AND version = $2)
       AND bucket_ms >= $3 AND bucket_ms < $4",
);
pub(super) const LAST_ROLLUP_ID: Sql = Sql::Both("SELECT coalesce(max(id), $1) FROM rollups");
pub(super) const ROLLUP_MINUTES: Sql =
    Sql::Both("SELECT DISTINCT model_id, bucket_ms FROM rollups WHERE id > $1 AND id <= $2");
/// A minute's rows, locked in PostgreSQL so concurrent compactions of it wait.
pub(super) const MINUTE_ROLLUPS: Sql = pair!(
    "SELECT id, body FROM rollups WHERE model_id = $1 AND bucket_ms = $2",
    "SELECT id, body FROM rollups WHERE model_id = $1 AND bucket_ms = $2 FOR UPDATE",
);
/// By id, not by minute: a row committed since the read is not deleted unmerged.
pub(super) const DELETE_ROLLUPS: Sql = pair!(
    "DELETE FROM rollups WHERE id IN (SELECT value FROM json_each($1))",
    "DELETE FROM rollups WHERE id = ANY($1)",
);

// Alert rules and alerts.

pub(super) const ALERT_RULES: Sql = Sql::Both("SELECT name, body FROM alert_rules ORDER BY name");
pub(super) const PUT_ALERT_RULE: Sql = Sql::Both(
    "INSERT INTO alert_rules (name, body, updated_ms) VALUES ($1, $2, $3)
     ON CONFLICT (name) DO UPDATE SET body = excluded.body, updated_ms = excluded.updated_ms",
);
pub(super) const DELETE_ALERT_RULE: Sql = Sql::Both("DELETE FROM alert_rules WHERE name = $1");
/// No row back: one is firing already for this rule, model version and subject.
pub(super) const FIRE_ALERT: Sql = Sql::Both(
    "INSERT INTO alerts (rule, model, version, subject, metric, severity, value, threshold, message,
                         window_start_ms, started_ms)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT DO NOTHING RETURNING id",
);
pub(super) const RESOLVE_ALERT: Sql =
    Sql::Both("UPDATE alerts SET resolved_ms = $1 WHERE id = $2 AND resolved_ms IS NULL");
/// Due at once (`$4` is now): deliveries go out now, whatever time the alert is about.
pub(super) const QUEUE_DELIVERY: Sql = Sql::Both(
    "INSERT INTO deliveries (alert_id, event, url, state, attempts, next_attempt_ms)
     VALUES ($1, $2, $3, 'pending', 0, $4)",
);

/// The alert columns, in `rows::alert` order.
macro_rules! alert_columns {
    () => {
        "a.id, a.rule, a.model, a.version, a.subject, a.metric, a.severity, a.value, a.threshold, a.message, \
         a.window_start_ms, a.started_ms, a.resolved_ms"
    };
}

/// `$1` a model or null, `$2` firing only, `$3` the limit.
macro_rules! alerts_filter {
    () => {
        "FROM alerts a WHERE (CAST($1 AS TEXT) IS NULL OR a.model = $1) AND (NOT $2 OR a.resolved_ms IS NULL)
         ORDER BY a.id DESC LIMIT $3"
    };
}

pub(super) const ALERTS: Sql = Sql::Both(concat!("SELECT ", alert_columns!(), " ", alerts_filter!()));
/// The deliveries of the alerts [`ALERTS`] selects, in `rows::delivery` order after the alert id.
pub(super) const ALERT_DELIVERIES: Sql = Sql::Both(concat!(
    "SELECT d.alert_id, d.id, d.event, d.url, d.state, d.attempts, d.next_attempt_ms, d.last_error, d.delivered_ms
     FROM deliveries d WHERE d.alert_id IN (SELECT a.id ",
    alerts_filter!(),
    ") ORDER BY d.id"
));
pub(super) const ALERT: Sql = Sql::Both(concat!("SELECT ", alert_columns!(), " FROM alerts a WHERE a.id = $1"));
/// Pushes the next attempt of due deliveries `$2` ms ahead (a lease) and returns them. Other
/// PostgreSQL processes skip the rows being claimed; SQLite has one writer.
pub(super) const CLAIM_DELIVERIES: Sql = pair!(
    "UPDATE deliveries SET next_attempt_ms = $1 + $2
     WHERE id IN (SELECT id FROM deliveries WHERE state = 'pending' AND next_attempt_ms <= $1
                  ORDER BY id LIMIT $3)
     RETURNING id, alert_id, event, url, attempts, next_attempt_ms",
    "UPDATE deliveries SET next_attempt_ms = $1 + $2
     WHERE id IN (SELECT id FROM deliveries WHERE state = 'pending' AND next_attempt_ms <= $1
                  ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED)
     RETURNING id, alert_id, event, url, attempts, next_attempt_ms",
);
/// Only while the claim (`$6`: the lease it set) is the caller's: a sender whose lease ran out
/// and was claimed again must not overwrite the newer claimant's record.
pub(super) const FINISH_DELIVERY: Sql = Sql::Both(
    "UPDATE deliveries SET state = $2, attempts = attempts + 1,
            delivered_ms = coalesce($3, delivered_ms), next_attempt_ms = coalesce($4, next_attempt_ms),
            last_error = $5
     WHERE id = $1 AND state = 'pending' AND next_attempt_ms = $6",
);

/// Every statement, by name: each is prepared when the store opens.
pub(super) const ALL: &[(&str, Sql)] = &[
    ("SCHEMA_VERSION", SCHEMA_VERSION),
    ("RECORD_MIGRATION", RECORD_MIGRATION),
    ("INSERT_MODEL", INSERT_MODEL),
    ("MODELS_OF_KEY", MODELS_OF_KEY),
    ("MODEL_ID", MODEL_ID),
    ("INSERT_BATCH", INSERT_BATCH),
    ("UPSERT_SESSION", UPSERT_SESSION),
    ("INSERT_PREDICTIONS", INSERT_PREDICTIONS),
    ("INSERT_FEATURES", INSERT_FEATURES),
    ("INSERT_ERROR", INSERT_ERROR),
    ("INSERT_ROLLUP", INSERT_ROLLUP),
    ("LABELS_OF", LABELS_OF),
    ("LABELS_OF_FOR_UPDATE", LABELS_OF_FOR_UPDATE),
    ("PREDICTIONS_OF", PREDICTIONS_OF),
    ("MODELS_OF_PREDICTIONS", MODELS_OF_PREDICTIONS),
    ("UPSERT_LABELS", UPSERT_LABELS),
    ("PUT_PROFILE", PUT_PROFILE),
    ("PROFILE", PROFILE),
    ("MODELS", MODELS),
    ("MODEL_VERSIONS", MODEL_VERSIONS),
    ("BATCHES", BATCHES),
    ("PREDICTIONS", PREDICTIONS),
    ("FEATURES", FEATURES),
    ("ERRORS", ERRORS),
    ("CREATE_KEY", CREATE_KEY),
    ("ANY_KEY", ANY_KEY),
    ("FIND_KEY", FIND_KEY),
    ("KEYS", KEYS),
    ("REVOKE_KEY", REVOKE_KEY),
    ("WINDOW", WINDOW),
    ("LAST_ROLLUP_ID", LAST_ROLLUP_ID),
    ("ROLLUP_MINUTES", ROLLUP_MINUTES),
    ("MINUTE_ROLLUPS", MINUTE_ROLLUPS),
    ("DELETE_ROLLUPS", DELETE_ROLLUPS),
    ("ALERT_RULES", ALERT_RULES),
    ("PUT_ALERT_RULE", PUT_ALERT_RULE),
    ("DELETE_ALERT_RULE", DELETE_ALERT_RULE),
    ("FIRE_ALERT", FIRE_ALERT),
    ("RESOLVE_ALERT", RESOLVE_ALERT),
    ("QUEUE_DELIVERY", QUEUE_DELIVERY),
    ("ALERTS", ALERTS),
    ("ALERT_DELIVERIES", ALERT_DELIVERIES),
    ("ALERT", ALERT),
    ("CLAIM_DELIVERIES", CLAIM_DELIVERIES),
    ("FINISH_DELIVERY", FINISH_DELIVERY),
];

#[cfg(test)]
mod tests {
    use super::super::conn::Dialect;
    use super::*;

    #[test]
    fn every_statement_is_listed() {
        let declared = include_str!("sql.rs").matches("\npub(super) const ").count();
        // `ALL` itself is one of the declarations.
        assert_eq!(ALL.len(), declared - 1, "a statement is missing from `ALL`");
    }

    #[test]
    fn placeholders_are_the_only_dollars() {
        for (name, statement) in ALL {
            let text = statement.text(Dialect::Postgres);
            for (i, _) in text.match_indices('$') {
                let next = text[i + 1..].chars().next();
                assert!(next.is_some_and(|c| c.is_ascii_digit()), "{name}: a `$` that is not a placeholder");
            }
            assert!(!statement.text(Dialect::Sqlite).contains('$'), "{name}");
        }
    }
}
