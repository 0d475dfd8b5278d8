//! The store's operations, written once for both databases. Each runs on whatever connection or
//! transaction its dialect hands it (`sqlite.rs`, `postgres.rs` decide where transactions begin
//! and commit); what differs between the databases is a statement pair in `sql.rs`.

use std::collections::HashMap;

use telemetry::{Label, Truth};

use super::conn::{Arg, Conn, ConnExt, Dialect, Sql};
use super::writes::{self, BatchRows, LabelRows};
use super::{
    BatchRow, Incoming, Ingested, MIGRATIONS, ModelLabels, ModelSummary, ModelVersion, NewKey, Page, PageRequest,
    PredictionModels, RecordKind, StoreError, rows, sql,
};
use crate::alerts::{AlertQuery, AlertRow, AlertState, Attempt, Due, NewAlert};
use crate::keys::{KeyInfo, Role, Scope};
use crate::monitor::rollup::{self, Predicted, Rollup};
use crate::monitor::{Span, WindowData};

type Result<T> = std::result::Result<T, StoreError>;

/// Brings the schema up to date, inside the caller's transaction (which holds whatever lock
/// keeps two processes from migrating at once).
pub(super) async fn migrate(c: &impl Conn) -> Result<()> {
    c.batch(match c.dialect() {
        Dialect::Sqlite => {
            "CREATE TABLE IF NOT EXISTS schema_migrations (
            version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_ms INTEGER NOT NULL)"
        }
        Dialect::Postgres => {
            "CREATE TABLE IF NOT EXISTS schema_migrations (
            version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_ms BIGINT NOT NULL)"
        }
    })
    .await?;
    let current = c.query_one(&sql::SCHEMA_VERSION, &[]).await?.int(0)?;
    let known = MIGRATIONS.last().map_or(0, |m| m.version);
    if current > known {
        return Err(StoreError::SchemaTooNew { found: current, known });
    }
    for m in MIGRATIONS.iter().filter(|m| m.version > current) {
        tracing::info!(version = m.version, name = m.name, dialect = ?c.dialect(), "applying migration");
        c.batch(match c.dialect() {
            Dialect::Sqlite => m.sqlite,
            Dialect::Postgres => m.postgres,
        })
        .await?;
        c.execute(&sql::RECORD_MIGRATION, &[Arg::Int(m.version), Arg::Text(m.name), Arg::Int(crate::now_ms())]).await?;
    }
    Ok(())
}

/// Prepares every statement the store runs, so a statement that does not fit the schema fails
/// at open, not at its first use.
pub(super) async fn prepare_all(c: &impl Conn) -> Result<()> {
    for (name, statement) in sql::ALL {
        c.prepare(statement).await.map_err(|e| StoreError::Statement { name, message: e.to_string() })?;
    }
    Ok(())
}

/// The model row's id, inserting the row if it is new and `key_id` has registered fewer than
/// `max_models` (None: it has that many). Concurrent first batches of one key may pass the
/// bound by as many as are in flight: it bounds growth, it is not a quota.
pub(super) async fn model_id(
    c: &impl Conn,
    model: &telemetry::ModelRef,
    key_id: i64,
    max_models: usize,
) -> Result<Option<i64>> {
    let args = [Arg::Text(&model.name), Arg::Text(&model.version), Arg::Text(&model.hash)];
    if let Some(mut row) = c.query_opt(&sql::MODEL_ID, &args).await? {
        return Ok(Some(row.int(0)?));
    }
    let registered = c.query_one(&sql::MODELS_OF_KEY, &[Arg::Int(key_id)]).await?.int(0)?;
    if usize::try_from(registered).unwrap_or(usize::MAX) >= max_models {
        return Ok(None);
    }
    let [name, version, hash] = args;
    c.execute(&sql::INSERT_MODEL, &[name, version, hash, Arg::Int(key_id)]).await?;
    Ok(Some(c.query_one(&sql::MODEL_ID, &args).await?.int(0)?))
}

