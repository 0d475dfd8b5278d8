//! PostgreSQL: for several collector processes behind a load balancer, sharing one database.
//!
//! Each batch is one transaction. Exactly-once across processes rests on the unique `batch_id`: a
//! second process inserting the same id waits for the first one's transaction, then finds the
//! conflict and stores nothing (`ON CONFLICT DO NOTHING RETURNING` gives no row). A batch's
//! predictions go in with one statement. PostgreSQL's own group commit merges the fsyncs of
//! concurrent transactions.

use std::error::Error;

use deadpool_postgres::{GenericClient, Pool, PoolConfig, Runtime};
use tokio_postgres::NoTls;
use tokio_postgres::config::SslMode;
use tokio_postgres::types::private::BytesMut;
use tokio_postgres::types::{IsNull, ToSql, Type};

use super::conn::{Arg, Conn, Dialect, Row, Sql, Value};
use super::{
    BatchRow, BoxFuture, Compacted, Incoming, Ingested, ModelIds, ModelLabels, ModelSummary, ModelVersion, NewKey,
    Page, PageRequest, PredictionModels, RecordKind, Store, StoreError, ops,
};
use crate::alerts::{AlertQuery, AlertRow, Attempt, Due, NewAlert};
use crate::config::Database;
use crate::keys::{KeyInfo, Role, Scope};
use crate::monitor::{Span, WindowData};

const MIGRATION_LOCK: i64 = 0x5e47_a407;
const FIRST_KEYS_LOCK: i64 = 0x5e47_a408;

pub(super) struct PostgresStore {
    pool: Pool,
    model_ids: ModelIds,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore").field("pool", &self.pool.status()).finish_non_exhaustive()
    }
}

/// An error and its causes, `: `-separated: a TLS failure says which certificate check failed.
fn with_causes(e: &dyn Error) -> String {
    let mut message = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !message.contains(&text) {
            message = format!("{message}: {text}");
        }
        cause = c.source();
    }
    message
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
        // `sslmode=require`: TLS with the server's certificate and name verified (stricter than
        // libpq's `require`, which checks neither). Otherwise the connection is plain.
        let ssl_mode = url.parse::<tokio_postgres::Config>().map_err(|e| open_error(e.to_string()))?.get_ssl_mode();
        let pool = match ssl_mode {
            SslMode::Require => {
                let tls = tls::client_config().map_err(|e| open_error(e.to_string()))?;
                config.create_pool(Some(Runtime::Tokio1), tokio_postgres_rustls::MakeRustlsConnect::new(tls))
            }
            _ => config.create_pool(Some(Runtime::Tokio1), NoTls),
        }
        .map_err(|e| open_error(e.to_string()))?;
        let mut client = pool.get().await.map_err(|e| open_error(with_causes(&e)))?;
        let tx = client.transaction().await?;
        // Collector processes starting at once migrate one after another.
        GenericClient::execute(&tx, "SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).await?;
        ops::migrate(&tx).await?;
        ops::prepare_all(&tx).await?;
        tx.commit().await?;
        drop(client);
        Ok(PostgresStore { pool, model_ids: ModelIds::default() })
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool.get().await.map_err(pool_error)
    }

    /// Runs `f` on a pooled connection, each statement committed on its own.
    async fn with_client<T>(
        &self,
        f: impl AsyncFnOnce(&deadpool_postgres::Client) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        f(&self.client().await?).await
    }
}

/// Runs `f` in one transaction, committed if it succeeds (dropped, so rolled back, if not).
macro_rules! transaction {
    ($store:expr, |$tx:ident| $body:expr) => {{
        let mut client = $store.client().await?;
        let $tx = client.transaction().await?;
        let out = $body.await?;
        $tx.commit().await?;
        Ok(out)
    }};
}

