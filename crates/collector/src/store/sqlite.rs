//! SQLite: one file in WAL mode, `synchronous = FULL`, for a single collector process.
//!
//! All writes go through one writer thread, which takes every job waiting in its queue and commits
//! them in one transaction (group commit: one fsync for many batches), each job inside its own
//! savepoint so one failing job does not spoil the others. A job's caller hears back only after the
//! commit, so an acknowledged batch is durable. Reads use their own connections on the blocking
//! pool and never wait for the writer (WAL).

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, params};
use telemetry::{Label, Record};
use tokio::sync::{mpsc, oneshot};

use std::collections::{BTreeMap, HashMap};

use super::{
    BatchRow, BoxFuture, Compacted, Incoming, Ingested, MIGRATIONS, ModelSummary, ModelVersion, Page, PageRequest,
    PredictionRow, RecordKind, Store, StoreError,
};
use crate::alerts::{AlertQuery, AlertRow, AlertState, Attempt, Due, NewAlert};
use crate::keys::{KeyInfo, Role};
use crate::monitor::rollup::{self, Predicted, Rollup};
use crate::monitor::{Span, WindowData};

/// Jobs committed in one transaction at most.
const MAX_GROUP: usize = 256;

/// Called after the group's commit with its outcome.
type Finish = Box<dyn FnOnce(Result<(), &rusqlite::Error>) + Send>;
/// Runs inside the group's transaction; says whether it succeeded (else its savepoint is undone).
type Job = Box<dyn FnOnce(&Connection) -> (bool, Finish) + Send>;

#[derive(Debug)]
pub(super) struct SqliteStore {
    path: PathBuf,
    jobs: mpsc::Sender<Job>,
    readers: std::sync::Arc<Mutex<Vec<Connection>>>,
}

fn connect(path: &Path) -> Result<Connection, rusqlite::Error> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    // 64 MiB of page cache: the prediction-id index takes random inserts.
    conn.pragma_update(None, "cache_size", -65536)?;
    Ok(conn)
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_ms INTEGER NOT NULL)",
    )?;
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let current: i64 = tx.query_row("SELECT coalesce(max(version), 0) FROM schema_migrations", [], |r| r.get(0))?;
    let known = MIGRATIONS.last().map_or(0, |m| m.version);
    if current > known {
        return Err(StoreError::SchemaTooNew { found: current, known });
    }
    for m in MIGRATIONS.iter().filter(|m| m.version > current) {
        tracing::info!(version = m.version, name = m.name, "applying SQLite migration");
        tx.execute_batch(m.sqlite)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, applied_ms) VALUES (?1, ?2, ?3)",
            params![m.version, m.name, crate::now_ms()],
        )?;
    }
    tx.commit()?;
    Ok(())
}

impl SqliteStore {
    pub(super) async fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let path = path.to_owned();
        let opened = path.clone();
        let conn = tokio::task::spawn_blocking(move || -> Result<Connection, StoreError> {
            let mut conn = connect(&opened)
                .map_err(|e| StoreError::Open { database: opened.display().to_string(), message: e.to_string() })?;
            migrate(&mut conn)?;
            Ok(conn)
        })
        .await
        .map_err(|e| StoreError::Open { database: path.display().to_string(), message: e.to_string() })??;
        let (jobs, queue) = mpsc::channel(1024);
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || writer(conn, queue))
            .map_err(|e| StoreError::Open { database: path.display().to_string(), message: e.to_string() })?;
        Ok(SqliteStore { path, jobs, readers: Default::default() })
    }

    /// Runs `f` in the writer's next group commit; returns once that commit is durable.
    async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(move |conn| {
            let result = f(conn);
            let ok = result.is_ok();
            let finish: Finish = Box::new(move |commit| {
                let outcome = match commit {
                    Ok(()) => result,
                    Err(e) => Err(StoreError::Sqlite(clone_error(e))),
                };
                // The caller may have gone (client hung up): the commit stands either way.
                let _ = reply.send(outcome);
            });
            (ok, finish)
        });
        self.jobs.send(job).await.map_err(|_| StoreError::WriterGone)?;
        answer.await.map_err(|_| StoreError::WriterGone)?
    }

    /// Runs `f` on a read connection, on the blocking pool.
    async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let path = self.path.clone();
        let readers = self.readers.clone();
        tokio::task::spawn_blocking(move || {
            let pooled = readers.lock().ok().and_then(|mut r| r.pop());
            let conn = match pooled {
                Some(conn) => conn,
                None => {
                    let conn = connect(&path)?;
                    conn.pragma_update(None, "query_only", "ON")?;
                    conn
                }
            };
            let result = f(&conn);
            if let Ok(mut r) = readers.lock()
                && r.len() < 8
            {
                r.push(conn);
            }
            result
        })
        .await
        .map_err(|e| StoreError::Corrupt { what: "read task", message: e.to_string() })?
    }
}

