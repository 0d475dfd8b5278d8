//! The HTTP API (axum).
//!
//! | Route | Key | |
//! |---|---|---|
//! | `POST /v1/batches` | ingest | a telemetry batch (JSON or MessagePack, optionally gzip) |
//! | `POST /v1/beacon?key=&encoding=` | ingest (in the query) | the same, from `navigator.sendBeacon` (no headers) |
//! | `POST /v1/labels` | ingest | `{"labels": [..]}`: ground truth for earlier predictions |
//! | `GET /v1/models/{m}/versions/{v}/profile` | any | the reference profile clients count against |
//! | `PUT /v1/models/{m}/versions/{v}/profile` | admin | upload a profile (`sextant profile build`'s JSON) |
//! | `GET /v1/models` | read | model versions heard from, with counts and losses |
//! | `GET /v1/batches?after=&limit=` | read | stored batches, oldest first |
//! | `GET /v1/models/{m}/versions/{v}/{predictions,features,errors}?after=&limit=` | read | history |
//! | `GET /v1/models/{m}/drift?version=&window=&at=` | read | drift vs the reference and the previous window |
//! | `GET /v1/models/{m}/integrity?version=&window=&at=` | read | data-integrity findings, errors |
//! | `GET /v1/models/{m}/performance?version=&window=&windows=&at=` | read | metrics and traffic per window |
//! | `GET /v1/models/{m}/alerts`, `GET /v1/alerts?state=firing&limit=` | read | alerts with their deliveries |
//! | `GET /v1/alert-rules`; `PUT`, `DELETE /v1/alert-rules/{name}` | read; admin | alert rules |
//! | `POST /v1/alerts/evaluate?at=` | admin | evaluate the rules now (they also run on a timer) |
//! | `GET /` (dashboard), `GET /healthz`, `GET /metrics` | none (`/metrics`: read with `metrics_need_key`) | the dashboard; liveness (and background tasks restarted after panics); Prometheus text |
//!
//! Every refusal is `{"error": {"code": .., "message": ..}}` with a 4xx or 5xx status; 429 and 503
//! carry `Retry-After`.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use telemetry::{DecodeError, Diagnostic, Encoding, Format, Label, Record};
use tokio::sync::OwnedSemaphorePermit;

use crate::acceptance::Acceptance;
use crate::admission::{Admission, Refused, Slot};
use crate::alerts::{AlertQuery, Rule};
use crate::config::Config;
use crate::keys::{self, KeyInfo, Role};
use crate::metrics::Metrics;
use crate::monitor::{self, Span, Width, WindowData, WindowPerformance};
use crate::store::{Incoming, Ingested, PageRequest, RecordKind, Store};
use crate::tasks::{Health, supervise};

/// How long a key lookup is trusted before the database is asked again (a revocation made by
/// another process takes at most this long to apply).
const KEY_CACHE_TTL: Duration = Duration::from_secs(30);
const MAX_PAGE: usize = 1000;
/// The most time one performance read covers, all its windows together.
const MAX_READ_SPAN_MS: i64 = 366 * 86_400_000;
/// Longest batch id or session accepted (model names and versions: `telemetry::check_name`).
const MAX_ID_BYTES: usize = 256;

/// The running service: its store, limits, keys and counters.
#[derive(Debug)]
pub struct Collector {
    store: Box<dyn Store>,
    config: Config,
    metrics: Metrics,
    admission: Admission,
    health: Arc<Health>,
    key_cache: RwLock<HashMap<String, (KeyInfo, Instant)>>,
}

impl Collector {
    pub fn new(store: Box<dyn Store>, config: Config) -> Arc<Collector> {
        Arc::new(Collector {
            store,
            admission: Admission::new(config.max_in_flight, config.decode_budget_bytes, config.max_decoded_bytes),
            health: Arc::default(),
            config,
            metrics: Metrics::default(),
            key_cache: RwLock::default(),
        })
    }