/// Stores a batch under `model_id` ([`model_id`]) at `now_ms`, or nothing if that model version
/// has its `batch_id` stored already.
pub(super) async fn ingest(c: &impl Conn, incoming: &Incoming, model_id: i64, now_ms: i64) -> Result<Ingested> {
    let Incoming { batch, rejected, key_id, .. } = incoming;
    let inserted = c
        .query_opt(
            &sql::INSERT_BATCH,
            &[
                Arg::Text(&batch.batch_id),
                Arg::Text(&batch.session),
                Arg::Int(model_id),
                Arg::Text(writes::source_kind_str(batch.source.kind)),
                Arg::Text(&batch.source.node),
                Arg::Text(&batch.source.sdk_version),
                Arg::Int(*key_id),
                Arg::Int(now_ms),
                Arg::Int(writes::clamp(batch.records.len() as u64)),
                Arg::Int(writes::clamp(*rejected)),
                Arg::Int(writes::prediction_count(batch)),
            ],
        )
        .await?;
    let Some(mut inserted) = inserted else { return Ok(Ingested::Duplicate) };
    let batch_seq = inserted.int(0)?;
    // Only now: a retried batch (a duplicate) costs its insert attempt, not its rows.
    let rows = BatchRows::of(batch)?;
    c.execute(
        &sql::UPSERT_SESSION,
        &[
            Arg::Text(&batch.session),
            Arg::Int(model_id),
            Arg::Int(writes::client_count(batch.dropped)),
            Arg::Int(writes::client_count(batch.unconfirmed)),
        ],
    )
    .await?;

    // What the batch adds to its minutes, with the labels that came before their predictions.
    let model = &batch.model.name;
    let known = if rows.ids.is_empty() { HashMap::new() } else { truths(c, &sql::LABELS_OF, model, &rows.ids).await? };
    for (minute, rollup) in rollup::of_batch(batch, &known) {
        insert_rollup(c, model_id, minute, &rollup).await?;
    }
    if !rows.ids.is_empty() {
        c.execute(&sql::INSERT_PREDICTIONS, &[Arg::Int(batch_seq), Arg::Int(model_id), Arg::Text(&rows.predictions)])
            .await?;
    }
    for f in &rows.features {
        c.execute(
            &sql::INSERT_FEATURES,
            &[
                Arg::Int(batch_seq),
                Arg::Int(model_id),
                Arg::Int(f.window_start_ms),
                Arg::Int(f.rows),
                Arg::Text(&f.body),
            ],
        )
        .await?;
    }
    for e in &rows.errors {
        c.execute(
            &sql::INSERT_ERROR,
            &[
                Arg::Int(batch_seq),
                Arg::Int(model_id),
                Arg::Int(e.timestamp_ms),
                Arg::Text(e.kind),
                Arg::Text(e.message),
            ],
        )
        .await?;
    }
    put_model_labels(c, model, rows.labels, now_ms).await?;
    Ok(Ingested::Stored)
}

/// The stored truths of these predictions of `model`.
async fn truths(c: &impl Conn, statement: &Sql, model: &str, ids: &[&str]) -> Result<HashMap<String, Truth>> {
    let mut truths = HashMap::new();
    for mut r in c.query(statement, &[Arg::Text(model), Arg::Texts(ids)]).await? {
        let id = r.text(0)?;
        if let Some(truth) = writes::truth_of(r.opt_text(1)?, r.opt_real(2)?) {
            truths.insert(id, truth);
        }
    }
    Ok(truths)
}

/// Stores each model's labels; the number stored.
pub(super) async fn put_labels(c: &impl Conn, labels: ModelLabels, now_ms: i64) -> Result<u64> {
    let mut stored = 0;
    for (model, labels) in labels {
        stored += put_model_labels(c, &model, labels, now_ms).await?;
    }
    Ok(stored)
}

