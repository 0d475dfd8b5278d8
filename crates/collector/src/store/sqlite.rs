//! SQLite: one file in WAL mode, `synchronous = FULL`, for a single collector process.
//!
//! All writes go through one writer thread, which takes every job waiting in its queue and commits
//! them in one transaction (group commit: one fsync for many batches), each job inside its own
//! savepoint so one failing job does not spoil the others. A job's caller hears back only after the
//! commit, so an acknowledged batch is durable. Reads use their own connections on the blocking
//! pool and never wait for the writer (WAL).

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, params_from_iter};
use tokio::sync::{mpsc, oneshot};

use super::conn::{Arg, Conn, Dialect, Row, Sql, Value, ready};
use super::{
    BatchRow, BoxFuture, Compacted, Incoming, Ingested, ModelIds, ModelLabels, ModelSummary, ModelVersion, NewKey,
    Page, PageRequest, PredictionModels, RecordKind, Store, StoreError, ops,
};
use crate::alerts::{AlertQuery, AlertRow, Attempt, Due, NewAlert};
use crate::keys::{KeyInfo, Role, Scope};
use crate::monitor::{Span, WindowData};

/// Jobs committed in one transaction at most.
const MAX_GROUP: usize = 256;
/// Read connections open at once (each with its page cache); more reads wait for one.
const READERS: usize = 8;

/// Called after the group's commit with its outcome.
type Finish = Box<dyn FnOnce(Result<(), &rusqlite::Error>) + Send>;
/// Runs inside the group's transaction; says whether it succeeded (else its savepoint is undone).
type Job = Box<dyn FnOnce(&Connection) -> (bool, Finish) + Send>;

#[derive(Debug)]
pub(super) struct SqliteStore {
    path: PathBuf,
    jobs: mpsc::Sender<Job>,
    readers: std::sync::Arc<Mutex<Vec<Connection>>>,
    reading: std::sync::Arc<tokio::sync::Semaphore>,
    model_ids: std::sync::Arc<ModelIds>,
}

fn connect(path: &Path) -> Result<Connection, rusqlite::Error> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    // 64 MiB of page cache: the prediction-id index takes random inserts.
    conn.pragma_update(None, "cache_size", -65536)?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    ready(ops::migrate(&*tx))?;
    tx.commit()?;
    ready(ops::prepare_all(&*conn))?;
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
        Ok(SqliteStore {
            path,
            jobs,
            readers: Default::default(),
            reading: std::sync::Arc::new(tokio::sync::Semaphore::new(READERS)),
            model_ids: Default::default(),
        })
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

    /// Runs `f` on a read connection, on the blocking pool, once one of the [`READERS`] is free.
    async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let reader = self
            .reading
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| StoreError::Corrupt { what: "reader pool", message: e.to_string() })?;
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
            if let Ok(mut r) = readers.lock() {
                r.push(conn);
            }
            drop(reader);
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

impl Conn for Connection {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    async fn batch(&self, script: &str) -> Result<(), StoreError> {
        Ok(self.execute_batch(script)?)
    }

    async fn prepare(&self, sql: &Sql) -> Result<(), StoreError> {
        Connection::prepare(self, &sql.text(Dialect::Sqlite))?;
        Ok(())
    }

    async fn execute(&self, sql: &Sql, args: &[Arg<'_>]) -> Result<u64, StoreError> {
        let mut stmt = self.prepare_cached(&sql.text(Dialect::Sqlite))?;
        Ok(stmt.execute(params_from_iter(args))? as u64)
    }

    async fn query(&self, sql: &Sql, args: &[Arg<'_>]) -> Result<Vec<Row>, StoreError> {
        let mut stmt = self.prepare_cached(&sql.text(Dialect::Sqlite))?;
        let columns = stmt.column_count();
        let mut rows = stmt.query(params_from_iter(args))?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            out.push(Row((0..columns).map(|i| value(row.get_ref(i)?)).collect::<Result<_, _>>()?));
        }
        Ok(out)
    }
}

fn value(v: ValueRef<'_>) -> Result<Value, StoreError> {
    Ok(match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(v) => Value::Int(v),
        ValueRef::Real(v) => Value::Real(v),
        ValueRef::Text(v) => Value::Text(
            String::from_utf8(v.to_vec())
                .map_err(|e| StoreError::Corrupt { what: "text column", message: e.to_string() })?,
        ),
        ValueRef::Blob(v) => Value::Blob(v.to_vec()),
    })
}