/// rusqlite errors are not `Clone`; a commit failure is reported to every job in the group.
fn clone_error(e: &rusqlite::Error) -> rusqlite::Error {
    rusqlite::Error::SqliteFailure(
        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_IOERR),
        Some(format!("group commit failed: {e}")),
    )
}

fn writer(conn: Connection, mut queue: mpsc::Receiver<Job>) {
    while let Some(first) = queue.blocking_recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match queue.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
            let finishes: Vec<Finish> = group.into_iter().map(|job| job(&conn).1).collect();
            finishes.into_iter().for_each(|finish| finish(Err(&e)));
            continue;
        }
        let mut finishes = Vec::with_capacity(group.len());
        for job in group {
            let savepoint = conn.execute_batch("SAVEPOINT job");
            let (ok, finish) = job(&conn);
            if savepoint.is_ok() {
                let undo = if ok { "RELEASE job" } else { "ROLLBACK TO job; RELEASE job" };
                if let Err(e) = conn.execute_batch(undo) {
                    tracing::error!(error = %e, "SQLite savepoint failed");
                }
            }
            finishes.push(finish);
        }
        match conn.execute_batch("COMMIT") {
            Ok(()) => finishes.into_iter().for_each(|finish| finish(Ok(()))),
            Err(e) => {
                tracing::error!(error = %e, "SQLite commit failed");
                let _ = conn.execute_batch("ROLLBACK");
                finishes.into_iter().for_each(|finish| finish(Err(&e)));
            }
        }
    }
}