    /// The routes, with CORS for the configured origins.
    pub fn router(self: &Arc<Self>) -> Router {
        let router = Router::new()
            .route("/v1/batches", post(ingest).get(batches))
            .route("/v1/beacon", post(beacon))
            .route("/v1/labels", post(labels))
            .route("/v1/models", get(models))
            .route("/v1/models/{model}/versions/{version}/profile", get(get_profile).put(put_profile))
            .route("/v1/models/{model}/versions/{version}/{kind}", get(records))
            .route("/v1/models/{model}/drift", get(drift))
            .route("/v1/models/{model}/integrity", get(integrity))
            .route("/v1/models/{model}/performance", get(performance))
            .route("/v1/models/{model}/alerts", get(model_alerts))
            .route("/v1/alerts", get(all_alerts))
            .route("/v1/alerts/evaluate", post(evaluate))
            .route("/v1/alert-rules", get(alert_rules))
            .route("/v1/alert-rules/{name}", axum::routing::put(put_alert_rule).delete(delete_alert_rule))
            .merge(crate::dashboard::routes())
            .route("/healthz", get(healthz))
            .route("/metrics", get(metrics))
            .with_state(self.clone());
        match cors(&self.config.cors_origins) {
            Some(layer) => router.layer(layer),
            None => router,
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn store(&self) -> &dyn Store {
        self.store.as_ref()
    }

    /// Evaluates every alert rule on the windows that hold `at_ms`.
    pub async fn evaluate_alerts(&self, at_ms: i64) -> Result<crate::alerts::evaluator::Outcome, crate::StoreError> {
        crate::alerts::evaluator::evaluate(self.store(), &self.config.monitoring, &self.metrics, at_ms).await
    }

    /// Writes the configured alert rules to the database (replacing same-named ones).
    pub async fn install_rules(&self) -> Result<(), crate::StoreError> {
        for rule in &self.config.monitoring.rules {
            let body = serde_json::to_string(rule)
                .map_err(|e| crate::StoreError::Corrupt { what: "alert rule", message: e.to_string() })?;
            self.store.put_alert_rule(rule.name.clone(), body).await?;
        }
        Ok(())
    }

    /// The key a request presents, if it may do what one of the `needed` roles allows.
    async fn authorize(&self, headers: &HeaderMap, needed: &[Role]) -> Result<KeyInfo, ApiError> {
        let token = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        self.authorize_token(token, needed).await
    }

    async fn authorize_token(&self, token: Option<&str>, needed: &[Role]) -> Result<KeyInfo, ApiError> {
        let token = token.ok_or_else(|| {
            self.metrics.refused("unauthorized");
            ApiError::new(StatusCode::UNAUTHORIZED, "missing_key", "send an API key as `Authorization: Bearer …`")
        })?;
        let digest = keys::digest(token);
        let cached = self.key_cache.read().ok().and_then(|cache| {
            cache.get(&digest).filter(|(_, at)| at.elapsed() < KEY_CACHE_TTL).map(|(key, _)| key.clone())
        });
        let key = match cached {
            Some(key) => Some(key),
            None => {
                let found = self.store.find_key(digest.clone()).await.map_err(ApiError::storage)?;
                if let (Some(key), Ok(mut cache)) = (&found, self.key_cache.write()) {
                    cache.insert(digest, (key.clone(), Instant::now()));
                }
                found
            }
        };
        let Some(key) = key else {
            self.metrics.refused("unauthorized");
            return Err(ApiError::new(StatusCode::UNAUTHORIZED, "unknown_key", "the API key is unknown or revoked"));
        };
        if !needed.iter().any(|&role| key.role.allows(role)) {
            self.metrics.refused("forbidden");
            let needed: Vec<&str> = needed.iter().map(|r| r.as_str()).collect();
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "wrong_role",
                format!("this needs a {} key; key {:?} is a {} key", needed.join(" or "), key.name, key.role.as_str()),
            ));
        }
        Ok(key)
    }

    /// A slot for one upload, or 429: bounded work instead of a growing queue.
    fn admit(&self) -> Result<Slot, ApiError> {
        self.admission.slot(self.metrics.in_flight()).map_err(|e| self.overloaded("overloaded", e))
    }

    /// Memory for decoding `decoded_bytes` of `encoding`, from the decode budget, or 429: the
    /// uploads being decoded at once never hold more than the budget, whatever their shape.
    fn reserve_decode(&self, decoded_bytes: usize, encoding: Encoding) -> Result<OwnedSemaphorePermit, ApiError> {
        self.admission.memory(decoded_bytes, encoding).map_err(|e| self.overloaded("decode_budget", e))
    }