/// Stores labels for `model`'s predictions (the last per prediction wins) and what they change
/// in those predictions' minutes; the number of labels stored.
async fn put_model_labels(c: &impl Conn, model: &str, labels: Vec<Label>, now_ms: i64) -> Result<u64> {
    if labels.is_empty() {
        return Ok(0);
    }
    let labels = LabelRows::of(labels)?;
    let ids = labels.ids();
    let old = truths(c, &sql::LABELS_OF_FOR_UPDATE, model, &ids).await?;
    let mut predicted: HashMap<String, (i64, Predicted)> = HashMap::new();
    for mut r in c.query(&sql::PREDICTIONS_OF, &[Arg::Text(model), Arg::Texts(&ids)]).await? {
        let id = r.text(0)?;
        let p = (r.int(1)?, Predicted { timestamp_ms: r.int(2)?, label: r.opt_text(3)?, value: r.opt_real(4)? });
        // The oldest prediction with this id counts.
        predicted.entry(id).or_insert(p);
    }
    for ((model_id, minute), rollup) in labels.rollups(&predicted, &old) {
        insert_rollup(c, model_id, minute, &rollup).await?;
    }
    c.execute(&sql::UPSERT_LABELS, &[Arg::Text(model), Arg::Text(&labels.rows), Arg::Int(now_ms)]).await
}

async fn insert_rollup(c: &impl Conn, model_id: i64, minute: i64, rollup: &Rollup) -> Result<()> {
    let body = rollup::to_body(rollup)?;
    c.execute(&sql::INSERT_ROLLUP, &[Arg::Int(model_id), Arg::Int(minute), Arg::Blob(&body)]).await?;
    Ok(())
}

pub(super) async fn put_profile(c: &impl Conn, model: &str, version: &str, body: &str, now_ms: i64) -> Result<()> {
    c.execute(&sql::PUT_PROFILE, &[Arg::Text(model), Arg::Text(version), Arg::Text(body), Arg::Int(now_ms)]).await?;
    Ok(())
}

pub(super) async fn profile(c: &impl Conn, model: &str, version: &str) -> Result<Option<String>> {
    match c.query_opt(&sql::PROFILE, &[Arg::Text(model), Arg::Text(version)]).await? {
        Some(mut r) => Ok(Some(r.text(0)?)),
        None => Ok(None),
    }
}

pub(super) async fn models(c: &impl Conn) -> Result<Vec<ModelSummary>> {
    rows::all(c.query(&sql::MODELS, &[]).await?, rows::model_summary)
}

pub(super) async fn model_versions(c: &impl Conn) -> Result<Vec<ModelVersion>> {
    rows::all(c.query(&sql::MODEL_VERSIONS, &[]).await?, rows::model_version)
}

pub(super) async fn batches(c: &impl Conn, page: PageRequest) -> Result<Page<BatchRow>> {
    let found = c.query(&sql::BATCHES, &[Arg::Int(page.after), Arg::Int(limit(page.limit))]).await?;
    Ok(Page::from_rows(rows::all(found, rows::batch)?, page.limit))
}

pub(super) async fn records(
    c: &impl Conn,
    model: &str,
    version: &str,
    kind: RecordKind,
    page: PageRequest,
) -> Result<Page<serde_json::Value>> {
    let (statement, row): (_, rows::Record) = match kind {
        RecordKind::Predictions => (&sql::PREDICTIONS, rows::prediction),
        RecordKind::Features => (&sql::FEATURES, rows::features),
        RecordKind::Errors => (&sql::ERRORS, rows::error),
    };
    let args = [Arg::Text(model), Arg::Text(version), Arg::Int(page.after), Arg::Int(limit(page.limit))];
    Ok(Page::from_rows(rows::all(c.query(statement, &args).await?, row)?, page.limit))
}

fn limit(n: usize) -> i64 {
    writes::clamp(n as u64)
}

pub(super) async fn create_key(
    c: &impl Conn,
    name: String,
    role: Role,
    scope: Scope,
    digest: &str,
    now_ms: i64,
) -> Result<KeyInfo> {
    let models = scope.to_column();
    let args = [
        Arg::Text(&name),
        Arg::Text(role.as_str()),
        Arg::OptText(models.as_deref()),
        Arg::Text(digest),
        Arg::Int(now_ms),
    ];
    let id = c.query_one(&sql::CREATE_KEY, &args).await?.int(0)?;
    Ok(KeyInfo { id, name, role, scope, created_ms: now_ms, revoked_ms: None })
}