fn ingest(conn: &Connection, incoming: Incoming) -> Result<Ingested, StoreError> {
    let Incoming { batch, rejected, key_id } = incoming;
    let now = crate::now_ms();
    conn.prepare_cached("INSERT INTO models (name, version, hash) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING")?
        .execute(params![batch.model.name, batch.model.version, batch.model.hash])?;
    let model_id: i64 = conn
        .prepare_cached("SELECT id FROM models WHERE name = ?1 AND version = ?2 AND hash = ?3")?
        .query_row(params![batch.model.name, batch.model.version, batch.model.hash], |r| r.get(0))?;
    let inserted = conn
        .prepare_cached(
            "INSERT INTO batches (batch_id, session, model_id, source_kind, source_node, sdk_version, key_id,
                                  received_ms, records, rejected, predictions)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) ON CONFLICT (batch_id) DO NOTHING",
        )?
        .execute(params![
            batch.batch_id,
            batch.session,
            model_id,
            super::source_kind_str(batch.source.kind),
            batch.source.node,
            batch.source.sdk_version,
            key_id,
            now,
            batch.records.len() as i64,
            rejected as i64,
            super::prediction_count(&batch),
        ])?;
    if inserted == 0 {
        return Ok(Ingested::Duplicate);
    }
    let batch_seq = conn.last_insert_rowid();
    conn.prepare_cached(
        "INSERT INTO sessions (session, model_id, dropped, unconfirmed) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (session) DO UPDATE SET dropped = max(dropped, excluded.dropped),
                                             unconfirmed = max(unconfirmed, excluded.unconfirmed)",
    )?
    .execute(params![
        batch.session,
        model_id,
        super::client_count(batch.dropped),
        super::client_count(batch.unconfirmed)
    ])?;

    // What the batch adds to its minutes, with the labels that came before their predictions.
    let ids: Vec<&str> = batch
        .records
        .iter()
        .filter_map(|r| if let Record::Prediction(p) = r { Some(p.id.as_str()) } else { None })
        .collect();
    let mut known = HashMap::new();
    if !ids.is_empty() {
        let ids =
            serde_json::to_string(&ids).map_err(|e| StoreError::Corrupt { what: "ids", message: e.to_string() })?;
        let mut stmt = conn.prepare_cached(
            "SELECT prediction_id, truth_class, truth_value FROM labels
             WHERE prediction_id IN (SELECT value FROM json_each(?1))",
        )?;
        for row in stmt.query_map([ids], |r| Ok((r.get::<_, String>(0)?, r.get(1)?, r.get(2)?)))? {
            let (id, class, value) = row?;
            if let Some(truth) = super::truth_of(class, value) {
                known.insert(id, truth);
            }
        }
    }
    for (minute, rollup) in rollup::of_batch(&batch, &known) {
        insert_rollup(conn, model_id, minute, &rollup)?;
    }

    let mut prediction = conn.prepare_cached(
        "INSERT INTO predictions (batch_seq, model_id, prediction_id, timestamp_ms, latency_us, engine,
                                  label, score, value, top_k)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?;
    let mut labels = Vec::new();
    for record in batch.records {
        match record {
            Record::Prediction(p) => {
                let (label, score, value, top_k) = super::output_columns(&p.output);
                prediction.execute(params![
                    batch_seq,
                    model_id,
                    p.id,
                    p.timestamp_ms,
                    p.latency_us,
                    super::engine_str(p.engine),
                    label,
                    score,
                    value,
                    top_k
                ])?;
            }
            Record::Features(summary) => {
                let body = serde_json::to_string(&summary)
                    .map_err(|e| StoreError::Corrupt { what: "feature summary", message: e.to_string() })?;
                conn.prepare_cached(
                    "INSERT INTO feature_summaries (batch_seq, model_id, window_start_ms, rows, body)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )?
                .execute(params![
                    batch_seq,
                    model_id,
                    summary.window_start_ms,
                    super::client_count(summary.rows),
                    body
                ])?;
            }
            Record::Error(error) => {
                conn.prepare_cached(
                    "INSERT INTO errors (batch_seq, model_id, timestamp_ms, kind, message) VALUES (?1, ?2, ?3, ?4, ?5)",
                )?
                .execute(params![
                    batch_seq,
                    model_id,
                    error.timestamp_ms,
                    super::error_kind_str(error.kind),
                    error.message
                ])?;
            }
            Record::Label(label) => labels.push(label),
        }
    }
    put_labels(conn, labels, now)?;
    Ok(Ingested::Stored)
}

