//! PostgreSQL: for several collector processes behind a load balancer, sharing one database.
//!
//! Each batch is one transaction. Exactly-once across processes rests on the unique `batch_id`: a
//! second process inserting the same id waits for the first one's transaction, then finds the
//! conflict and stores nothing (`ON CONFLICT DO NOTHING RETURNING` gives no row). A batch's
//! predictions go in with one `UNNEST` statement. PostgreSQL's own group commit merges the fsyncs
//! of concurrent transactions.

use std::collections::HashMap;
use std::sync::Mutex;

use deadpool_postgres::{GenericClient, Pool, PoolConfig, Runtime};
use telemetry::{Label, ModelRef, Record, Truth};
use tokio_postgres::NoTls;

use std::collections::BTreeMap;

use super::{
    BatchRow, BoxFuture, Compacted, Incoming, Ingested, MIGRATIONS, ModelSummary, ModelVersion, Page, PageRequest,
    PredictionRow, RecordKind, Store, StoreError,
};
use crate::alerts::{AlertQuery, AlertRow, AlertState, Attempt, Due, NewAlert};
use crate::config::Database;
use crate::keys::{KeyInfo, Role};
use crate::monitor::rollup::{self, Predicted, Rollup};
use crate::monitor::{Span, WindowData};

/// Serializes migrations between collector processes starting at once.
const MIGRATION_LOCK: i64 = 0x5e47_a407;

pub(super) struct PostgresStore {
    pool: Pool,
    /// Model ids never change once assigned: cache them.
    model_ids: Mutex<HashMap<ModelRef, i64>>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore").field("pool", &self.pool.status()).finish_non_exhaustive()
    }
}

fn pool_error(e: impl std::fmt::Display) -> StoreError {
    StoreError::Pool(e.to_string())
}