    /// What this upload's records are judged by, from the collector's clock now.
    fn acceptance(&self) -> Acceptance {
        Acceptance::new(crate::now_ms(), self.config.accept_past, self.config.accept_future)
    }

    fn overloaded(&self, code: &'static str, refused: Refused) -> ApiError {
        self.metrics.refused("overloaded");
        ApiError::new(StatusCode::TOO_MANY_REQUESTS, code, refused.to_string()).retry_after(self.config.retry_after_s)
    }
}

fn cors(origins: &[String]) -> Option<tower_http::cors::CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let origins: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| {
            let parsed = HeaderValue::from_str(o.trim_end_matches('/')).ok();
            if parsed.is_none() {
                tracing::warn!(origin = %o, "ignoring a CORS origin that is not a valid header value");
            }
            parsed
        })
        .collect();
    Some(
        tower_http::cors::CorsLayer::new()
            .allow_origin(origins)
            .allow_methods([Method::GET, Method::POST, Method::PUT])
            .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE, header::CONTENT_ENCODING])
            .expose_headers([header::RETRY_AFTER])
            .max_age(Duration::from_secs(3600)),
    )
}

/// Serves until `shutdown` resolves; in-flight requests finish first. Alert rules are evaluated
/// and webhooks delivered in the background meanwhile.
pub async fn serve(
    collector: Arc<Collector>,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    if let Err(e) = collector.install_rules().await {
        tracing::error!(error = %e, "cannot store the configured alert rules");
    }
    let health = collector.health.clone();
    let c = collector.clone();
    let evaluator = supervise(health.clone(), "evaluator", move || crate::alerts::evaluator::run(c.clone()));
    let c = collector.clone();
    let webhooks = supervise(health.clone(), "webhooks", move || crate::alerts::webhook::run(c.clone()));
    let c = collector.clone();
    let compactor = supervise(health, "compaction", move || compact_rollups(c.clone()));
    let served = axum::serve(listener, collector.router()).with_graceful_shutdown(shutdown).await;
    evaluator.abort();
    webhooks.abort();
    compactor.abort();
    served
}

/// Liveness: `ok`, and a line per background task that restarted after a panic.
async fn healthz(State(c): State<Arc<Collector>>) -> String {
    c.health.report()
}

/// Merges each minute's rollup rows into one, every 10 seconds (reads merge whatever rows there
/// are: this keeps them few).
async fn compact_rollups(collector: Arc<Collector>) {
    let mut after_id = 0;
    let mut ticks = tokio::time::interval(Duration::from_secs(10));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        match collector.store.compact_rollups(after_id).await {
            Ok(done) => {
                after_id = done.last_id;
                if done.rows_merged > 0 {
                    tracing::debug!(rows = done.rows_merged, "compacted rollups");
                }
            }
            Err(e) => tracing::error!(error = %e, "rollup compaction failed; trying again next tick"),
        }
    }
}

/// A query string, refused as `{"error": {"code": "bad_query", ..}}` (axum's own refusal is
/// plain text) when it does not parse.
struct ApiQuery<T>(T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> axum::extract::FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &S) -> Result<Self, ApiError> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(value)) => Ok(ApiQuery(value)),
            Err(e) => Err(ApiError::new(StatusCode::BAD_REQUEST, "bad_query", e.body_text())),
        }
    }
}

/// A refusal, as the client sees it.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    retry_after_s: Option<u32>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError { status, code, message: message.into(), retry_after_s: None }
    }

    fn retry_after(mut self, seconds: u32) -> ApiError {
        self.retry_after_s = Some(seconds);
        self
    }

    /// The database failed: nothing was acknowledged, so the client should retry.
    fn storage(e: crate::store::StoreError) -> ApiError {
        tracing::error!(error = %e, "storage failed");
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "storage_unavailable", e.to_string()).retry_after(1)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": { "code": self.code, "message": self.message } });
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(seconds) = self.retry_after_s {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// The format a request's headers declare.
fn format_of(headers: &HeaderMap) -> Result<Format, ApiError> {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let encoding = Encoding::from_content_type(content_type).ok_or_else(|| {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_content_type",
            format!("Content-Type {content_type:?} is not application/json or application/msgpack"),
        )
    })?;
    let gzip = match headers.get(header::CONTENT_ENCODING).map(|v| v.to_str().unwrap_or("?")) {
        None | Some("identity") => false,
        Some("gzip") => true,
        Some(other) => {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_content_encoding",
                format!("Content-Encoding {other:?} is not gzip or identity"),
            ));
        }
    };
    Ok(Format { encoding, gzip })
}