fn put_labels(conn: &Connection, labels: Vec<Label>, now: i64) -> Result<u64, StoreError> {
    let mut upsert = conn.prepare_cached(
        "INSERT INTO labels (prediction_id, timestamp_ms, truth_class, truth_value, received_ms)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (prediction_id) DO UPDATE SET timestamp_ms = excluded.timestamp_ms,
             truth_class = excluded.truth_class, truth_value = excluded.truth_value,
             received_ms = excluded.received_ms",
    )?;
    let mut find_prediction = conn.prepare_cached(
        "SELECT model_id, timestamp_ms, label, value FROM predictions WHERE prediction_id = ?1 ORDER BY seq LIMIT 1",
    )?;
    let mut find_label = conn.prepare_cached("SELECT truth_class, truth_value FROM labels WHERE prediction_id = ?1")?;
    // What the labels add to their predictions' minutes.
    let mut rollups: BTreeMap<(i64, i64), Rollup> = BTreeMap::new();
    let mut stored = 0;
    for label in labels {
        let predicted = find_prediction
            .query_row([&label.prediction_id], |r| {
                Ok((r.get::<_, i64>(0)?, Predicted { timestamp_ms: r.get(1)?, label: r.get(2)?, value: r.get(3)? }))
            })
            .optional()?;
        let old = find_label
            .query_row([&label.prediction_id], |r| Ok(super::truth_of(r.get(0)?, r.get(1)?)))
            .optional()?
            .flatten();
        if let Some((model_id, predicted)) = &predicted
            && let Some((minute, rollup)) = rollup::of_label(Some(predicted), old.as_ref(), &label.truth)
        {
            rollups.entry((*model_id, minute)).or_default().merge(&rollup);
        }
        let (class, value) = super::truth_columns(&label.truth);
        stored += upsert.execute(params![label.prediction_id, label.timestamp_ms, class, value, now])? as u64;
    }
    for ((model_id, minute), rollup) in rollups {
        insert_rollup(conn, model_id, minute, &rollup)?;
    }
    Ok(stored)
}

fn insert_rollup(conn: &Connection, model_id: i64, minute: i64, rollup: &Rollup) -> Result<(), StoreError> {
    conn.prepare_cached("INSERT INTO rollups (model_id, bucket_ms, body) VALUES (?1, ?2, ?3)")?.execute(params![
        model_id,
        minute,
        rollup::to_body(rollup)?
    ])?;
    Ok(())
}

fn key_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<KeyInfo> {
    let role: String = row.get(2)?;
    Ok(KeyInfo {
        id: row.get(0)?,
        name: row.get(1)?,
        // Only this crate writes roles; an unknown one can only mean a hand-edited row: least power.
        role: Role::parse(&role).unwrap_or(Role::Ingest),
        created_ms: row.get(3)?,
        revoked_ms: row.get(4)?,
    })
}