impl PostgresStore {
    pub(super) async fn open(url: &str, pool_size: usize) -> Result<PostgresStore, StoreError> {
        // The configured database as it prints: without a password.
        let open_error =
            |message: String| StoreError::Open { database: Database::Postgres(url.to_owned()).to_string(), message };
        let mut config = deadpool_postgres::Config::new();
        config.url = Some(url.to_owned());
        config.pool = Some(PoolConfig::new(pool_size.max(1)));
        let pool = config.create_pool(Some(Runtime::Tokio1), NoTls).map_err(|e| open_error(e.to_string()))?;
        let mut client = pool.get().await.map_err(|e| open_error(e.to_string()))?;
        let tx = client.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).await?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_ms BIGINT NOT NULL)",
        )
        .await?;
        let current: i64 =
            tx.query_one("SELECT coalesce(max(version), 0)::bigint FROM schema_migrations", &[]).await?.get(0);
        let known = MIGRATIONS.last().map_or(0, |m| m.version);
        if current > known {
            return Err(StoreError::SchemaTooNew { found: current, known });
        }
        for m in MIGRATIONS.iter().filter(|m| m.version > current) {
            tracing::info!(version = m.version, name = m.name, "applying PostgreSQL migration");
            tx.batch_execute(m.postgres).await?;
            tx.execute(
                "INSERT INTO schema_migrations (version, name, applied_ms) VALUES ($1, $2, $3)",
                &[&m.version, &m.name, &crate::now_ms()],
            )
            .await?;
        }
        tx.commit().await?;
        drop(client);
        Ok(PostgresStore { pool, model_ids: Mutex::default() })
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool.get().await.map_err(pool_error)
    }

    async fn model_id(&self, client: &impl GenericClient, model: &ModelRef) -> Result<i64, StoreError> {
        if let Some(&id) = self.model_ids.lock().ok().as_ref().and_then(|ids| ids.get(model)) {
            return Ok(id);
        }
        client
            .execute(
                "INSERT INTO models (name, version, hash) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                &[&model.name, &model.version, &model.hash],
            )
            .await?;
        let id: i64 = client
            .query_one(
                "SELECT id FROM models WHERE name = $1 AND version = $2 AND hash = $3",
                &[&model.name, &model.version, &model.hash],
            )
            .await?
            .get(0);
        if let Ok(mut ids) = self.model_ids.lock() {
            ids.insert(model.clone(), id);
        }
        Ok(id)
    }

    async fn ingest(&self, incoming: Incoming) -> Result<Ingested, StoreError> {
        let Incoming { batch, rejected, key_id } = incoming;
        let now = crate::now_ms();
        let mut client = self.client().await?;
        // The model row is committed on its own: it is needed whether or not this batch is new.
        let model_id = self.model_id(&client, &batch.model).await?;
        let tx = client.transaction().await?;
        let insert_batch = tx
            .prepare_cached(
                "INSERT INTO batches (batch_id, session, model_id, source_kind, source_node, sdk_version, key_id,
                                      received_ms, records, rejected, predictions)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
                 ON CONFLICT (batch_id) DO NOTHING RETURNING seq",
            )
            .await?;
        let inserted = tx
            .query_opt(
                &insert_batch,
                &[
                    &batch.batch_id,
                    &batch.session,
                    &model_id,
                    &super::source_kind_str(batch.source.kind),
                    &batch.source.node,
                    &batch.source.sdk_version,
                    &key_id,
                    &now,
                    &(batch.records.len() as i64),
                    &super::clamp(rejected),
                    &super::prediction_count(&batch),
                ],
            )
            .await?;
        let Some(row) = inserted else {
            tx.rollback().await?;
            return Ok(Ingested::Duplicate);
        };
        let batch_seq: i64 = row.get(0);
        let upsert_session = tx
            .prepare_cached(
                "INSERT INTO sessions (session, model_id, dropped, unconfirmed) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (session) DO UPDATE SET
                     dropped = GREATEST(sessions.dropped, excluded.dropped),
                     unconfirmed = GREATEST(sessions.unconfirmed, excluded.unconfirmed)",
            )
            .await?;
        tx.execute(
            &upsert_session,
            &[&batch.session, &model_id, &super::client_count(batch.dropped), &super::client_count(batch.unconfirmed)],
        )
        .await?;

        let mut columns = PredictionColumns::default();
        let mut labels = Vec::new();
        for record in &batch.records {
            match record {
                Record::Prediction(p) => columns.push(p),
                Record::Features(summary) => {
                    let body = serde_json::to_string(summary)
                        .map_err(|e| StoreError::Corrupt { what: "feature summary", message: e.to_string() })?;
                    let stmt = tx
                        .prepare_cached(
                            "INSERT INTO feature_summaries (batch_seq, model_id, window_start_ms, rows, body)
                             VALUES ($1, $2, $3, $4, $5)",
                        )
                        .await?;
                    tx.execute(
                        &stmt,
                        &[&batch_seq, &model_id, &summary.window_start_ms, &super::client_count(summary.rows), &body],
                    )
                    .await?;
                }
                Record::Error(error) => {
                    let stmt = tx
                        .prepare_cached(
                            "INSERT INTO errors (batch_seq, model_id, timestamp_ms, kind, message)
                             VALUES ($1, $2, $3, $4, $5)",
                        )
                        .await?;
                    tx.execute(
                        &stmt,
                        &[
                            &batch_seq,
                            &model_id,
                            &error.timestamp_ms,
                            &super::error_kind_str(error.kind),
                            &error.message,
                        ],
                    )
                    .await?;
                }
                Record::Label(label) => labels.push(label.clone()),
            }
        }
        // What the batch adds to its minutes, with the labels that came before their predictions.
        let mut known = HashMap::new();
        if !columns.ids.is_empty() {
            let stmt = tx
                .prepare_cached(
                    "SELECT prediction_id, truth_class, truth_value FROM labels WHERE prediction_id = ANY($1)",
                )
                .await?;
            for r in tx.query(&stmt, &[&columns.ids]).await? {
                if let Some(truth) = super::truth_of(r.get(1), r.get(2)) {
                    known.insert(r.get::<_, String>(0), truth);
                }
            }
        }
        for (minute, rollup) in rollup::of_batch(&batch, &known) {
            insert_rollup(&tx, model_id, minute, &rollup).await?;
        }
        if !columns.ids.is_empty() {
            let stmt = tx
                .prepare_cached(
                    "INSERT INTO predictions (batch_seq, model_id, prediction_id, timestamp_ms, latency_us, engine,
                                              label, score, value, top_k)
                     SELECT $1, $2, * FROM UNNEST($3::text[], $4::bigint[], $5::bigint[], $6::text[], $7::text[],
                                                  $8::float8[], $9::float8[], $10::text[])",
                )
                .await?;
            tx.execute(
                &stmt,
                &[
                    &batch_seq,
                    &model_id,
                    &columns.ids,
                    &columns.timestamps,
                    &columns.latencies,
                    &columns.engines,
                    &columns.labels,
                    &columns.scores,
                    &columns.values,
                    &columns.top_k,
                ],
            )
            .await?;
        }
        put_labels(&tx, labels, now).await?;
        tx.commit().await?;
        Ok(Ingested::Stored)
    }
}