/// The body, within the size limit and the time limit: an upload holds a slot while its body
/// arrives, so one that trickles in is cut off rather than holding the slot forever.
async fn read_body(collector: &Collector, body: Body) -> Result<axum::body::Bytes, ApiError> {
    let (limit, seconds) = (collector.config.max_body_bytes, collector.config.body_timeout_s);
    let read = tokio::time::timeout(Duration::from_secs(seconds.into()), axum::body::to_bytes(body, limit));
    let Ok(read) = read.await else {
        collector.metrics.refused("timeout");
        return Err(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "body_timeout",
            format!("the body did not arrive within {seconds} s"),
        ));
    };
    read.map_err(|_| {
        collector.metrics.refused("too_large");
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("the body is over the limit of {limit} bytes (or was cut off)"),
        )
    })
}

fn decode_error(collector: &Collector, e: DecodeError) -> ApiError {
    let (status, code, reason) = match &e {
        DecodeError::BodyTooLarge { .. } | DecodeError::DecodedTooLarge { .. } | DecodeError::TooManyRecords { .. } => {
            (StatusCode::PAYLOAD_TOO_LARGE, "too_large", "too_large")
        }
        DecodeError::UnsupportedVersion { .. } => {
            (StatusCode::BAD_REQUEST, "unsupported_schema_version", "unsupported_schema_version")
        }
        DecodeError::Gzip(_) => (StatusCode::BAD_REQUEST, "bad_gzip", "malformed"),
        _ => (StatusCode::BAD_REQUEST, "malformed_batch", "malformed"),
    };
    collector.metrics.refused(reason);
    ApiError::new(status, code, e.to_string())
}

/// What `POST /v1/batches` answers.
#[derive(Debug, Serialize, Deserialize)]
pub struct IngestReply {
    pub batch_id: String,
    pub status: Ingested,
    /// Valid records in the batch (stored now, or before if `duplicate`).
    pub accepted: usize,
    /// Records refused, by position, with the reason.
    pub rejected: Vec<Diagnostic>,
}

fn check_id(what: &str, value: &str) -> Result<(), String> {
    match value.len() {
        0 => Err(format!("{what} is empty")),
        n if n > MAX_ID_BYTES => Err(format!("{what} is {n} bytes, over the limit of {MAX_ID_BYTES}")),
        _ => Ok(()),
    }
}

async fn ingest(State(c): State<Arc<Collector>>, headers: HeaderMap, body: Body) -> Result<Response, ApiError> {
    let key = c.authorize(&headers, &[Role::Ingest]).await?;
    let format = format_of(&headers).inspect_err(|_| c.metrics.refused("unsupported_media_type"))?;
    store_batch(&c, key, format, body).await
}

/// What `navigator.sendBeacon` can send: no headers, so the ingest key and the encoding come in
/// the query (`?key=…&encoding=msgpack|json`). Otherwise the same as `POST /v1/batches`.
#[derive(Deserialize)]
struct BeaconQuery {
    key: Option<String>,
    encoding: Option<String>,
}

async fn beacon(
    State(c): State<Arc<Collector>>,
    ApiQuery(query): ApiQuery<BeaconQuery>,
    body: Body,
) -> Result<Response, ApiError> {
    let key = c.authorize_token(query.key.as_deref(), &[Role::Ingest]).await?;
    let encoding = match query.encoding.as_deref() {
        None | Some("msgpack") => Encoding::MessagePack,
        Some("json") => Encoding::Json,
        Some(other) => {
            c.metrics.refused("unsupported_media_type");
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_content_type",
                format!("encoding {other:?} is not msgpack or json"),
            ));
        }
    };
    store_batch(&c, key, Format { encoding, gzip: false }, body).await
}

