//! Storage: one trait, two databases.
//!
//! [`Store`] is what the server needs; `sqlite.rs` (one file, one writer thread that commits
//! batches in groups) and `postgres.rs` (a connection pool; several collector processes may share
//! the database) implement it. Both keep the same schema (`migrations/`), applied in order on open
//! and recorded in `schema_migrations`. Every statement binds its values: no SQL is built from
//! outside text.

mod postgres;
mod sqlite;

use std::future::Future;
use std::pin::Pin;

use serde::{Deserialize, Serialize};
use telemetry::{Batch, Label};

use crate::alerts::{AlertQuery, AlertRow, AlertState, Attempt, DeliveryRow, Due, NewAlert};
use crate::config::Database;
use crate::keys::{KeyInfo, Role};
use crate::monitor::{Span, WindowData};

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A schema version: applied once, in order, inside a transaction.
struct Migration {
    version: i64,
    name: &'static str,
    sqlite: &'static str,
    postgres: &'static str,
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "init",
        sqlite: include_str!("migrations/sqlite/0001_init.sql"),
        postgres: include_str!("migrations/postgres/0001_init.sql"),
    },
    Migration {
        version: 2,
        name: "monitoring",
        sqlite: include_str!("migrations/sqlite/0002_monitoring.sql"),
        postgres: include_str!("migrations/postgres/0002_monitoring.sql"),
    },
];

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("SQLite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("PostgreSQL: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    #[error("PostgreSQL connection pool: {0}")]
    Pool(String),
    #[error("cannot open the database {database}: {message}")]
    Open { database: String, message: String },
    #[error(
        "the database has schema version {found}, newer than this collector knows ({known}); upgrade the collector"
    )]
    SchemaTooNew { found: i64, known: i64 },
    #[error("the SQLite writer has stopped")]
    WriterGone,
    #[error("the stored {what} is not valid: {message}")]
    Corrupt { what: &'static str, message: String },
}

/// What became of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ingested {
    /// Committed now.
    Stored,
    /// This `batch_id` was committed before: nothing stored again.
    Duplicate,
}

/// A valid batch (invalid records already split off) and who sent it.
#[derive(Debug, Clone)]
pub struct Incoming {
    pub batch: Batch,
    /// Records refused by validation: counted with the batch, not stored.
    pub rejected: u64,
    pub key_id: Option<i64>,
}

/// A model version the collector has heard from, with what it has stored for it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelSummary {
    pub name: String,
    pub version: String,
    pub hash: String,
    pub batches: i64,
    pub predictions: i64,
    pub sessions: i64,
    /// Sums over sessions of each session's largest reported totals.
    pub dropped: i64,
    pub unconfirmed: i64,
    pub last_received_ms: Option<i64>,
    pub has_profile: bool,
}

/// One page of history, oldest first; pass `next_after` back as `after` for the next page.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_after: Option<i64>,
}

impl<T> Page<T> {
    fn from_rows(items: Vec<(i64, T)>, limit: usize) -> Page<T> {
        let next_after = if items.len() == limit { items.last().map(|(seq, _)| *seq) } else { None };
        Page { items: items.into_iter().map(|(_, item)| item).collect(), next_after }
    }
}

/// A stored batch, as the history endpoint shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BatchRow {
    pub seq: i64,
    pub batch_id: String,
    pub session: String,
    pub model: String,
    pub version: String,
    pub source_kind: String,
    pub source_node: String,
    pub received_ms: i64,
    pub records: i64,
    pub rejected: i64,
}

/// A stored prediction joined with its label, if one came.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PredictionRow {
    pub seq: i64,
    pub prediction_id: String,
    pub timestamp_ms: i64,
    pub latency_us: i64,
    pub engine: String,
    pub output: serde_json::Value,
    pub truth: Option<serde_json::Value>,
}

/// The history the read endpoints page through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKind {
    Predictions,
    Features,
    Errors,
}

/// Where a page starts and how long it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    pub after: i64,
    pub limit: usize,
}