impl rusqlite::ToSql for Arg<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        fn list(list: &impl serde::Serialize) -> rusqlite::Result<ToSqlOutput<'static>> {
            serde_json::to_string(list)
                .map(ToSqlOutput::from)
                .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
        }
        Ok(match *self {
            Arg::Int(v) => ToSqlOutput::from(v),
            Arg::OptInt(v) => v.map_or(ToSqlOutput::from(rusqlite::types::Null), ToSqlOutput::from),
            Arg::OptReal(v) => v.map_or(ToSqlOutput::from(rusqlite::types::Null), ToSqlOutput::from),
            Arg::Text(v) => ToSqlOutput::from(v),
            Arg::OptText(v) => v.map_or(ToSqlOutput::from(rusqlite::types::Null), ToSqlOutput::from),
            Arg::Blob(v) => ToSqlOutput::from(v),
            Arg::Bool(v) => ToSqlOutput::from(i64::from(v)),
            // Lists go in as JSON arrays, read by `json_each`.
            Arg::Texts(v) => list(&v)?,
            Arg::Ints(v) => list(&v)?,
        })
    }
}

impl Store for SqliteStore {
    fn ingest(&self, incoming: Incoming) -> BoxFuture<'_, Result<Ingested, StoreError>> {
        let cached = self.model_ids.get(&incoming.batch.model);
        Box::pin(async move {
            let model = incoming.batch.model.clone();
            let (ingested, model_id) = self
                .write(move |conn| {
                    ready(async {
                        let model_id = match cached {
                            Some(id) => id,
                            None => {
                                let (key, most) = (incoming.key_id, incoming.max_models);
                                match ops::model_id(conn, &incoming.batch.model, key, most).await? {
                                    Some(id) => id,
                                    None => return Ok((Ingested::ModelLimit, None)),
                                }
                            }
                        };
                        Ok((ops::ingest(conn, &incoming, model_id, crate::now_ms()).await?, Some(model_id)))
                    })
                })
                .await?;
            // Only now is the model row surely committed.
            if let Some(model_id) = model_id {
                self.model_ids.insert(model, model_id);
            }
            Ok(ingested)
        })
    }

    fn put_labels(&self, labels: ModelLabels) -> BoxFuture<'_, Result<u64, StoreError>> {
        Box::pin(self.write(move |conn| ready(ops::put_labels(conn, labels, crate::now_ms()))))
    }

    fn put_profile(&self, model: String, version: String, body: String) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(self.write(move |conn| ready(ops::put_profile(conn, &model, &version, &body, crate::now_ms()))))
    }

    fn profile(&self, model: String, version: String) -> BoxFuture<'_, Result<Option<String>, StoreError>> {
        Box::pin(self.read(move |conn| ready(ops::profile(conn, &model, &version))))
    }

    fn models(&self) -> BoxFuture<'_, Result<Vec<ModelSummary>, StoreError>> {
        Box::pin(self.read(|conn| ready(ops::models(conn))))
    }

    fn batches(&self, page: PageRequest) -> BoxFuture<'_, Result<Page<BatchRow>, StoreError>> {
        Box::pin(self.read(move |conn| ready(ops::batches(conn, page))))
    }

    fn records(
        &self,
        model: String,
        version: String,
        kind: RecordKind,
        page: PageRequest,
    ) -> BoxFuture<'_, Result<Page<serde_json::Value>, StoreError>> {
        Box::pin(self.read(move |conn| ready(ops::records(conn, &model, &version, kind, page))))
    }

    fn create_key(
        &self,
        name: String,
        role: Role,
        scope: Scope,
        digest: String,
    ) -> BoxFuture<'_, Result<KeyInfo, StoreError>> {
        Box::pin(self.write(move |conn| ready(ops::create_key(conn, name, role, scope, &digest, crate::now_ms()))))
    }

    fn create_first_keys(&self, keys: Vec<NewKey>) -> BoxFuture<'_, Result<Option<Vec<KeyInfo>>, StoreError>> {
        // One writer: the check and the inserts are one job.
        Box::pin(self.write(move |conn| ready(ops::create_first_keys(conn, keys, crate::now_ms()))))
    }

    fn prediction_models(&self, ids: Vec<String>) -> BoxFuture<'_, Result<PredictionModels, StoreError>> {
        Box::pin(self.read(move |conn| ready(ops::prediction_models(conn, &ids))))
    }

    fn find_key(&self, digest: String) -> BoxFuture<'_, Result<Option<KeyInfo>, StoreError>> {
        Box::pin(self.read(move |conn| ready(ops::find_key(conn, &digest))))
    }

    fn keys(&self) -> BoxFuture<'_, Result<Vec<KeyInfo>, StoreError>> {
        Box::pin(self.read(|conn| ready(ops::keys(conn))))
    }

    fn revoke_key(&self, id: i64) -> BoxFuture<'_, Result<bool, StoreError>> {
        Box::pin(self.write(move |conn| ready(ops::revoke_key(conn, id, crate::now_ms()))))
    }

    fn model_versions(&self) -> BoxFuture<'_, Result<Vec<ModelVersion>, StoreError>> {
        Box::pin(self.read(|conn| ready(ops::model_versions(conn))))
    }

    fn window(&self, model: String, version: String, span: Span) -> BoxFuture<'_, Result<WindowData, StoreError>> {
        Box::pin(self.read(move |conn| ready(ops::window(conn, &model, &version, span))))
    }

    /// One job: the writer is the only one touching rollups' ids, so the pass needs no locks.
    fn compact_rollups(&self, after_id: i64) -> BoxFuture<'_, Result<Compacted, StoreError>> {
        Box::pin(self.write(move |conn| {
            ready(async {
                let (last_id, minutes) = ops::rollup_minutes(conn, after_id).await?;
                let mut compacted = Compacted { last_id, rows_merged: 0 };
                for (model_id, minute) in minutes {
                    compacted.rows_merged += ops::compact_minute(conn, model_id, minute).await?;
                }
                Ok(compacted)
            })
        }))
    }

    fn alert_rules(&self) -> BoxFuture<'_, Result<Vec<(String, String)>, StoreError>> {
        Box::pin(self.read(|conn| ready(ops::alert_rules(conn))))
    }

    fn put_alert_rule(&self, name: String, body: String) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(self.write(move |conn| ready(ops::put_alert_rule(conn, &name, &body, crate::now_ms()))))
    }

    fn delete_alert_rule(&self, name: String) -> BoxFuture<'_, Result<bool, StoreError>> {
        Box::pin(self.write(move |conn| ready(ops::delete_alert_rule(conn, &name))))
    }

    fn fire_alert(&self, alert: NewAlert, webhooks: Vec<String>) -> BoxFuture<'_, Result<Option<i64>, StoreError>> {
        Box::pin(self.write(move |conn| ready(ops::fire_alert(conn, &alert, &webhooks, crate::now_ms()))))
    }

    fn resolve_alert(
        &self,
        id: i64,
        resolved_ms: i64,
        webhooks: Vec<String>,
    ) -> BoxFuture<'_, Result<bool, StoreError>> {
        Box::pin(self.write(move |conn| ready(ops::resolve_alert(conn, id, resolved_ms, &webhooks, crate::now_ms()))))
    }

    fn alerts(&self, query: AlertQuery) -> BoxFuture<'_, Result<Vec<AlertRow>, StoreError>> {
        Box::pin(self.read(move |conn| ready(ops::alerts(conn, &query))))
    }

    fn claim_deliveries(
        &self,
        now_ms: i64,
        lease_ms: i64,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<Due>, StoreError>> {
        Box::pin(self.write(move |conn| ready(ops::claim_deliveries(conn, now_ms, lease_ms, limit))))
    }

    fn finish_delivery(&self, delivery: &Due, attempt: Attempt) -> BoxFuture<'_, Result<bool, StoreError>> {
        let (id, lease) = (delivery.id, delivery.lease_until_ms);
        Box::pin(self.write(move |conn| ready(ops::finish_delivery(conn, id, lease, &attempt))))
    }
}