async fn store_batch(c: &Collector, key: KeyInfo, format: Format, body: Body) -> Result<Response, ApiError> {
    let _slot = c.admit()?;
    let bytes = read_body(c, body).await?;
    let plain = telemetry::inflate(&bytes, format.gzip, c.config.limits()).map_err(|e| decode_error(c, e))?;
    let _memory = c.reserve_decode(plain.len(), format.encoding)?;
    let batch = telemetry::decode_plain(&plain, format.encoding, c.config.limits()).map_err(|e| decode_error(c, e))?;
    drop(plain);
    [check_id("batch_id", &batch.batch_id), check_id("session", &batch.session), batch.model.validate()]
        .into_iter()
        .collect::<Result<Vec<()>, String>>()
        .map_err(|message| {
            c.metrics.refused("malformed");
            ApiError::new(StatusCode::BAD_REQUEST, "malformed_batch", message)
        })?;
    let mut acceptance = c.acceptance();
    let (batch, rejected) = batch.partition_by(|record| acceptance.check(record));
    let batch_id = batch.batch_id.clone();
    let counts = RecordCounts::of(&batch.records);
    let accepted = batch.records.len();
    let started = Instant::now();
    let outcome = c
        .store
        .ingest(Incoming { batch, rejected: rejected.len() as u64, key_id: Some(key.id) })
        .await
        .map_err(ApiError::storage)?;
    c.metrics.storage("ingest", started.elapsed().as_secs_f64());
    match outcome {
        Ingested::Stored => {
            c.metrics.batch("stored");
            counts.report(&c.metrics);
            if !rejected.is_empty() {
                c.metrics.rejected_records("invalid", rejected.len() as u64);
            }
        }
        Ingested::Duplicate => c.metrics.batch("duplicate"),
    }
    Ok(axum::Json(IngestReply { batch_id, status: outcome, accepted, rejected }).into_response())
}

#[derive(Default)]
struct RecordCounts {
    predictions: u64,
    features: u64,
    labels: u64,
    errors: u64,
}

impl RecordCounts {
    fn of(records: &[Record]) -> RecordCounts {
        let mut counts = RecordCounts::default();
        for record in records {
            match record {
                Record::Prediction(_) => counts.predictions += 1,
                Record::Features(_) => counts.features += 1,
                Record::Label(_) => counts.labels += 1,
                Record::Error(_) => counts.errors += 1,
            }
        }
        counts
    }

    fn report(&self, metrics: &Metrics) {
        metrics.records("prediction", self.predictions);
        metrics.records("features", self.features);
        metrics.records("label", self.labels);
        metrics.records("error", self.errors);
    }
}

/// The body of `POST /v1/labels`.
#[derive(Debug, Serialize, Deserialize)]
pub struct LabelUpload {
    pub labels: Vec<Label>,
}

/// What `POST /v1/labels` answers.
#[derive(Debug, Serialize, Deserialize)]
pub struct LabelsReply {
    pub accepted: usize,
    pub rejected: Vec<Diagnostic>,
}

async fn labels(State(c): State<Arc<Collector>>, headers: HeaderMap, body: Body) -> Result<Response, ApiError> {
    c.authorize(&headers, &[Role::Ingest]).await?;
    let _slot = c.admit()?;
    let format = format_of(&headers)?;
    let bytes = read_body(&c, body).await?;
    let upload: LabelUpload = decode_labels(&c, &bytes, format)?;
    let mut valid = Vec::with_capacity(upload.labels.len());
    let mut rejected = Vec::new();
    let mut acceptance = c.acceptance();
    for (index, label) in upload.labels.into_iter().enumerate() {
        let record = Record::Label(label);
        match record.validate().and_then(|()| acceptance.check(&record)) {
            Err(reason) => rejected.push(Diagnostic { index, reason }),
            Ok(()) => {
                if let Record::Label(label) = record {
                    valid.push(label);
                }
            }
        }
    }
    let accepted = valid.len();
    let started = Instant::now();
    c.store.put_labels(valid).await.map_err(ApiError::storage)?;
    c.metrics.storage("labels", started.elapsed().as_secs_f64());
    c.metrics.records("label", accepted as u64);
    if !rejected.is_empty() {
        c.metrics.rejected_records("invalid", rejected.len() as u64);
    }
    Ok(axum::Json(LabelsReply { accepted, rejected }).into_response())
}