/// The collector's storage. Every method is safe to retry.
pub trait Store: Send + Sync + std::fmt::Debug + 'static {
    /// Commits a batch's records, or nothing if its `batch_id` is already stored. Returns only once
    /// the outcome is durable.
    fn ingest(&self, incoming: Incoming) -> BoxFuture<'_, Result<Ingested, StoreError>>;
    /// Stores labels; a later label for the same prediction replaces the earlier one.
    fn put_labels(&self, labels: Vec<Label>) -> BoxFuture<'_, Result<u64, StoreError>>;
    fn put_profile(&self, model: String, version: String, body: String) -> BoxFuture<'_, Result<(), StoreError>>;
    fn profile(&self, model: String, version: String) -> BoxFuture<'_, Result<Option<String>, StoreError>>;
    fn models(&self) -> BoxFuture<'_, Result<Vec<ModelSummary>, StoreError>>;
    fn batches(&self, page: PageRequest) -> BoxFuture<'_, Result<Page<BatchRow>, StoreError>>;
    /// A page of one kind of record for a model version (all hashes of it).
    fn records(
        &self,
        model: String,
        version: String,
        kind: RecordKind,
        page: PageRequest,
    ) -> BoxFuture<'_, Result<Page<serde_json::Value>, StoreError>>;
    fn create_key(&self, name: String, role: Role, digest: String) -> BoxFuture<'_, Result<KeyInfo, StoreError>>;
    /// The live (not revoked) key with this digest.
    fn find_key(&self, digest: String) -> BoxFuture<'_, Result<Option<KeyInfo>, StoreError>>;
    fn keys(&self) -> BoxFuture<'_, Result<Vec<KeyInfo>, StoreError>>;
    /// Revokes a key; false if there is no such live key.
    fn revoke_key(&self, id: i64) -> BoxFuture<'_, Result<bool, StoreError>>;

    /// Every (model, version) heard from, with the version that sent the latest batch last per
    /// model; cheap (no counting), for the evaluator and the read API.
    fn model_versions(&self) -> BoxFuture<'_, Result<Vec<ModelVersion>, StoreError>>;
    /// One window of a model version (all hashes of it), by event time: the merge of its minutes.
    fn window(&self, model: String, version: String, span: Span) -> BoxFuture<'_, Result<WindowData, StoreError>>;
    /// Merges the rollup rows of every minute that got new rows after `after_id` into one row per
    /// minute. Pass the returned `last_id` next time.
    fn compact_rollups(&self, after_id: i64) -> BoxFuture<'_, Result<Compacted, StoreError>>;
    /// Stored alert rules: (name, JSON body).
    fn alert_rules(&self) -> BoxFuture<'_, Result<Vec<(String, String)>, StoreError>>;
    fn put_alert_rule(&self, name: String, body: String) -> BoxFuture<'_, Result<(), StoreError>>;
    /// False if there was no such rule.
    fn delete_alert_rule(&self, name: String) -> BoxFuture<'_, Result<bool, StoreError>>;
    /// Opens the alert and queues a delivery per webhook, unless one is already firing for its rule,
    /// model version and subject (then `None`).
    fn fire_alert(&self, alert: NewAlert, webhooks: Vec<String>) -> BoxFuture<'_, Result<Option<i64>, StoreError>>;
    /// Resolves a firing alert and queues a delivery per webhook; false if it was not firing.
    fn resolve_alert(
        &self,
        id: i64,
        resolved_ms: i64,
        webhooks: Vec<String>,
    ) -> BoxFuture<'_, Result<bool, StoreError>>;
    /// Alerts, newest first, each with its deliveries.
    fn alerts(&self, query: AlertQuery) -> BoxFuture<'_, Result<Vec<AlertRow>, StoreError>>;
    /// Claims up to `limit` pending deliveries due at `now_ms`, moving their next attempt `lease_ms`
    /// ahead so no one else sends them meanwhile.
    fn claim_deliveries(&self, now_ms: i64, lease_ms: i64, limit: usize)
    -> BoxFuture<'_, Result<Vec<Due>, StoreError>>;
    fn finish_delivery(&self, id: i64, attempt: Attempt) -> BoxFuture<'_, Result<(), StoreError>>;
}