/// A batch's predictions, column by column, for one `UNNEST` insert.
#[derive(Default)]
struct PredictionColumns<'a> {
    ids: Vec<&'a str>,
    timestamps: Vec<i64>,
    latencies: Vec<i64>,
    engines: Vec<&'static str>,
    labels: Vec<Option<&'a str>>,
    scores: Vec<Option<f64>>,
    values: Vec<Option<f64>>,
    top_k: Vec<Option<String>>,
}

impl<'a> PredictionColumns<'a> {
    fn push(&mut self, p: &'a telemetry::Prediction) {
        let (label, score, value, top_k) = super::output_columns(&p.output);
        self.ids.push(&p.id);
        self.timestamps.push(p.timestamp_ms);
        self.latencies.push(i64::from(p.latency_us));
        self.engines.push(super::engine_str(p.engine));
        self.labels.push(label);
        self.scores.push(score);
        self.values.push(value);
        self.top_k.push(top_k);
    }
}

async fn put_labels(client: &impl GenericClient, labels: Vec<Label>, now: i64) -> Result<u64, StoreError> {
    if labels.is_empty() {
        return Ok(0);
    }
    // One statement may not update a row twice: the last label per prediction wins, as it would
    // if sent later.
    let labels = super::last_label_per_prediction(labels);
    let ids: Vec<&str> = labels.iter().map(|l| l.prediction_id.as_str()).collect();
    let timestamps: Vec<i64> = labels.iter().map(|l| l.timestamp_ms).collect();
    let (classes, values): (Vec<Option<&str>>, Vec<Option<f64>>) =
        labels.iter().map(|l| super::truth_columns(&l.truth)).unzip();
    // What the labels add to their predictions' minutes: the labels they replace are locked, so two
    // corrections of one prediction at once take back the right pair.
    let old: HashMap<String, Truth> = client
        .query(
            "SELECT prediction_id, truth_class, truth_value FROM labels WHERE prediction_id = ANY($1) FOR UPDATE",
            &[&ids],
        )
        .await?
        .iter()
        .filter_map(|r| super::truth_of(r.get(1), r.get(2)).map(|t| (r.get::<_, String>(0), t)))
        .collect();
    let predicted: HashMap<String, (i64, Predicted)> = client
        .query(
            "SELECT DISTINCT ON (prediction_id) prediction_id, model_id, timestamp_ms, label, value
             FROM predictions WHERE prediction_id = ANY($1) ORDER BY prediction_id, seq",
            &[&ids],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), (r.get(1), Predicted { timestamp_ms: r.get(2), label: r.get(3), value: r.get(4) })))
        .collect();
    let mut rollups: BTreeMap<(i64, i64), Rollup> = BTreeMap::new();
    for label in &labels {
        let Some((model_id, p)) = predicted.get(&label.prediction_id) else { continue };
        if let Some((minute, rollup)) = rollup::of_label(Some(p), old.get(&label.prediction_id), &label.truth) {
            rollups.entry((*model_id, minute)).or_default().merge(&rollup);
        }
    }
    for ((model_id, minute), rollup) in rollups {
        insert_rollup(client, model_id, minute, &rollup).await?;
    }
    let stmt = client
        .prepare_cached(
            "INSERT INTO labels (prediction_id, timestamp_ms, truth_class, truth_value, received_ms)
             SELECT *, $5 FROM UNNEST($1::text[], $2::bigint[], $3::text[], $4::float8[])
             ON CONFLICT (prediction_id) DO UPDATE SET timestamp_ms = excluded.timestamp_ms,
                 truth_class = excluded.truth_class, truth_value = excluded.truth_value,
                 received_ms = excluded.received_ms",
        )
        .await?;
    Ok(client.execute(&stmt, &[&ids, &timestamps, &classes, &values, &now]).await?)
}