impl Store for PostgresStore {
    fn ingest(&self, incoming: Incoming) -> BoxFuture<'_, Result<Ingested, StoreError>> {
        Box::pin(async move {
            let now_ms = crate::now_ms();
            let mut client = self.client().await?;
            // The model row is committed on its own, before the batch: it is needed whether or not
            // the batch is new.
            let model_id = match self.model_ids.get(&incoming.batch.model) {
                Some(id) => id,
                None => {
                    let (key, most) = (incoming.key_id, incoming.max_models);
                    let Some(id) = ops::model_id(&client, &incoming.batch.model, key, most).await? else {
                        return Ok(Ingested::ModelLimit);
                    };
                    self.model_ids.insert(incoming.batch.model.clone(), id);
                    id
                }
            };
            let tx = client.transaction().await?;
            let ingested = ops::ingest(&tx, &incoming, model_id, now_ms).await?;
            tx.commit().await?;
            Ok(ingested)
        })
    }

    fn put_labels(&self, labels: ModelLabels) -> BoxFuture<'_, Result<u64, StoreError>> {
        Box::pin(async move { transaction!(self, |tx| ops::put_labels(&tx, labels, crate::now_ms())) })
    }

    fn put_profile(&self, model: String, version: String, body: String) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(self.with_client(async move |c| ops::put_profile(c, &model, &version, &body, crate::now_ms()).await))
    }

    fn profile(&self, model: String, version: String) -> BoxFuture<'_, Result<Option<String>, StoreError>> {
        Box::pin(self.with_client(async move |c| ops::profile(c, &model, &version).await))
    }

    fn models(&self) -> BoxFuture<'_, Result<Vec<ModelSummary>, StoreError>> {
        Box::pin(self.with_client(async |c| ops::models(c).await))
    }

    fn batches(&self, page: PageRequest) -> BoxFuture<'_, Result<Page<BatchRow>, StoreError>> {
        Box::pin(self.with_client(async move |c| ops::batches(c, page).await))
    }

    fn records(
        &self,
        model: String,
        version: String,
        kind: RecordKind,
        page: PageRequest,
    ) -> BoxFuture<'_, Result<Page<serde_json::Value>, StoreError>> {
        Box::pin(self.with_client(async move |c| ops::records(c, &model, &version, kind, page).await))
    }

    fn create_key(
        &self,
        name: String,
        role: Role,
        scope: Scope,
        digest: String,
    ) -> BoxFuture<'_, Result<KeyInfo, StoreError>> {
        Box::pin(self.with_client(async move |c| ops::create_key(c, name, role, scope, &digest, crate::now_ms()).await))
    }

    fn create_first_keys(&self, keys: Vec<NewKey>) -> BoxFuture<'_, Result<Option<Vec<KeyInfo>>, StoreError>> {
        Box::pin(async move {
            transaction!(self, |tx| async {
                // Processes starting at once on an empty database: one creates the keys, the
                // others then find them.
                GenericClient::execute(&tx, "SELECT pg_advisory_xact_lock($1)", &[&FIRST_KEYS_LOCK]).await?;
                ops::create_first_keys(&tx, keys, crate::now_ms()).await
            })
        })
    }

    fn prediction_models(&self, ids: Vec<String>) -> BoxFuture<'_, Result<PredictionModels, StoreError>> {
        Box::pin(self.with_client(async move |c| ops::prediction_models(c, &ids).await))
    }

    fn find_key(&self, digest: String) -> BoxFuture<'_, Result<Option<KeyInfo>, StoreError>> {
        Box::pin(self.with_client(async move |c| ops::find_key(c, &digest).await))
    }

    fn keys(&self) -> BoxFuture<'_, Result<Vec<KeyInfo>, StoreError>> {
        Box::pin(self.with_client(async |c| ops::keys(c).await))
    }

    fn revoke_key(&self, id: i64) -> BoxFuture<'_, Result<bool, StoreError>> {
        Box::pin(self.with_client(async move |c| ops::revoke_key(c, id, crate::now_ms()).await))
    }

    fn model_versions(&self) -> BoxFuture<'_, Result<Vec<ModelVersion>, StoreError>> {
        Box::pin(self.with_client(async |c| ops::model_versions(c).await))
    }

    fn window(&self, model: String, version: String, span: Span) -> BoxFuture<'_, Result<WindowData, StoreError>> {
        Box::pin(self.with_client(async move |c| ops::window(c, &model, &version, span).await))
    }

    /// Each minute is compacted in its own transaction, its rows locked, so concurrent ingest (new
    /// rows) and another process compacting the same minute are safe. A row committed late with an
    /// id below `last_id` stays a row of its own until its minute is touched again: reads merge all
    /// rows, so that costs only a little read time.
    fn compact_rollups(&self, after_id: i64) -> BoxFuture<'_, Result<Compacted, StoreError>> {
        Box::pin(async move {
            let mut client = self.client().await?;
            let (last_id, minutes) = ops::rollup_minutes(&client, after_id).await?;
            let mut compacted = Compacted { last_id, rows_merged: 0 };
            for (model_id, minute) in minutes {
                let tx = client.transaction().await?;
                compacted.rows_merged += ops::compact_minute(&tx, model_id, minute).await?;
                tx.commit().await?;
            }
            Ok(compacted)
        })
    }

    fn alert_rules(&self) -> BoxFuture<'_, Result<Vec<(String, String)>, StoreError>> {
        Box::pin(self.with_client(async |c| ops::alert_rules(c).await))
    }

    fn put_alert_rule(&self, name: String, body: String) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(self.with_client(async move |c| ops::put_alert_rule(c, &name, &body, crate::now_ms()).await))
    }

    fn delete_alert_rule(&self, name: String) -> BoxFuture<'_, Result<bool, StoreError>> {
        Box::pin(self.with_client(async move |c| ops::delete_alert_rule(c, &name).await))
    }

    fn fire_alert(&self, alert: NewAlert, webhooks: Vec<String>) -> BoxFuture<'_, Result<Option<i64>, StoreError>> {
        Box::pin(async move { transaction!(self, |tx| ops::fire_alert(&tx, &alert, &webhooks, crate::now_ms())) })
    }

    fn resolve_alert(
        &self,
        id: i64,
        resolved_ms: i64,
        webhooks: Vec<String>,
    ) -> BoxFuture<'_, Result<bool, StoreError>> {
        Box::pin(async move {
            transaction!(self, |tx| ops::resolve_alert(&tx, id, resolved_ms, &webhooks, crate::now_ms()))
        })
    }

    fn alerts(&self, query: AlertQuery) -> BoxFuture<'_, Result<Vec<AlertRow>, StoreError>> {
        Box::pin(self.with_client(async move |c| ops::alerts(c, &query).await))
    }

    fn claim_deliveries(
        &self,
        now_ms: i64,
        lease_ms: i64,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<Due>, StoreError>> {
        Box::pin(self.with_client(async move |c| ops::claim_deliveries(c, now_ms, lease_ms, limit).await))
    }

    fn finish_delivery(&self, delivery: &Due, attempt: Attempt) -> BoxFuture<'_, Result<bool, StoreError>> {
        let (id, lease) = (delivery.id, delivery.lease_until_ms);
        Box::pin(self.with_client(async move |c| ops::finish_delivery(c, id, lease, &attempt).await))
    }
}

