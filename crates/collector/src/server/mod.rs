//! The HTTP API (axum).
//!
//! | Route | Key | |
//! |---|---|---|
//! | `POST /v1/batches` | ingest | a telemetry batch (JSON or MessagePack, optionally gzip) |
//! | `POST /v1/beacon?key=&encoding=` | ingest (in the query) | the same, from `navigator.sendBeacon` (no headers) |
//! | `POST /v1/labels` | ingest | `{"model", "labels": [..]}`: ground truth for a model's predictions |
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
//! Routes are grouped by file: `ingest.rs` (batches, beacons, labels), `profiles.rs`,
//! `history.rs` (models, batches, records), `monitoring.rs` (drift, integrity, performance,
//! alerts, rules); keys are checked in `auth.rs`, refusals built in `error.rs`.
//!
//! Every refusal is `{"error": {"code": .., "message": ..}}` with a 4xx or 5xx status; 429 and 503
//! carry `Retry-After`.

mod auth;
mod error;
mod history;
mod ingest;
mod monitoring;
mod profiles;

pub use error::ApiError;
pub use ingest::{IngestReply, LabelUpload, LabelsReply};

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::admission::Admission;
use crate::config::Config;
use crate::keys::{KeyInfo, Role};
use crate::metrics::Metrics;
use crate::store::Store;
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
            admission: Admission::new(
                config.max_in_flight,
                config.max_reads_in_flight,
                config.decode_budget_bytes,
                config.max_decoded_bytes,
            ),
            health: Arc::default(),
            config,
            metrics: Metrics::default(),
            key_cache: RwLock::default(),
        })
    }

    /// The routes, with CORS for the configured origins.
    pub fn router(self: &Arc<Self>) -> Router {
        let router = Router::new()
            .route("/v1/batches", post(ingest::ingest).get(history::batches))
            .route("/v1/beacon", post(ingest::beacon))
            .route("/v1/labels", post(ingest::labels))
            .route("/v1/models", get(history::models))
            .route(
                "/v1/models/{model}/versions/{version}/profile",
                get(profiles::get_profile).put(profiles::put_profile),
            )
            .route("/v1/models/{model}/versions/{version}/{kind}", get(history::records))
            .route("/v1/models/{model}/drift", get(monitoring::drift))
            .route("/v1/models/{model}/integrity", get(monitoring::integrity))
            .route("/v1/models/{model}/performance", get(monitoring::performance))
            .route("/v1/models/{model}/alerts", get(monitoring::model_alerts))
            .route("/v1/alerts", get(monitoring::all_alerts))
            .route("/v1/alerts/evaluate", post(monitoring::evaluate))
            .route("/v1/alert-rules", get(monitoring::alert_rules))
            .route(
                "/v1/alert-rules/{name}",
                axum::routing::put(monitoring::put_alert_rule).delete(monitoring::delete_alert_rule),
            )
            .merge(crate::dashboard::routes())
            .route("/healthz", get(healthz))
            .route("/metrics", get(metrics))
            .layer(axum::middleware::from_fn_with_state(self.clone(), read_slot))
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

/// Serves until `shutdown` resolves (connections bounded by `config.connections`); requests in
/// progress finish first. Alert rules are evaluated and webhooks delivered in the background
/// meanwhile.
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
    let served = serve::serve(listener, collector.router(), collector.config.connections, shutdown).await;
    evaluator.abort();
    webhooks.abort();
    compactor.abort();
    served
}

/// How long a read waits for a read slot before 503.
const READ_WAIT: Duration = Duration::from_secs(5);

/// Every `GET /v1/…` holds a read slot (`max_reads_in_flight`) while it is answered: reads queue
/// briefly and are then refused, instead of opening database work without bound. The dashboard's
/// files, `/healthz` and `/metrics` come from memory and take none.
async fn read_slot(
    State(c): State<Arc<Collector>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if request.method() != Method::GET || !request.uri().path().starts_with("/v1/") {
        return next.run(request).await;
    }
    match c.admission.read(READ_WAIT).await {
        Ok(_slot) => next.run(request).await,
        Err(refused) => {
            c.metrics.refused("overloaded");
            ApiError::new(axum::http::StatusCode::SERVICE_UNAVAILABLE, "reads_busy", refused.to_string())
                .retry_after(c.config.retry_after_s)
                .into_response()
        }
    }
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

async fn metrics(State(c): State<Arc<Collector>>, headers: HeaderMap) -> Result<Response, ApiError> {
    if c.config.metrics_need_key {
        c.authorize(&headers, &[Role::Read]).await?;
    }
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], c.metrics.render()).into_response())
}