/// Decodes a label upload with the bounds of batches: inflated within the limits, its labels
/// counted before any is built, its memory reserved.
fn decode_labels(c: &Collector, body: &[u8], format: Format) -> Result<LabelUpload, ApiError> {
    #[derive(Deserialize)]
    struct Shape {
        labels: telemetry::Counted,
    }
    let limits = c.config.limits();
    let malformed = |message| DecodeError::Malformed { encoding: format.encoding, message };
    let plain = telemetry::inflate(body, format.gzip, limits).map_err(|e| decode_error(c, e))?;
    let shape: Shape = telemetry::from_slice(&plain, format.encoding).map_err(|e| decode_error(c, malformed(e)))?;
    let count = usize::try_from(shape.labels.0).unwrap_or(usize::MAX);
    if count > limits.max_records {
        return Err(decode_error(c, DecodeError::TooManyRecords { limit: limits.max_records, actual: count }));
    }
    let _memory = c.reserve_decode(plain.len(), format.encoding)?;
    telemetry::from_slice(&plain, format.encoding).map_err(|e| decode_error(c, malformed(e)))
}

async fn get_profile(
    State(c): State<Arc<Collector>>,
    headers: HeaderMap,
    Path((model, version)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    // Deployments fetch profiles with their ingest key; dashboards with their read key.
    c.authorize(&headers, &[Role::Ingest, Role::Read]).await?;
    match c.store.profile(model.clone(), version.clone()).await.map_err(ApiError::storage)? {
        Some(body) => Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response()),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "no_profile",
            format!("no reference profile is stored for model {model:?} version {version:?}"),
        )),
    }
}

async fn put_profile(
    State(c): State<Arc<Collector>>,
    headers: HeaderMap,
    Path((model, version)): Path<(String, String)>,
    body: Body,
) -> Result<Response, ApiError> {
    c.authorize(&headers, &[Role::Admin]).await?;
    let bytes = read_body(&c, body).await?;
    let profile: telemetry::Profile = serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::new(StatusCode::BAD_REQUEST, "malformed_profile", format!("not a reference profile: {e}"))
    })?;
    profile.validate().map_err(|e| {
        ApiError::new(StatusCode::BAD_REQUEST, "malformed_profile", format!("not a usable reference profile: {e}"))
    })?;
    let body = serde_json::to_string(&profile)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "malformed_profile", e.to_string()))?;
    c.store.put_profile(model, version, body).await.map_err(ApiError::storage)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn models(State(c): State<Arc<Collector>>, headers: HeaderMap) -> Result<Response, ApiError> {
    c.authorize(&headers, &[Role::Read]).await?;
    let models = c.store.models().await.map_err(ApiError::storage)?;
    Ok(axum::Json(serde_json::json!({ "models": models })).into_response())
}

#[derive(Debug, Deserialize)]
struct PageQuery {
    #[serde(default)]
    after: i64,
    limit: Option<usize>,
}

impl PageQuery {
    fn request(&self) -> PageRequest {
        PageRequest { after: self.after, limit: self.limit.unwrap_or(100).clamp(1, MAX_PAGE) }
    }
}

async fn batches(
    State(c): State<Arc<Collector>>,
    headers: HeaderMap,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> Result<Response, ApiError> {
    c.authorize(&headers, &[Role::Read]).await?;
    let page = c.store.batches(page.request()).await.map_err(ApiError::storage)?;
    Ok(axum::Json(page).into_response())
}

async fn records(
    State(c): State<Arc<Collector>>,
    headers: HeaderMap,
    Path((model, version, kind)): Path<(String, String, String)>,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> Result<Response, ApiError> {
    c.authorize(&headers, &[Role::Read]).await?;
    let kind = match kind.as_str() {
        "predictions" => RecordKind::Predictions,
        "features" => RecordKind::Features,
        "errors" => RecordKind::Errors,
        other => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_history",
                format!("no history called {other:?}: expected predictions, features or errors"),
            ));
        }
    };
    let page = c.store.records(model, version, kind, page.request()).await.map_err(ApiError::storage)?;
    Ok(axum::Json(page).into_response())
}