/// Creates `keys` if there is no key yet (the caller holds whatever lock makes the check and the
/// inserts one step).
pub(super) async fn create_first_keys(c: &impl Conn, keys: Vec<NewKey>, now_ms: i64) -> Result<Option<Vec<KeyInfo>>> {
    if c.query_opt(&sql::ANY_KEY, &[]).await?.is_some() {
        return Ok(None);
    }
    let mut made = Vec::with_capacity(keys.len());
    for NewKey { name, role, scope, digest } in keys {
        made.push(create_key(c, name, role, scope, &digest, now_ms).await?);
    }
    Ok(Some(made))
}

pub(super) async fn prediction_models(c: &impl Conn, ids: &[String]) -> Result<PredictionModels> {
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    let mut models = PredictionModels::new();
    for mut r in c.query(&sql::MODELS_OF_PREDICTIONS, &[Arg::Texts(&ids)]).await? {
        let id = r.text(0)?;
        let model = r.text(1)?;
        models.entry(id).or_default().push(model);
    }
    Ok(models)
}

pub(super) async fn find_key(c: &impl Conn, digest: &str) -> Result<Option<KeyInfo>> {
    c.query_opt(&sql::FIND_KEY, &[Arg::Text(digest)]).await?.map(rows::key).transpose()
}

pub(super) async fn keys(c: &impl Conn) -> Result<Vec<KeyInfo>> {
    rows::all(c.query(&sql::KEYS, &[]).await?, rows::key)
}

pub(super) async fn revoke_key(c: &impl Conn, id: i64, now_ms: i64) -> Result<bool> {
    Ok(c.execute(&sql::REVOKE_KEY, &[Arg::Int(now_ms), Arg::Int(id)]).await? == 1)
}

pub(super) async fn window(c: &impl Conn, model: &str, version: &str, span: Span) -> Result<WindowData> {
    let args = [Arg::Text(model), Arg::Text(version), Arg::Int(span.start_ms), Arg::Int(span.end_ms)];
    let bodies = rows::all(c.query(&sql::WINDOW, &args).await?, |mut r| r.blob(0))?;
    Ok(rollup::merge_bodies(bodies.iter().map(Vec::as_slice))?.into_window())
}

/// The minutes (model id, minute) with rollup rows after `after_id`, and the highest id looked at.
pub(super) async fn rollup_minutes(c: &impl Conn, after_id: i64) -> Result<(i64, Vec<(i64, i64)>)> {
    let last_id = c.query_one(&sql::LAST_ROLLUP_ID, &[Arg::Int(after_id)]).await?.int(0)?;
    let minutes = c.query(&sql::ROLLUP_MINUTES, &[Arg::Int(after_id), Arg::Int(last_id)]).await?;
    Ok((last_id, rows::all(minutes, |mut r| Ok((r.int(0)?, r.int(1)?)))?))
}

/// Merges a minute's rollup rows into one; the rows merged away (0 if there was one row).
pub(super) async fn compact_minute(c: &impl Conn, model_id: i64, minute: i64) -> Result<u64> {
    let found = c.query(&sql::MINUTE_ROLLUPS, &[Arg::Int(model_id), Arg::Int(minute)]).await?;
    let found = rows::all(found, |mut r| Ok((r.int(0)?, r.blob(1)?)))?;
    if found.len() < 2 {
        return Ok(0);
    }
    let ids: Vec<i64> = found.iter().map(|(id, _)| *id).collect();
    let merged = rollup::merge_bodies(found.iter().map(|(_, body)| body.as_slice()))?;
    c.execute(&sql::DELETE_ROLLUPS, &[Arg::Ints(&ids)]).await?;
    insert_rollup(c, model_id, minute, &merged).await?;
    Ok(ids.len() as u64)
}

pub(super) async fn alert_rules(c: &impl Conn) -> Result<Vec<(String, String)>> {
    rows::all(c.query(&sql::ALERT_RULES, &[]).await?, |mut r| Ok((r.text(0)?, r.text(1)?)))
}

pub(super) async fn put_alert_rule(c: &impl Conn, name: &str, body: &str, now_ms: i64) -> Result<()> {
    c.execute(&sql::PUT_ALERT_RULE, &[Arg::Text(name), Arg::Text(body), Arg::Int(now_ms)]).await?;
    Ok(())
}