#[cfg(test)]
mod tests {
    use rusqlite::OptionalExtension;

    use super::super::{MIGRATIONS, sql};
    use super::*;

    /// A database an older collector made keeps its rows, and its batch sequence, through the
    /// later migrations (SQLite rebuilds tables for some of them).
    #[test]
    fn a_version_3_database_keeps_its_rows_sequence_and_labels_through_later_migrations() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_ms INTEGER NOT NULL)",
        )
        .unwrap();
        for m in MIGRATIONS.iter().filter(|m| m.version <= 3) {
            conn.execute_batch(m.sqlite).unwrap();
            conn.execute("INSERT INTO schema_migrations VALUES (?1, ?2, 0)", (m.version, m.name)).unwrap();
        }
        conn.execute_batch(
            "INSERT INTO models (id, name, version, hash) VALUES (1, 'a', '1', 'h'), (2, 'b', '1', 'h');
             INSERT INTO batches (seq, batch_id, session, model_id, source_kind, source_node, sdk_version, key_id,
                                  received_ms, records, rejected, predictions)
             VALUES (7, 'b-1', 's', 1, 'native', 'n', '0', 3, 0, 1, 0, 1);
             INSERT INTO sessions (session, model_id, dropped, unconfirmed) VALUES ('s', 1, 5, 6);
             INSERT INTO predictions (batch_seq, model_id, prediction_id, timestamp_ms, latency_us, engine)
             VALUES (7, 2, 'p', 0, 1, 'cpu'), (7, 1, 'p', 0, 1, 'cpu');
             INSERT INTO labels (prediction_id, timestamp_ms, truth_class, received_ms)
             VALUES ('p', 0, 'x', 0), ('ahead', 0, 'y', 0);",
        )
        .unwrap();
        migrate(&mut conn).unwrap();

        let insert = sql::INSERT_BATCH.text(Dialect::Sqlite);
        let batch = |model_id: i64| -> Option<i64> {
            let values = rusqlite::params!["b-1", "s", model_id, "native", "n", "0", 3, 0, 1, 0, 1];
            conn.query_row(&insert, values, |r| r.get(0)).optional().unwrap()
        };
        assert_eq!(batch(1), None, "model a's batch b-1 is still found: a retry is a duplicate");
        // (A conflicting insert may take a sequence number: gaps are fine, going back is not.)
        let seq = batch(2).expect("model b has its own ids");
        assert!(seq > 7, "the sequence carries on after 7, not from {seq}");
        let session: (i64, i64, i64) = conn
            .query_row("SELECT model_id, dropped, unconfirmed FROM sessions WHERE session = 's'", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .unwrap();
        assert_eq!(session, (1, 5, 6));
        let key: i64 = conn.query_row("SELECT key_id FROM batches WHERE seq = 7", [], |r| r.get(0)).unwrap();
        assert_eq!(key, 3);
        let labels: Vec<(String, String)> = conn
            .prepare("SELECT model, prediction_id FROM labels ORDER BY prediction_id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let expected = [("", "ahead"), ("b", "p")].map(|(m, p)| (m.to_owned(), p.to_owned()));
        assert_eq!(labels, expected, "a label takes the model of the oldest prediction with its id");
    }
}