/// A pooled client and a transaction run statements the same way (through `GenericClient`),
/// each prepared once per connection. A blanket impl over `GenericClient` would overlap SQLite's
/// `Connection` impl in the compiler's eyes, so the two types are listed.
macro_rules! postgres_conn {
    ($($client:ty),+) => {$(
        impl Conn for $client {
            fn dialect(&self) -> Dialect {
                Dialect::Postgres
            }

            async fn prepare(&self, sql: &Sql) -> Result<(), StoreError> {
                GenericClient::prepare(self, &sql.text(Dialect::Postgres)).await?;
                Ok(())
            }

            async fn batch(&self, script: &str) -> Result<(), StoreError> {
                Ok(self.batch_execute(script).await?)
            }

            async fn execute(&self, sql: &Sql, args: &[Arg<'_>]) -> Result<u64, StoreError> {
                let stmt = self.prepare_cached(&sql.text(Dialect::Postgres)).await?;
                Ok(GenericClient::execute(self, &stmt, &params(args)).await?)
            }

            async fn query(&self, sql: &Sql, args: &[Arg<'_>]) -> Result<Vec<Row>, StoreError> {
                let stmt = self.prepare_cached(&sql.text(Dialect::Postgres)).await?;
                GenericClient::query(self, &stmt, &params(args)).await?.iter().map(row).collect()
            }
        }
    )+};
}

postgres_conn!(deadpool_postgres::Client, deadpool_postgres::Transaction<'_>);

fn params<'a>(args: &'a [Arg<'_>]) -> Vec<&'a (dyn ToSql + Sync)> {
    args.iter().map(|a| a as &(dyn ToSql + Sync)).collect()
}

/// A row's columns as plain values, by their PostgreSQL types (those the schema uses).
fn row(r: &tokio_postgres::Row) -> Result<Row, StoreError> {
    let mut values = Vec::with_capacity(r.len());
    for (i, column) in r.columns().iter().enumerate() {
        let ty = column.type_();
        let value = if *ty == Type::INT8 {
            r.try_get::<_, Option<i64>>(i)?.map_or(Value::Null, Value::Int)
        } else if *ty == Type::INT4 {
            r.try_get::<_, Option<i32>>(i)?.map_or(Value::Null, |v| Value::Int(v.into()))
        } else if *ty == Type::FLOAT8 {
            r.try_get::<_, Option<f64>>(i)?.map_or(Value::Null, Value::Real)
        } else if *ty == Type::TEXT {
            r.try_get::<_, Option<String>>(i)?.map_or(Value::Null, Value::Text)
        } else if *ty == Type::BYTEA {
            r.try_get::<_, Option<Vec<u8>>>(i)?.map_or(Value::Null, Value::Blob)
        } else if *ty == Type::BOOL {
            r.try_get::<_, Option<bool>>(i)?.map_or(Value::Null, Value::Bool)
        } else {
            return Err(StoreError::Corrupt {
                what: "column",
                message: format!("column {} has type {ty}, which the store does not read", column.name()),
            });
        };
        values.push(value);
    }
    Ok(Row(values))
}

/// Each value as its own Rust type would bind; lists as PostgreSQL arrays.
impl ToSql for Arg<'_> {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        match self {
            Arg::Int(v) => v.to_sql(ty, out),
            Arg::OptInt(v) => v.to_sql(ty, out),
            Arg::OptReal(v) => v.to_sql(ty, out),
            Arg::Text(v) => v.to_sql(ty, out),
            Arg::OptText(v) => v.to_sql(ty, out),
            Arg::Blob(v) => v.to_sql(ty, out),
            Arg::Bool(v) => v.to_sql(ty, out),
            Arg::Texts(v) => v.to_sql(ty, out),
            Arg::Ints(v) => v.to_sql(ty, out),
        }
    }

    /// Checked per value by [`ToSql::to_sql_checked`].
    fn accepts(_: &Type) -> bool {
        true
    }

    fn to_sql_checked(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        match self {
            Arg::Int(v) => v.to_sql_checked(ty, out),
            Arg::OptInt(v) => v.to_sql_checked(ty, out),
            Arg::OptReal(v) => v.to_sql_checked(ty, out),
            Arg::Text(v) => v.to_sql_checked(ty, out),
            Arg::OptText(v) => v.to_sql_checked(ty, out),
            Arg::Blob(v) => v.to_sql_checked(ty, out),
            Arg::Bool(v) => v.to_sql_checked(ty, out),
            Arg::Texts(v) => v.to_sql_checked(ty, out),
            Arg::Ints(v) => v.to_sql_checked(ty, out),
        }
    }
}
