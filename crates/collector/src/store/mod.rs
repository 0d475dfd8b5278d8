//! Storage: one store, two dialects.
//!
//! [`Store`] is what the server needs. It is laid out by concern: what a batch or label writes,
//! computed without a database (`writes.rs`); every statement, written once, with a SQLite /
//! PostgreSQL pair only where the dialects differ (`sql.rs`); the operations, written once over
//! a connection (`ops.rs`, on `conn.rs`'s [`conn::Conn`]); result rows back into types
//! (`rows.rs`). Per database only connection, transaction and commit machinery remains:
//! `sqlite.rs` (one file, one writer thread that commits jobs in groups) and `postgres.rs` (a
//! connection pool; several collector processes may share the database). Both keep the same
//! schema (`migrations/`), applied in order on open and recorded in `schema_migrations`. Every
//! statement binds its values: no SQL is built from outside text.

mod conn;
mod ops;
mod postgres;
mod rows;
mod sql;
mod sqlite;
mod writes;

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;

use serde::{Deserialize, Serialize};
use telemetry::{Batch, Label};

use crate::alerts::{AlertQuery, AlertRow, Attempt, Due, NewAlert};
use crate::config::Database;
use crate::keys::{KeyInfo, Role, Scope};
use crate::monitor::{Span, WindowData};

pub use writes::MAX_CLIENT_COUNT;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A schema version: applied once, in order, inside a transaction.
struct Migration {
    version: i64,
    name: &'static str,
    sqlite: &'static str,
    postgres: &'static str,
}

/// Migration `version`, `name`d, from `migrations/{sqlite,postgres}/{file}.sql`.
macro_rules! migration {
    ($version:literal, $name:literal, $file:literal) => {
        Migration {
            version: $version,
            name: $name,
            sqlite: include_str!(concat!("migrations/sqlite/", $file, ".sql")),
            postgres: include_str!(concat!("migrations/postgres/", $file, ".sql")),
        }
    };
}

const MIGRATIONS: &[Migration] = &[
    migration!(1, "init", "0001_init"),
    migration!(2, "monitoring", "0002_monitoring"),
    migration!(3, "key_scopes", "0003_key_scopes"),
    migration!(4, "ids_per_model", "0004_ids_per_model"),
    migration!(5, "models_per_key", "0005_models_per_key"),
    migration!(6, "labels_per_model", "0006_labels_per_model"),
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
    #[error("statement {name} does not fit the database's schema: {message}")]
    Statement { name: &'static str, message: String },
    #[error("the SQLite writer has stopped")]
    WriterGone,
    #[error("the stored {what} is not valid: {message}")]
    Corrupt { what: &'static str, message: String },
}

/// A key to create: only its token's digest is stored.
#[derive(Debug, Clone)]
pub struct NewKey {
    pub name: String,
    pub role: Role,
    pub scope: Scope,
    pub digest: String,
}

/// What became of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ingested {
    /// Committed now.
    Stored,
    /// This `batch_id` was committed before for this model version: nothing stored again.
    Duplicate,
    /// Nothing stored: the batch names a model version new to the collector, and its key has
    /// registered `Incoming::max_models` already (the server answers 403; never serialized).
    #[serde(skip)]
    ModelLimit,
}

/// A valid batch (invalid records already split off) and who sent it.
#[derive(Debug, Clone)]
pub struct Incoming {
    pub batch: Batch,
    /// Records refused by validation: counted with the batch, not stored.
    pub rejected: u64,
    pub key_id: i64,
    /// The most model versions one key may register (send first).
    pub max_models: usize,
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

/// Labels by the model (name) whose predictions they are for.
pub type ModelLabels = BTreeMap<String, Vec<Label>>;

/// Per prediction id, the model names it is stored under.
pub type PredictionModels = HashMap<String, Vec<String>>;

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
    /// Stores labels, per model name, in one transaction; a later label for the same prediction
    /// of the same model replaces the earlier one.
    fn put_labels(&self, labels: ModelLabels) -> BoxFuture<'_, Result<u64, StoreError>>;
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
    fn create_key(
        &self,
        name: String,
        role: Role,
        scope: Scope,
        digest: String,
    ) -> BoxFuture<'_, Result<KeyInfo, StoreError>>;
    /// Creates `keys` only if the database has none at all, in one transaction: one set even when
    /// several processes start at once on an empty database. None: it had keys.
    fn create_first_keys(&self, keys: Vec<NewKey>) -> BoxFuture<'_, Result<Option<Vec<KeyInfo>>, StoreError>>;
    /// The live (not revoked) key with this digest.
    fn find_key(&self, digest: String) -> BoxFuture<'_, Result<Option<KeyInfo>, StoreError>>;
    fn keys(&self) -> BoxFuture<'_, Result<Vec<KeyInfo>, StoreError>>;
    /// The model names each of these predictions is stored under, sorted; ids not stored are
    /// absent.
    fn prediction_models(&self, ids: Vec<String>) -> BoxFuture<'_, Result<PredictionModels, StoreError>>;
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
    /// Records how the claimed `delivery` went, if the claim is still the caller's (compare and
    /// set on the lease); false: the lease ran out and another claimant has it, so nothing changed.
    fn finish_delivery(&self, delivery: &Due, attempt: Attempt) -> BoxFuture<'_, Result<bool, StoreError>>;
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

/// Model row ids, which never change once committed: ingest looks them up once per process.
#[derive(Debug, Default)]
struct ModelIds(std::sync::Mutex<HashMap<telemetry::ModelRef, i64>>);

impl ModelIds {
    /// Bound on the cache: past it, it starts over (a client can name many models).
    const MAX: usize = 4096;

    fn get(&self, model: &telemetry::ModelRef) -> Option<i64> {
        self.0.lock().ok()?.get(model).copied()
    }

    /// Call only once the row is committed.
    fn insert(&self, model: telemetry::ModelRef, id: i64) {
        if let Ok(mut ids) = self.0.lock() {
            if ids.len() >= ModelIds::MAX {
                ids.clear();
            }
            ids.insert(model, id);
        }
    }
}

/// Opens (creating if needed) and migrates the database.
pub async fn open(database: &Database, pool_size: usize) -> Result<Box<dyn Store>, StoreError> {
    Ok(match database {
        Database::Sqlite(path) => Box::new(sqlite::SqliteStore::open(path).await?),
        Database::Postgres(url) => Box::new(postgres::PostgresStore::open(url, pool_size).await?),
    })
}