async fn insert_rollup(
    client: &impl GenericClient,
    model_id: i64,
    minute: i64,
    rollup: &Rollup,
) -> Result<(), StoreError> {
    let stmt = client.prepare_cached("INSERT INTO rollups (model_id, bucket_ms, body) VALUES ($1, $2, $3)").await?;
    client.execute(&stmt, &[&model_id, &minute, &rollup::to_body(rollup)?]).await?;
    Ok(())
}

fn key_from_row(row: &tokio_postgres::Row) -> KeyInfo {
    let role: String = row.get(2);
    KeyInfo {
        id: row.get(0),
        name: row.get(1),
        // Only this crate writes roles; an unknown one can only mean a hand-edited row: least power.
        role: Role::parse(&role).unwrap_or(Role::Ingest),
        created_ms: row.get(3),
        revoked_ms: row.get(4),
    }
}

impl Store for PostgresStore {
    fn ingest(&self, incoming: Incoming) -> BoxFuture<'_, Result<Ingested, StoreError>> {
        Box::pin(PostgresStore::ingest(self, incoming))
    }

    fn put_labels(&self, labels: Vec<Label>) -> BoxFuture<'_, Result<u64, StoreError>> {
        Box::pin(async move {
            let client = self.client().await?;
            put_labels(&client, labels, crate::now_ms()).await
        })
    }

    fn put_profile(&self, model: String, version: String, body: String) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            self.client()
                .await?
                .execute(
                    "INSERT INTO profiles (model, version, body, updated_ms) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (model, version) DO UPDATE SET body = excluded.body, updated_ms = excluded.updated_ms",
                    &[&model, &version, &body, &crate::now_ms()],
                )
                .await?;
            Ok(())
        })
    }

    fn profile(&self, model: String, version: String) -> BoxFuture<'_, Result<Option<String>, StoreError>> {
        Box::pin(async move {
            let row = self
                .client()
                .await?
                .query_opt("SELECT body FROM profiles WHERE model = $1 AND version = $2", &[&model, &version])
                .await?;
            Ok(row.map(|r| r.get(0)))
        })
    }

    fn models(&self) -> BoxFuture<'_, Result<Vec<ModelSummary>, StoreError>> {
        Box::pin(async move {
            let rows = self
                .client()
                .await?
                .query(
                    "SELECT m.name, m.version, m.hash,
                        (SELECT count(*) FROM batches b WHERE b.model_id = m.id),
                        (SELECT coalesce(sum(predictions), 0)::bigint FROM batches b WHERE b.model_id = m.id),
                        (SELECT count(*) FROM sessions s WHERE s.model_id = m.id),
                        (SELECT coalesce(sum(dropped), 0)::bigint FROM sessions s WHERE s.model_id = m.id),
                        (SELECT coalesce(sum(unconfirmed), 0)::bigint FROM sessions s WHERE s.model_id = m.id),
                        (SELECT max(received_ms) FROM batches b WHERE b.model_id = m.id),
                        EXISTS (SELECT 1 FROM profiles f WHERE f.model = m.name AND f.version = m.version)
                     FROM models m ORDER BY m.name, m.version, m.hash",
                    &[],
                )
                .await?;
            Ok(rows
                .iter()
                .map(|r| ModelSummary {
                    name: r.get(0),
                    version: r.get(1),
                    hash: r.get(2),
                    batches: r.get(3),
                    predictions: r.get(4),
                    sessions: r.get(5),
                    dropped: r.get(6),
                    unconfirmed: r.get(7),
                    last_received_ms: r.get(8),
                    has_profile: r.get(9),
                })
                .collect())
        })
    }

    fn batches(&self, page: PageRequest) -> BoxFuture<'_, Result<Page<BatchRow>, StoreError>> {
        Box::pin(async move {
            let rows = self
                .client()
                .await?
                .query(
                    "SELECT b.seq, b.batch_id, b.session, m.name, m.version, b.source_kind, b.source_node,
                            b.received_ms, b.records, b.rejected
                     FROM batches b JOIN models m ON m.id = b.model_id
                     WHERE b.seq > $1 ORDER BY b.seq LIMIT $2",
                    &[&page.after, &(page.limit as i64)],
                )
                .await?;
            let rows = rows
                .iter()
                .map(|r| {
                    let row = BatchRow {
                        seq: r.get(0),
                        batch_id: r.get(1),
                        session: r.get(2),
                        model: r.get(3),
                        version: r.get(4),
                        source_kind: r.get(5),
                        source_node: r.get(6),
                        received_ms: r.get(7),
                        records: r.get(8),
                        rejected: r.get(9),
                    };
                    (row.seq, row)
                })
                .collect();
            Ok(Page::from_rows(rows, page.limit))
        })
    }

    fn records(
        &self,
        model: String,
        version: String,
        kind: RecordKind,
        page: PageRequest,
    ) -> BoxFuture<'_, Result<Page<serde_json::Value>, StoreError>> {
        Box::pin(async move {
            let client = self.client().await?;
            let limit = page.limit as i64;
            let args: [&(dyn tokio_postgres::types::ToSql + Sync); 4] = [&model, &version, &page.after, &limit];
            let rows: Vec<(i64, serde_json::Value)> = match kind {
                RecordKind::Predictions => client
                    .query(
                        "SELECT p.seq, p.prediction_id, p.timestamp_ms, p.latency_us, p.engine, p.label, p.score,
                                p.value, p.top_k, l.truth_class, l.truth_value
                         FROM predictions p LEFT JOIN labels l ON l.prediction_id = p.prediction_id
                         WHERE p.model_id IN (SELECT id FROM models WHERE name = $1 AND version = $2)
                           AND p.seq > $3 ORDER BY p.seq LIMIT $4",
                        &args,
                    )
                    .await?
                    .iter()
                    .map(|r| {
                        let row = PredictionRow {
                            seq: r.get(0),
                            prediction_id: r.get(1),
                            timestamp_ms: r.get(2),
                            latency_us: r.get(3),
                            engine: r.get(4),
                            output: super::output_json(r.get(5), r.get(6), r.get(7), r.get(8)),
                            truth: super::truth_json(r.get(9), r.get(10)),
                        };
                        (row.seq, serde_json::to_value(row).unwrap_or_default())
                    })
                    .collect(),
                RecordKind::Features => {
                    let rows = client
                        .query(
                            "SELECT seq, body FROM feature_summaries
                             WHERE model_id IN (SELECT id FROM models WHERE name = $1 AND version = $2)
                               AND seq > $3 ORDER BY seq LIMIT $4",
                            &args,
                        )
                        .await?;
                    let mut out = Vec::with_capacity(rows.len());
                    for r in rows {
                        let seq: i64 = r.get(0);
                        let mut value: serde_json::Value = serde_json::from_str(r.get(1))
                            .map_err(|e| StoreError::Corrupt { what: "feature summary", message: e.to_string() })?;
                        value["seq"] = seq.into();
                        out.push((seq, value));
                    }
                    out
                }
                RecordKind::Errors => client
                    .query(
                        "SELECT seq, timestamp_ms, kind, message FROM errors
                         WHERE model_id IN (SELECT id FROM models WHERE name = $1 AND version = $2)
                           AND seq > $3 ORDER BY seq LIMIT $4",
                        &args,
                    )
                    .await?
                    .iter()
                    .map(|r| {
                        let seq: i64 = r.get(0);
                        let value = serde_json::json!({
                            "seq": seq,
                            "timestamp_ms": r.get::<_, i64>(1),
                            "kind": r.get::<_, String>(2),
                            "message": r.get::<_, String>(3),
                        });
                        (seq, value)
                    })
                    .collect(),
            };
            Ok(Page::from_rows(rows, page.limit))
        })
    }

    fn create_key(&self, name: String, role: Role, digest: String) -> BoxFuture<'_, Result<KeyInfo, StoreError>> {
        Box::pin(async move {
            let created_ms = crate::now_ms();
            let row = self
                .client()
                .await?
                .query_one(
                    "INSERT INTO api_keys (name, role, digest, created_ms) VALUES ($1, $2, $3, $4) RETURNING id",
                    &[&name, &role.as_str(), &digest, &created_ms],
                )
                .await?;
            Ok(KeyInfo { id: row.get(0), name, role, created_ms, revoked_ms: None })
        })
    }

    fn find_key(&self, digest: String) -> BoxFuture<'_, Result<Option<KeyInfo>, StoreError>> {
        Box::pin(async move {
            let row = self
                .client()
                .await?
                .query_opt(
                    "SELECT id, name, role, created_ms, revoked_ms FROM api_keys
                     WHERE digest = $1 AND revoked_ms IS NULL",
                    &[&digest],
                )
                .await?;
            Ok(row.as_ref().map(key_from_row))
        })
    }

    fn keys(&self) -> BoxFuture<'_, Result<Vec<KeyInfo>, StoreError>> {
        Box::pin(async move {
            let rows = self
                .client()
                .await?
                .query("SELECT id, name, role, created_ms, revoked_ms FROM api_keys ORDER BY id", &[])
                .await?;
            Ok(rows.iter().map(key_from_row).collect())
        })
    }

    fn revoke_key(&self, id: i64) -> BoxFuture<'_, Result<bool, StoreError>> {
        Box::pin(async move {
            let changed = self
                .client()
                .await?
                .execute(
                    "UPDATE api_keys SET revoked_ms = $1 WHERE id = $2 AND revoked_ms IS NULL",
                    &[&crate::now_ms(), &id],
                )
                .await?;
            Ok(changed == 1)
        })
    }

    fn model_versions(&self) -> BoxFuture<'_, Result<Vec<ModelVersion>, StoreError>> {
        Box::pin(async move {
            let rows = self
                .client()
                .await?
                .query(
                    "SELECT m.name, m.version, max((SELECT max(seq) FROM batches b WHERE b.model_id = m.id))
                     FROM models m GROUP BY m.name, m.version ORDER BY m.name, m.version",
                    &[],
                )
                .await?;
            Ok(rows
                .iter()
                .map(|r| ModelVersion { name: r.get(0), version: r.get(1), last_batch_seq: r.get(2) })
                .collect())
        })
    }

    fn window(&self, model: String, version: String, span: Span) -> BoxFuture<'_, Result<WindowData, StoreError>> {
        Box::pin(async move {
            let rows = self
                .client()
                .await?
                .query(
                    "SELECT body FROM rollups
                     WHERE model_id IN (SELECT id FROM models WHERE name = $1 AND version = $2)
                       AND bucket_ms >= $3 AND bucket_ms < $4",
                    &[&model, &version, &span.start_ms, &span.end_ms],
                )
                .await?;
            Ok(rollup::merge_bodies(rows.iter().map(|r| r.get::<_, &[u8]>(0)))?.into_window())
        })
    }

    /// Each minute is compacted in its own transaction, its rows locked, so concurrent ingest (new
    /// rows) and another process compacting the same minute are safe. A row committed late with an
    /// id below `last_id` stays a row of its own until its minute is touched again: reads merge all
    /// rows, so that costs only a little read time.
    fn compact_rollups(&self, after_id: i64) -> BoxFuture<'_, Result<Compacted, StoreError>> {
        Box::pin(async move {
            let mut client = self.client().await?;
            let last_id: i64 =
                client.query_one("SELECT coalesce(max(id), $1) FROM rollups", &[&after_id]).await?.get(0);
            let groups: Vec<(i64, i64)> = client
                .query(
                    "SELECT DISTINCT model_id, bucket_ms FROM rollups WHERE id > $1 AND id <= $2",
                    &[&after_id, &last_id],
                )
                .await?
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect();
            let mut compacted = Compacted { last_id, rows_merged: 0 };
            for (model_id, minute) in groups {
                let tx = client.transaction().await?;
                let rows = tx
                    .query(
                        "SELECT id, body FROM rollups WHERE model_id = $1 AND bucket_ms = $2 FOR UPDATE",
                        &[&model_id, &minute],
                    )
                    .await?;
                if rows.len() < 2 {
                    continue;
                }
                let ids: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
                let merged = rollup::merge_bodies(rows.iter().map(|r| r.get::<_, &[u8]>(1)))?;
                tx.execute("DELETE FROM rollups WHERE id = ANY($1)", &[&ids]).await?;
                insert_rollup(&tx, model_id, minute, &merged).await?;
                tx.commit().await?;
                compacted.rows_merged += ids.len() as u64;
            }
            Ok(compacted)
        })
    }

    fn alert_rules(&self) -> BoxFuture<'_, Result<Vec<(String, String)>, StoreError>> {
        Box::pin(async move {
            let rows = self.client().await?.query("SELECT name, body FROM alert_rules ORDER BY name", &[]).await?;
            Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
        })
    }

    fn put_alert_rule(&self, name: String, body: String) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            self.client()
                .await?
                .execute(
                    "INSERT INTO alert_rules (name, body, updated_ms) VALUES ($1, $2, $3)
                     ON CONFLICT (name) DO UPDATE SET body = excluded.body, updated_ms = excluded.updated_ms",
                    &[&name, &body, &crate::now_ms()],
                )
                .await?;
            Ok(())
        })
    }

    fn delete_alert_rule(&self, name: String) -> BoxFuture<'_, Result<bool, StoreError>> {
        Box::pin(async move {
            Ok(self.client().await?.execute("DELETE FROM alert_rules WHERE name = $1", &[&name]).await? == 1)
        })
    }

    fn fire_alert(&self, alert: NewAlert, webhooks: Vec<String>) -> BoxFuture<'_, Result<Option<i64>, StoreError>> {
        Box::pin(async move {
            let mut client = self.client().await?;
            let tx = client.transaction().await?;
            let row = tx
                .query_opt(
                    "INSERT INTO alerts (rule, model, version, subject, metric, severity, value, threshold, message,
                                         window_start_ms, started_ms)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT DO NOTHING RETURNING id",
                    &[
                        &alert.rule,
                        &alert.model,
                        &alert.version,
                        &alert.subject,
                        &alert.metric,
                        &alert.severity,
                        &alert.value,
                        &alert.threshold,
                        &alert.message,
                        &alert.window_start_ms,
                        &alert.started_ms,
                    ],
                )
                .await?;
            let Some(row) = row else { return Ok(None) };
            let id: i64 = row.get(0);
            queue_deliveries(&tx, id, AlertState::Firing, &webhooks, crate::now_ms()).await?;
            tx.commit().await?;
            Ok(Some(id))
        })
    }

    fn resolve_alert(
        &self,
        id: i64,
        resolved_ms: i64,
        webhooks: Vec<String>,
    ) -> BoxFuture<'_, Result<bool, StoreError>> {
        Box::pin(async move {
            let mut client = self.client().await?;
            let tx = client.transaction().await?;
            let changed = tx
                .execute(
                    "UPDATE alerts SET resolved_ms = $1 WHERE id = $2 AND resolved_ms IS NULL",
                    &[&resolved_ms, &id],
                )
                .await?;
            if changed == 1 {
                queue_deliveries(&tx, id, AlertState::Resolved, &webhooks, crate::now_ms()).await?;
            }
            tx.commit().await?;
            Ok(changed == 1)
        })
    }

    fn alerts(&self, query: AlertQuery) -> BoxFuture<'_, Result<Vec<AlertRow>, StoreError>> {
        Box::pin(async move {
            let client = self.client().await?;
            let filter = "FROM alerts a WHERE ($1::text IS NULL OR a.model = $1) AND (NOT $2 OR a.resolved_ms IS NULL)
                          ORDER BY a.id DESC LIMIT $3";
            let limit = super::clamp(query.limit as u64);
            let args: [&(dyn tokio_postgres::types::ToSql + Sync); 3] = [&query.model, &query.firing_only, &limit];
            let rows = client.query(&format!("SELECT {} {filter}", super::ALERT_COLUMNS), &args).await?;
            let mut alerts: Vec<AlertRow> = rows.iter().map(alert_from_row).collect();
            let sql = format!(
                "SELECT {} FROM deliveries d WHERE d.alert_id IN (SELECT a.id {filter}) ORDER BY d.id",
                super::DELIVERY_COLUMNS
            );
            let deliveries = client
                .query(&sql, &args)
                .await?
                .iter()
                .map(|r| {
                    let row = super::delivery_row((
                        r.get(1),
                        r.get(2),
                        r.get(3),
                        r.get(4),
                        r.get(5),
                        r.get(6),
                        r.get(7),
                        r.get(8),
                    ));
                    (r.get(0), row)
                })
                .collect();
            super::attach(&mut alerts, deliveries);
            Ok(alerts)
        })
    }

    fn claim_deliveries(
        &self,
        now_ms: i64,
        lease_ms: i64,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<Due>, StoreError>> {
        Box::pin(async move {
            let client = self.client().await?;
            let limit = super::clamp(limit as u64);
            let claimed = client
                .query(
                    "UPDATE deliveries SET next_attempt_ms = $1 + $2
                     WHERE id IN (SELECT id FROM deliveries WHERE state = 'pending' AND next_attempt_ms <= $1
                                  ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED)
                     RETURNING id, alert_id, event, url, attempts",
                    &[&now_ms, &lease_ms, &limit],
                )
                .await?;
            let sql = format!("SELECT {} FROM alerts a WHERE a.id = $1", super::ALERT_COLUMNS);
            let mut due = Vec::with_capacity(claimed.len());
            for r in claimed {
                let alert_id: i64 = r.get(1);
                let alert = alert_from_row(&client.query_one(&sql, &[&alert_id]).await?);
                let event: String = r.get(2);
                due.push(Due {
                    id: r.get(0),
                    event: AlertState::parse(&event),
                    url: r.get(3),
                    attempts: r.get(4),
                    alert,
                });
            }
            due.sort_by_key(|d| d.id);
            Ok(due)
        })
    }

    fn finish_delivery(&self, id: i64, attempt: Attempt) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            let (state, delivered_ms, next_attempt_ms, error) = super::attempt_columns(&attempt);
            self.client()
                .await?
                .execute(
                    "UPDATE deliveries SET state = $2, attempts = attempts + 1,
                            delivered_ms = coalesce($3, delivered_ms), next_attempt_ms = coalesce($4, next_attempt_ms),
                            last_error = $5
                     WHERE id = $1",
                    &[&id, &state, &delivered_ms, &next_attempt_ms, &error],
                )
                .await?;
            Ok(())
        })
    }
}

fn alert_from_row(r: &tokio_postgres::Row) -> AlertRow {
    super::alert_row((
        r.get(0),
        r.get(1),
        r.get(2),
        r.get(3),
        r.get(4),
        r.get(5),
        r.get(6),
        r.get(7),
        r.get(8),
        r.get(9),
        r.get(10),
        r.get(11),
        r.get(12),
    ))
}

async fn queue_deliveries(
    client: &impl GenericClient,
    alert_id: i64,
    event: AlertState,
    webhooks: &[String],
    // Due at once: deliveries go out now, whatever time the alert is about.
    now_ms: i64,
) -> Result<(), StoreError> {
    for url in webhooks {
        client
            .execute(
                "INSERT INTO deliveries (alert_id, event, url, state, attempts, next_attempt_ms)
                 VALUES ($1, $2, $3, 'pending', 0, $4)",
                &[&alert_id, &event.as_str(), url, &now_ms],
            )
            .await?;
    }
    Ok(())
}