/// Which window of which model version a monitoring read is about.
#[derive(Debug, Deserialize)]
struct WindowQuery {
    /// Absent: the version heard from last.
    version: Option<String>,
    /// A width such as `5m`, `1h`, `1d`; absent: the configured window.
    window: Option<String>,
    /// A time (ms since the epoch) inside the window wanted; absent: now.
    at: Option<i64>,
    /// Performance: how many windows back, oldest first (1 to 500, a year in all; default 24).
    windows: Option<usize>,
}

/// A model version's window, resolved.
struct Resolved {
    model: String,
    version: String,
    width: Width,
    span: Span,
}

impl Collector {
    async fn resolve(&self, model: String, query: &WindowQuery) -> Result<Resolved, ApiError> {
        let width = match &query.window {
            Some(text) => Width::parse(text)
                .and_then(Width::whole_minutes)
                .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_window", e))?,
            None => self.config.monitoring.window,
        };
        let version = match &query.version {
            Some(version) => version.clone(),
            None => {
                let versions = self.store.model_versions().await.map_err(ApiError::storage)?;
                versions
                    .into_iter()
                    .filter(|m| m.name == model)
                    .max_by_key(|m| m.last_batch_seq)
                    .map(|m| m.version)
                    .ok_or_else(|| {
                        ApiError::new(
                            StatusCode::NOT_FOUND,
                            "unknown_model",
                            format!("no telemetry has arrived for model {model:?}"),
                        )
                    })?
            }
        };
        let span = width.containing(query.at.unwrap_or_else(crate::now_ms));
        Ok(Resolved { model, version, width, span })
    }

    async fn window(&self, r: &Resolved, span: Span) -> Result<WindowData, ApiError> {
        self.store.window(r.model.clone(), r.version.clone(), span).await.map_err(ApiError::storage)
    }

    async fn stored_profile(&self, r: &Resolved) -> Result<Option<telemetry::Profile>, ApiError> {
        monitor::stored_profile(self.store(), &r.model, &r.version).await.map_err(ApiError::storage)
    }
}

/// `{"model", "version", "width", ...report}`.
fn with_identity(r: &Resolved, report: impl Serialize) -> Response {
    let mut value = serde_json::to_value(report).unwrap_or_default();
    if let Some(object) = value.as_object_mut() {
        object.insert("model".into(), r.model.clone().into());
        object.insert("version".into(), r.version.clone().into());
        object.insert("width".into(), r.width.to_string().into());
    }
    axum::Json(value).into_response()
}

async fn drift(
    State(c): State<Arc<Collector>>,
    headers: HeaderMap,
    Path(model): Path<String>,
    ApiQuery(query): ApiQuery<WindowQuery>,
) -> Result<Response, ApiError> {
    c.authorize(&headers, &[Role::Read]).await?;
    let r = c.resolve(model, &query).await?;
    let (current, previous) = (c.window(&r, r.span).await?, c.window(&r, r.span.previous()).await?);
    let profile = c.stored_profile(&r).await?;
    let report = monitor::drift(profile.as_ref(), r.span, &current, &previous, &analysis::drift::Policy::default());
    Ok(with_identity(&r, report))
}

async fn integrity(
    State(c): State<Arc<Collector>>,
    headers: HeaderMap,
    Path(model): Path<String>,
    ApiQuery(query): ApiQuery<WindowQuery>,
) -> Result<Response, ApiError> {
    c.authorize(&headers, &[Role::Read]).await?;
    let r = c.resolve(model, &query).await?;
    let data = c.window(&r, r.span).await?;
    let profile = c.stored_profile(&r).await?;
    Ok(with_identity(&r, monitor::integrity(profile.as_ref(), r.span, &data)))
}

async fn performance(
    State(c): State<Arc<Collector>>,
    headers: HeaderMap,
    Path(model): Path<String>,
    ApiQuery(query): ApiQuery<WindowQuery>,
) -> Result<Response, ApiError> {
    c.authorize(&headers, &[Role::Read]).await?;
    let r = c.resolve(model, &query).await?;
    // The windows together cover at most a year: what one read merges is bounded by a year of
    // rollups, whatever it asks for.
    let fit = usize::try_from(MAX_READ_SPAN_MS / r.width.ms().max(1)).unwrap_or(1).max(1);
    let count = query.windows.unwrap_or(24).clamp(1, 500).min(fit);
    let mut spans = vec![r.span];
    for _ in 1..count {
        let earlier = spans[spans.len() - 1].previous();
        spans.push(earlier);
    }
    spans.reverse();
    let mut series = Vec::with_capacity(count);
    for span in spans {
        series.push(WindowPerformance::new(span, &c.window(&r, span).await?));
    }
    Ok(with_identity(&r, serde_json::json!({ "current": series.last(), "series": series })))
}