pub(super) async fn delete_alert_rule(c: &impl Conn, name: &str) -> Result<bool> {
    Ok(c.execute(&sql::DELETE_ALERT_RULE, &[Arg::Text(name)]).await? == 1)
}

pub(super) async fn fire_alert(
    c: &impl Conn,
    alert: &NewAlert,
    webhooks: &[String],
    now_ms: i64,
) -> Result<Option<i64>> {
    let args = [
        Arg::Text(&alert.rule),
        Arg::Text(&alert.model),
        Arg::Text(&alert.version),
        Arg::Text(&alert.subject),
        Arg::Text(&alert.metric),
        Arg::Text(&alert.severity),
        Arg::OptReal(alert.value),
        Arg::OptReal(alert.threshold),
        Arg::Text(&alert.message),
        Arg::Int(alert.window_start_ms),
        Arg::Int(alert.started_ms),
    ];
    let Some(mut row) = c.query_opt(&sql::FIRE_ALERT, &args).await? else { return Ok(None) };
    let id = row.int(0)?;
    queue_deliveries(c, id, AlertState::Firing, webhooks, now_ms).await?;
    Ok(Some(id))
}

pub(super) async fn resolve_alert(
    c: &impl Conn,
    id: i64,
    resolved_ms: i64,
    webhooks: &[String],
    now_ms: i64,
) -> Result<bool> {
    let changed = c.execute(&sql::RESOLVE_ALERT, &[Arg::Int(resolved_ms), Arg::Int(id)]).await?;
    if changed == 1 {
        queue_deliveries(c, id, AlertState::Resolved, webhooks, now_ms).await?;
    }
    Ok(changed == 1)
}

async fn queue_deliveries(
    c: &impl Conn,
    alert_id: i64,
    event: AlertState,
    webhooks: &[String],
    now_ms: i64,
) -> Result<()> {
    for url in webhooks {
        let args = [Arg::Int(alert_id), Arg::Text(event.as_str()), Arg::Text(url), Arg::Int(now_ms)];
        c.execute(&sql::QUEUE_DELIVERY, &args).await?;
    }
    Ok(())
}

pub(super) async fn alerts(c: &impl Conn, query: &AlertQuery) -> Result<Vec<AlertRow>> {
    let args = [Arg::OptText(query.model.as_deref()), Arg::Bool(query.firing_only), Arg::Int(limit(query.limit))];
    let mut alerts = rows::all(c.query(&sql::ALERTS, &args).await?, rows::alert)?;
    let deliveries = rows::all(c.query(&sql::ALERT_DELIVERIES, &args).await?, rows::delivery)?;
    rows::attach(&mut alerts, deliveries);
    Ok(alerts)
}

pub(super) async fn claim_deliveries(c: &impl Conn, now_ms: i64, lease_ms: i64, limit: usize) -> Result<Vec<Due>> {
    let claimed =
        c.query(&sql::CLAIM_DELIVERIES, &[Arg::Int(now_ms), Arg::Int(lease_ms), Arg::Int(self::limit(limit))]).await?;
    let mut due = Vec::with_capacity(claimed.len());
    for mut r in claimed {
        let alert = rows::alert(c.query_one(&sql::ALERT, &[Arg::Int(r.int(1)?)]).await?)?;
        due.push(Due {
            id: r.int(0)?,
            event: AlertState::parse(&r.text(2)?),
            url: r.text(3)?,
            attempts: r.int(4)?,
            lease_until_ms: r.int(5)?,
            alert,
        });
    }
    due.sort_by_key(|d| d.id);
    Ok(due)
}

pub(super) async fn finish_delivery(c: &impl Conn, id: i64, lease_until_ms: i64, attempt: &Attempt) -> Result<bool> {
    let (state, delivered_ms, next_attempt_ms, error) = writes::attempt_columns(attempt);
    let args = [
        Arg::Int(id),
        Arg::Text(state),
        Arg::OptInt(delivered_ms),
        Arg::OptInt(next_attempt_ms),
        Arg::OptText(error),
        Arg::Int(lease_until_ms),
    ];
    Ok(c.execute(&sql::FINISH_DELIVERY, &args).await? == 1)
}