/// A model version, and when its latest batch came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelVersion {
    pub name: String,
    pub version: String,
    pub last_batch_seq: Option<i64>,
}

/// What a compaction pass did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compacted {
    /// The highest rollup id the pass looked at.
    pub last_id: i64,
    /// Rows merged away.
    pub rows_merged: u64,
}

/// The alert columns every alert query selects, in [`AlertColumns`] order.
const ALERT_COLUMNS: &str = "a.id, a.rule, a.model, a.version, a.subject, a.metric, a.severity, a.value, a.threshold, \
     a.message, a.window_start_ms, a.started_ms, a.resolved_ms";

/// The delivery columns, after the alert id.
const DELIVERY_COLUMNS: &str = "d.alert_id, d.id, d.event, d.url, d.state, d.attempts, d.next_attempt_ms, \
     d.last_error, d.delivered_ms";

/// An alert row's values, as both databases read them.
type AlertColumns =
    (i64, String, String, String, String, String, String, Option<f64>, Option<f64>, String, i64, i64, Option<i64>);

fn alert_row(c: AlertColumns) -> AlertRow {
    let (
        id,
        rule,
        model,
        version,
        subject,
        metric,
        severity,
        value,
        threshold,
        message,
        window_start_ms,
        started_ms,
        resolved_ms,
    ) = c;
    AlertRow {
        id,
        rule,
        model,
        version,
        subject,
        metric,
        severity,
        state: if resolved_ms.is_some() { AlertState::Resolved } else { AlertState::Firing },
        value,
        threshold,
        message,
        window_start_ms,
        started_ms,
        resolved_ms,
        deliveries: Vec::new(),
    }
}

/// A delivery row's values after its alert id.
type DeliveryColumns = (i64, String, String, String, i64, i64, Option<String>, Option<i64>);

fn delivery_row(c: DeliveryColumns) -> DeliveryRow {
    let (id, event, url, state, attempts, next_attempt_ms, last_error, delivered_ms) = c;
    DeliveryRow {
        id,
        event: AlertState::parse(&event),
        url,
        state,
        attempts,
        next_attempt_ms,
        last_error,
        delivered_ms,
    }
}

/// Attaches deliveries (alert id, row) to their alerts.
fn attach(alerts: &mut [AlertRow], deliveries: Vec<(i64, DeliveryRow)>) {
    let index: std::collections::HashMap<i64, usize> = alerts.iter().enumerate().map(|(i, a)| (a.id, i)).collect();
    for (alert_id, delivery) in deliveries {
        if let Some(&i) = index.get(&alert_id) {
            alerts[i].deliveries.push(delivery);
        }
    }
}

/// The state and columns an attempt's outcome writes: (state, delivered_ms, next_attempt_ms, error).
fn attempt_columns(attempt: &Attempt) -> (&'static str, Option<i64>, Option<i64>, Option<&str>) {
    match attempt {
        Attempt::Delivered { at_ms } => ("delivered", Some(*at_ms), None, None),
        Attempt::Retry { next_attempt_ms, error } => ("pending", None, Some(*next_attempt_ms), Some(error)),
        Attempt::Failed { error } => ("failed", None, None, Some(error)),
    }
}

/// Opens (creating if needed) and migrates the database.
pub async fn open(database: &Database, pool_size: usize) -> Result<Box<dyn Store>, StoreError> {
    Ok(match database {
        Database::Sqlite(path) => Box::new(sqlite::SqliteStore::open(path).await?),
        Database::Postgres(url) => Box::new(postgres::PostgresStore::open(url, pool_size).await?),
    })
}