#[derive(Debug, Deserialize)]
struct AlertsQuery {
    /// `firing` for open alerts only.
    state: Option<String>,
    limit: Option<usize>,
}

impl AlertsQuery {
    fn query(&self, model: Option<String>) -> Result<AlertQuery, ApiError> {
        let firing_only = match self.state.as_deref() {
            None | Some("all") => false,
            Some("firing") => true,
            Some(other) => {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "bad_state",
                    format!("state {other:?}: expected firing or all"),
                ));
            }
        };
        Ok(AlertQuery { model, firing_only, limit: self.limit.unwrap_or(100).clamp(1, MAX_PAGE) })
    }
}

async fn model_alerts(
    State(c): State<Arc<Collector>>,
    headers: HeaderMap,
    Path(model): Path<String>,
    ApiQuery(query): ApiQuery<AlertsQuery>,
) -> Result<Response, ApiError> {
    c.authorize(&headers, &[Role::Read]).await?;
    let alerts = c.store.alerts(query.query(Some(model))?).await.map_err(ApiError::storage)?;
    Ok(axum::Json(serde_json::json!({ "alerts": alerts })).into_response())
}

async fn all_alerts(
    State(c): State<Arc<Collector>>,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<AlertsQuery>,
) -> Result<Response, ApiError> {
    c.authorize(&headers, &[Role::Read]).await?;
    let alerts = c.store.alerts(query.query(None)?).await.map_err(ApiError::storage)?;
    Ok(axum::Json(serde_json::json!({ "alerts": alerts })).into_response())
}

#[derive(Debug, Deserialize)]
struct EvaluateQuery {
    /// Evaluate the windows holding this time (ms since the epoch); absent: now.
    at: Option<i64>,
}

async fn evaluate(
    State(c): State<Arc<Collector>>,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<EvaluateQuery>,
) -> Result<Response, ApiError> {
    c.authorize(&headers, &[Role::Admin]).await?;
    let outcome = c.evaluate_alerts(query.at.unwrap_or_else(crate::now_ms)).await.map_err(ApiError::storage)?;
    Ok(axum::Json(outcome).into_response())
}

async fn alert_rules(State(c): State<Arc<Collector>>, headers: HeaderMap) -> Result<Response, ApiError> {
    c.authorize(&headers, &[Role::Read]).await?;
    let rules = crate::alerts::evaluator::stored_rules(c.store()).await.map_err(ApiError::storage)?;
    Ok(axum::Json(serde_json::json!({ "rules": rules })).into_response())
}

async fn put_alert_rule(
    State(c): State<Arc<Collector>>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: Body,
) -> Result<Response, ApiError> {
    c.authorize(&headers, &[Role::Admin]).await?;
    let bytes = read_body(&c, body).await?;
    let mut value: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "malformed_rule", format!("not JSON: {e}")))?;
    if let Some(object) = value.as_object_mut() {
        object.insert("name".into(), name.clone().into());
    }
    let rule: Rule = serde_json::from_value(value)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "malformed_rule", format!("not an alert rule: {e}")))?;
    rule.validate().map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "malformed_rule", e))?;
    let body = serde_json::to_string(&rule).unwrap_or_default();
    c.store.put_alert_rule(name, body).await.map_err(ApiError::storage)?;
    Ok((StatusCode::OK, axum::Json(rule)).into_response())
}

async fn delete_alert_rule(
    State(c): State<Arc<Collector>>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    c.authorize(&headers, &[Role::Admin]).await?;
    if c.store.delete_alert_rule(name.clone()).await.map_err(ApiError::storage)? {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(ApiError::new(StatusCode::NOT_FOUND, "unknown_rule", format!("no alert rule is called {name:?}")))
    }
}

async fn metrics(State(c): State<Arc<Collector>>, headers: HeaderMap) -> Result<Response, ApiError> {
    if c.config.metrics_need_key {
        c.authorize(&headers, &[Role::Read]).await?;
    }
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], c.metrics.render()).into_response())
}