impl Store for SqliteStore {
    fn ingest(&self, incoming: Incoming) -> BoxFuture<'_, Result<Ingested, StoreError>> {
        Box::pin(self.write(move |conn| ingest(conn, incoming)))
    }

    fn put_labels(&self, labels: Vec<Label>) -> BoxFuture<'_, Result<u64, StoreError>> {
        Box::pin(self.write(move |conn| put_labels(conn, labels, crate::now_ms())))
    }

    fn put_profile(&self, model: String, version: String, body: String) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(self.write(move |conn| {
            conn.execute(
                "INSERT INTO profiles (model, version, body, updated_ms) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (model, version) DO UPDATE SET body = excluded.body, updated_ms = excluded.updated_ms",
                params![model, version, body, crate::now_ms()],
            )?;
            Ok(())
        }))
    }

    fn profile(&self, model: String, version: String) -> BoxFuture<'_, Result<Option<String>, StoreError>> {
        Box::pin(self.read(move |conn| {
            Ok(conn
                .query_row(
                    "SELECT body FROM profiles WHERE model = ?1 AND version = ?2",
                    params![model, version],
                    |r| r.get(0),
                )
                .optional()?)
        }))
    }

    fn models(&self) -> BoxFuture<'_, Result<Vec<ModelSummary>, StoreError>> {
        Box::pin(self.read(|conn| {
            let mut stmt = conn.prepare(
                "SELECT m.name, m.version, m.hash,
                    (SELECT count(*) FROM batches b WHERE b.model_id = m.id),
                    (SELECT coalesce(sum(predictions), 0) FROM batches b WHERE b.model_id = m.id),
                    (SELECT count(*) FROM sessions s WHERE s.model_id = m.id),
                    (SELECT coalesce(sum(dropped), 0) FROM sessions s WHERE s.model_id = m.id),
                    (SELECT coalesce(sum(unconfirmed), 0) FROM sessions s WHERE s.model_id = m.id),
                    (SELECT max(received_ms) FROM batches b WHERE b.model_id = m.id),
                    EXISTS (SELECT 1 FROM profiles f WHERE f.model = m.name AND f.version = m.version)
                 FROM models m ORDER BY m.name, m.version, m.hash",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok(ModelSummary {
                    name: r.get(0)?,
                    version: r.get(1)?,
                    hash: r.get(2)?,
                    batches: r.get(3)?,
                    predictions: r.get(4)?,
                    sessions: r.get(5)?,
                    dropped: r.get(6)?,
                    unconfirmed: r.get(7)?,
                    last_received_ms: r.get(8)?,
                    has_profile: r.get(9)?,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        }))
    }

    fn batches(&self, page: PageRequest) -> BoxFuture<'_, Result<Page<BatchRow>, StoreError>> {
        Box::pin(self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT b.seq, b.batch_id, b.session, m.name, m.version, b.source_kind, b.source_node,
                        b.received_ms, b.records, b.rejected
                 FROM batches b JOIN models m ON m.id = b.model_id
                 WHERE b.seq > ?1 ORDER BY b.seq LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![page.after, page.limit as i64], |r| {
                let row = BatchRow {
                    seq: r.get(0)?,
                    batch_id: r.get(1)?,
                    session: r.get(2)?,
                    model: r.get(3)?,
                    version: r.get(4)?,
                    source_kind: r.get(5)?,
                    source_node: r.get(6)?,
                    received_ms: r.get(7)?,
                    records: r.get(8)?,
                    rejected: r.get(9)?,
                };
                Ok((row.seq, row))
            })?;
            Ok(Page::from_rows(rows.collect::<Result<_, _>>()?, page.limit))
        }))
    }

    fn records(
        &self,
        model: String,
        version: String,
        kind: RecordKind,
        page: PageRequest,
    ) -> BoxFuture<'_, Result<Page<serde_json::Value>, StoreError>> {
        Box::pin(self.read(move |conn| {
            let models = "(SELECT id FROM models WHERE name = ?1 AND version = ?2)";
            let args = params![model, version, page.after, page.limit as i64];
            let rows: Vec<(i64, serde_json::Value)> = match kind {
                RecordKind::Predictions => {
                    let sql = format!(
                        "SELECT p.seq, p.prediction_id, p.timestamp_ms, p.latency_us, p.engine, p.label, p.score,
                                p.value, p.top_k, l.truth_class, l.truth_value
                         FROM predictions p LEFT JOIN labels l ON l.prediction_id = p.prediction_id
                         WHERE p.model_id IN {models} AND p.seq > ?3 ORDER BY p.seq LIMIT ?4"
                    );
                    let mut stmt = conn.prepare_cached(&sql)?;
                    let rows = stmt.query_map(args, |r| {
                        let row = PredictionRow {
                            seq: r.get(0)?,
                            prediction_id: r.get(1)?,
                            timestamp_ms: r.get(2)?,
                            latency_us: r.get(3)?,
                            engine: r.get(4)?,
                            output: super::output_json(r.get(5)?, r.get(6)?, r.get(7)?, r.get(8)?),
                            truth: super::truth_json(r.get(9)?, r.get(10)?),
                        };
                        Ok((row.seq, serde_json::to_value(row).unwrap_or_default()))
                    })?;
                    rows.collect::<Result<_, _>>()?
                }
                RecordKind::Features => {
                    let sql = format!(
                        "SELECT seq, body FROM feature_summaries
                         WHERE model_id IN {models} AND seq > ?3 ORDER BY seq LIMIT ?4"
                    );
                    let mut stmt = conn.prepare_cached(&sql)?;
                    let rows = stmt.query_map(args, |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?;
                    let mut out = Vec::new();
                    for row in rows {
                        let (seq, body) = row?;
                        let mut value: serde_json::Value = serde_json::from_str(&body)
                            .map_err(|e| StoreError::Corrupt { what: "feature summary", message: e.to_string() })?;
                        value["seq"] = seq.into();
                        out.push((seq, value));
                    }
                    out
                }
                RecordKind::Errors => {
                    let sql = format!(
                        "SELECT seq, timestamp_ms, kind, message FROM errors
                         WHERE model_id IN {models} AND seq > ?3 ORDER BY seq LIMIT ?4"
                    );
                    let mut stmt = conn.prepare_cached(&sql)?;
                    let rows = stmt.query_map(args, |r| {
                        let seq: i64 = r.get(0)?;
                        Ok((
                            seq,
                            serde_json::json!({
                                "seq": seq,
                                "timestamp_ms": r.get::<_, i64>(1)?,
                                "kind": r.get::<_, String>(2)?,
                                "message": r.get::<_, String>(3)?,
                            }),
                        ))
                    })?;
                    rows.collect::<Result<_, _>>()?
                }
            };
            Ok(Page::from_rows(rows, page.limit))
        }))
    }

    fn create_key(&self, name: String, role: Role, digest: String) -> BoxFuture<'_, Result<KeyInfo, StoreError>> {
        Box::pin(self.write(move |conn| {
            let created_ms = crate::now_ms();
            conn.execute(
                "INSERT INTO api_keys (name, role, digest, created_ms) VALUES (?1, ?2, ?3, ?4)",
                params![name, role.as_str(), digest, created_ms],
            )?;
            Ok(KeyInfo { id: conn.last_insert_rowid(), name, role, created_ms, revoked_ms: None })
        }))
    }

    fn find_key(&self, digest: String) -> BoxFuture<'_, Result<Option<KeyInfo>, StoreError>> {
        Box::pin(self.read(move |conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT id, name, role, created_ms, revoked_ms FROM api_keys
                     WHERE digest = ?1 AND revoked_ms IS NULL",
                )?
                .query_row([digest], key_from_row)
                .optional()?)
        }))
    }

    fn keys(&self) -> BoxFuture<'_, Result<Vec<KeyInfo>, StoreError>> {
        Box::pin(self.read(|conn| {
            let mut stmt = conn.prepare("SELECT id, name, role, created_ms, revoked_ms FROM api_keys ORDER BY id")?;
            let rows = stmt.query_map([], key_from_row)?;
            Ok(rows.collect::<Result<_, _>>()?)
        }))
    }

    fn revoke_key(&self, id: i64) -> BoxFuture<'_, Result<bool, StoreError>> {
        Box::pin(self.write(move |conn| {
            let changed = conn.execute(
                "UPDATE api_keys SET revoked_ms = ?1 WHERE id = ?2 AND revoked_ms IS NULL",
                params![crate::now_ms(), id],
            )?;
            Ok(changed == 1)
        }))
    }

    fn model_versions(&self) -> BoxFuture<'_, Result<Vec<ModelVersion>, StoreError>> {
        Box::pin(self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT m.name, m.version, max((SELECT max(seq) FROM batches b WHERE b.model_id = m.id))
                 FROM models m GROUP BY m.name, m.version ORDER BY m.name, m.version",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok(ModelVersion { name: r.get(0)?, version: r.get(1)?, last_batch_seq: r.get(2)? })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        }))
    }

    fn window(&self, model: String, version: String, span: Span) -> BoxFuture<'_, Result<WindowData, StoreError>> {
        Box::pin(self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT body FROM rollups
                 WHERE model_id IN (SELECT id FROM models WHERE name = ?1 AND version = ?2)
                   AND bucket_ms >= ?3 AND bucket_ms < ?4",
            )?;
            let bodies = stmt
                .query_map(params![model, version, span.start_ms, span.end_ms], |r| r.get::<_, Vec<u8>>(0))?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rollup::merge_bodies(bodies.iter().map(Vec::as_slice))?.into_window())
        }))
    }

    fn compact_rollups(&self, after_id: i64) -> BoxFuture<'_, Result<Compacted, StoreError>> {
        Box::pin(self.write(move |conn| {
            let last_id: i64 = conn.query_row("SELECT coalesce(max(id), ?1) FROM rollups", [after_id], |r| r.get(0))?;
            let groups = conn
                .prepare_cached("SELECT DISTINCT model_id, bucket_ms FROM rollups WHERE id > ?1 AND id <= ?2")?
                .query_map([after_id, last_id], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))?
                .collect::<Result<Vec<_>, _>>()?;
            let mut compacted = Compacted { last_id, rows_merged: 0 };
            for (model_id, minute) in groups {
                let rows = conn
                    .prepare_cached("SELECT id, body FROM rollups WHERE model_id = ?1 AND bucket_ms = ?2")?
                    .query_map([model_id, minute], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?)))?
                    .collect::<Result<Vec<_>, _>>()?;
                if rows.len() < 2 {
                    continue;
                }
                let merged = rollup::merge_bodies(rows.iter().map(|(_, body)| body.as_slice()))?;
                conn.prepare_cached("DELETE FROM rollups WHERE model_id = ?1 AND bucket_ms = ?2")?
                    .execute([model_id, minute])?;
                insert_rollup(conn, model_id, minute, &merged)?;
                compacted.rows_merged += rows.len() as u64;
            }
            Ok(compacted)
        }))
    }

    fn alert_rules(&self) -> BoxFuture<'_, Result<Vec<(String, String)>, StoreError>> {
        Box::pin(self.read(|conn| {
            let mut stmt = conn.prepare_cached("SELECT name, body FROM alert_rules ORDER BY name")?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows.collect::<Result<_, _>>()?)
        }))
    }

    fn put_alert_rule(&self, name: String, body: String) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(self.write(move |conn| {
            conn.execute(
                "INSERT INTO alert_rules (name, body, updated_ms) VALUES (?1, ?2, ?3)
                 ON CONFLICT (name) DO UPDATE SET body = excluded.body, updated_ms = excluded.updated_ms",
                params![name, body, crate::now_ms()],
            )?;
            Ok(())
        }))
    }

    fn delete_alert_rule(&self, name: String) -> BoxFuture<'_, Result<bool, StoreError>> {
        Box::pin(self.write(move |conn| Ok(conn.execute("DELETE FROM alert_rules WHERE name = ?1", [name])? == 1)))
    }

    fn fire_alert(&self, alert: NewAlert, webhooks: Vec<String>) -> BoxFuture<'_, Result<Option<i64>, StoreError>> {
        Box::pin(self.write(move |conn| {
            let inserted = conn.execute(
                "INSERT INTO alerts (rule, model, version, subject, metric, severity, value, threshold, message,
                                     window_start_ms, started_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) ON CONFLICT DO NOTHING",
                params![
                    alert.rule,
                    alert.model,
                    alert.version,
                    alert.subject,
                    alert.metric,
                    alert.severity,
                    alert.value,
                    alert.threshold,
                    alert.message,
                    alert.window_start_ms,
                    alert.started_ms
                ],
            )?;
            if inserted == 0 {
                return Ok(None);
            }
            let id = conn.last_insert_rowid();
            queue_deliveries(conn, id, AlertState::Firing, &webhooks, crate::now_ms())?;
            Ok(Some(id))
        }))
    }

    fn resolve_alert(
        &self,
        id: i64,
        resolved_ms: i64,
        webhooks: Vec<String>,
    ) -> BoxFuture<'_, Result<bool, StoreError>> {
        Box::pin(self.write(move |conn| {
            let changed = conn.execute(
                "UPDATE alerts SET resolved_ms = ?1 WHERE id = ?2 AND resolved_ms IS NULL",
                params![resolved_ms, id],
            )?;
            if changed == 1 {
                queue_deliveries(conn, id, AlertState::Resolved, &webhooks, crate::now_ms())?;
            }
            Ok(changed == 1)
        }))
    }

    fn alerts(&self, query: AlertQuery) -> BoxFuture<'_, Result<Vec<AlertRow>, StoreError>> {
        Box::pin(self.read(move |conn| {
            let filter = "FROM alerts a WHERE (?1 IS NULL OR a.model = ?1) AND (?2 = 0 OR a.resolved_ms IS NULL)
                          ORDER BY a.id DESC LIMIT ?3";
            let args = params![query.model, query.firing_only, super::clamp(query.limit as u64)];
            let mut stmt = conn.prepare_cached(&format!("SELECT {} {filter}", super::ALERT_COLUMNS))?;
            let mut alerts = stmt.query_map(args, alert_from_row)?.collect::<Result<Vec<_>, _>>()?;
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {} FROM deliveries d WHERE d.alert_id IN (SELECT a.id {filter}) ORDER BY d.id",
                super::DELIVERY_COLUMNS
            ))?;
            let deliveries = stmt
                .query_map(args, |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        super::delivery_row((
                            r.get(1)?,
                            r.get(2)?,
                            r.get(3)?,
                            r.get(4)?,
                            r.get(5)?,
                            r.get(6)?,
                            r.get(7)?,
                            r.get(8)?,
                        )),
                    ))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            super::attach(&mut alerts, deliveries);
            Ok(alerts)
        }))
    }

    fn claim_deliveries(
        &self,
        now_ms: i64,
        lease_ms: i64,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<Due>, StoreError>> {
        Box::pin(self.write(move |conn| {
            let claimed = conn
                .prepare_cached(
                    "UPDATE deliveries SET next_attempt_ms = ?1 + ?2
                     WHERE id IN (SELECT id FROM deliveries WHERE state = 'pending' AND next_attempt_ms <= ?1
                                  ORDER BY id LIMIT ?3)
                     RETURNING id, alert_id, event, url, attempts",
                )?
                .query_map(params![now_ms, lease_ms, limit as i64], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, i64>(4)?,
                    ))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            let mut due = Vec::with_capacity(claimed.len());
            let mut stmt =
                conn.prepare_cached(&format!("SELECT {} FROM alerts a WHERE a.id = ?1", super::ALERT_COLUMNS))?;
            for (id, alert_id, event, url, attempts) in claimed {
                let alert = stmt.query_row([alert_id], alert_from_row)?;
                due.push(Due { id, event: AlertState::parse(&event), url, attempts, alert });
            }
            due.sort_by_key(|d| d.id);
            Ok(due)
        }))
    }

    fn finish_delivery(&self, id: i64, attempt: Attempt) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(self.write(move |conn| {
            let (state, delivered_ms, next_attempt_ms, error) = super::attempt_columns(&attempt);
            conn.execute(
                "UPDATE deliveries SET state = ?2, attempts = attempts + 1,
                        delivered_ms = coalesce(?3, delivered_ms), next_attempt_ms = coalesce(?4, next_attempt_ms),
                        last_error = ?5
                 WHERE id = ?1",
                params![id, state, delivered_ms, next_attempt_ms, error],
            )?;
            Ok(())
        }))
    }
}

fn alert_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AlertRow> {
    Ok(super::alert_row((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
        r.get(9)?,
        r.get(10)?,
        r.get(11)?,
        r.get(12)?,
    )))
}

fn queue_deliveries(
    conn: &Connection,
    alert_id: i64,
    event: AlertState,
    webhooks: &[String],
    // Due at once: deliveries go out now, whatever time the alert is about.
    now_ms: i64,
) -> Result<(), StoreError> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO deliveries (alert_id, event, url, state, attempts, next_attempt_ms)
         VALUES (?1, ?2, ?3, 'pending', 0, ?4)",
    )?;
    for url in webhooks {
        stmt.execute(params![alert_id, event.as_str(), url, now_ms])?;
    }
    Ok(())
}