/// A prediction's output as the columns store it: (class label, score, value, top-k JSON).
fn output_columns(output: &telemetry::Output) -> (Option<&str>, Option<f64>, Option<f64>, Option<String>) {
    match output {
        telemetry::Output::Class { label, score } => (Some(label), Some(f64::from(*score)), None, None),
        telemetry::Output::Value(v) => (None, None, Some(*v), None),
        telemetry::Output::TopK(classes) => {
            let best = classes.first();
            (
                best.map(|c| c.label.as_str()),
                best.map(|c| f64::from(c.score)),
                None,
                serde_json::to_string(classes).ok(),
            )
        }
    }
}

/// The output back from its columns, in the wire schema's JSON shape.
fn output_json(
    label: Option<String>,
    score: Option<f64>,
    value: Option<f64>,
    top_k: Option<String>,
) -> serde_json::Value {
    use serde_json::json;
    if let Some(top_k) = top_k.and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok()) {
        json!({ "top_k": top_k })
    } else if let Some(value) = value {
        json!({ "value": value })
    } else {
        json!({ "class": { "label": label, "score": score } })
    }
}

fn truth_json(class: Option<String>, value: Option<f64>) -> Option<serde_json::Value> {
    match (class, value) {
        (Some(class), _) => Some(serde_json::json!({ "class": class })),
        (None, Some(value)) => Some(serde_json::json!({ "value": value })),
        (None, None) => None,
    }
}

fn truth_of(class: Option<String>, value: Option<f64>) -> Option<telemetry::Truth> {
    match (class, value) {
        (Some(class), _) => Some(telemetry::Truth::Class(class)),
        (None, Some(value)) => Some(telemetry::Truth::Value(value)),
        (None, None) => None,
    }
}

fn truth_columns(truth: &telemetry::Truth) -> (Option<&str>, Option<f64>) {
    match truth {
        telemetry::Truth::Class(c) => (Some(c), None),
        telemetry::Truth::Value(v) => (None, Some(*v)),
    }
}

/// The batch's prediction records, kept on its row so `GET /v1/models` sums batches instead of
/// counting predictions.
fn prediction_count(batch: &Batch) -> i64 {
    clamp(batch.records.iter().filter(|r| matches!(r, telemetry::Record::Prediction(_))).count() as u64)
}

/// Largest count one client report is taken at (loss totals, summary rows): sums of a million
/// sessions' counts still fit a database integer, so no sum over them can overflow.
pub const MAX_CLIENT_COUNT: u64 = 1 << 40;

/// A count a client reported, saturated at [`MAX_CLIENT_COUNT`].
fn client_count(n: u64) -> i64 {
    clamp(n.min(MAX_CLIENT_COUNT))
}

/// Database integers are i64; counts beyond that are saturated, not wrapped.
fn clamp(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn engine_str(engine: telemetry::EngineKind) -> &'static str {
    match engine {
        telemetry::EngineKind::Cpu => "cpu",
        telemetry::EngineKind::Gpu => "gpu",
    }
}

fn source_kind_str(kind: telemetry::SourceKind) -> &'static str {
    match kind {
        telemetry::SourceKind::Browser => "browser",
        telemetry::SourceKind::Edge => "edge",
        telemetry::SourceKind::Native => "native",
    }
}

fn error_kind_str(kind: telemetry::ErrorKind) -> &'static str {
    match kind {
        telemetry::ErrorKind::Inference => "inference",
        telemetry::ErrorKind::RejectedInput => "rejected_input",
    }
}

/// Labels deduplicated by prediction id, the last one winning (as a later upload would).
fn last_label_per_prediction(labels: Vec<Label>) -> Vec<Label> {
    let mut seen = std::collections::HashMap::with_capacity(labels.len());
    let mut out: Vec<Label> = Vec::with_capacity(labels.len());
    for label in labels {
        match seen.get(&label.prediction_id) {
            Some(&i) => out[i] = label,
            None => {
                seen.insert(label.prediction_id.clone(), out.len());
                out.push(label);
            }
        }
    }
    out
}
