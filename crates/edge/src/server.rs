//! The host's HTTP API: the Open Inference Protocol (KServe v2 REST), and the modules' routes.
//!
//! | Route | |
//! |---|---|
//! | `GET /v2/health/live`, `GET /v2/health/ready` | 200 while serving (ready: every model loaded) |
//! | `GET /v2` | server metadata |
//! | `GET /v2/models/{m}[/versions/{v}]` | model metadata: inputs and outputs with datatypes and shapes (-1: free) |
//! | `GET /v2/models/{m}[/versions/{v}]/ready` | 200 when the model is served |
//! | `GET /v2/modules` | each module: route, hash, limits, and why its last reload failed |
//! | `{route}`, `{route}/…` (any method) | the module mounted there answers (see `wasm::module`); with telemetry, `x-sextant-prediction-ids` names its predictions |
//! | `POST /v2/models/{m}[/versions/{v}]/infer` | `{"inputs": [{name, shape, datatype, data}], "outputs"?: [{name}]}`; with telemetry the answer's `parameters.prediction_ids` name each row's prediction (for labels) |
//!
//! Refusals are `{"error": "<message>"}`: 400 for a request that does not fit the model, 404 for an
//! unknown model or version, 413 for a body over the limit, 503 when the pool (or the module
//! instance pool) is full, 504 when an inference or a module runs past its timeout, 500 when a
//! module traps or passes its memory cap.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Json, Router};

use crate::auth::AuthConfig;
use crate::config::Config;
use crate::oip::{self, InferRequest, InferResponse, ModelMetadata, TensorMetadata};
use crate::pool::Pool;
use crate::refusal::Refusal;
use crate::registry::{LoadError, Registry, Served};
use crate::wasm::Modules;

/// A loaded host: models, modules and the worker pool, ready to serve.
pub struct Host {
    registry: Arc<Registry>,
    modules: Arc<Modules>,
    pool: Arc<Pool>,
    max_body_bytes: usize,
    /// Inference bodies being read and decoded at once (as many as the pool can hold): beyond,
    /// 503 before a byte is read, so a flood of big bodies costs a bounded memory.
    bodies: Arc<tokio::sync::Semaphore>,
    /// How long a body may take to arrive: the inference timeout.
    body_timeout: Duration,
    reload_every: Option<Duration>,
    auth: AuthConfig,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host").field("registry", &self.registry).finish_non_exhaustive()
    }
}

impl Host {
    /// Loads the configured models (the GPU gate runs here, once per model) and compiles the
    /// modules. Any failure stops the start, naming the model or module.
    pub async fn load(config: &Config) -> Result<Host, LoadError> {
        let registry = Arc::new(Registry::load(config).await?);
        let pool = Arc::new(Pool::new(&config.limits));
        let modules = Arc::new(Modules::load(config, registry.clone(), pool.clone()).await?);
        let reload_every = (config.limits.reload_ms > 0).then(|| Duration::from_millis(config.limits.reload_ms));
        let bodies = Arc::new(tokio::sync::Semaphore::new((config.limits.workers + config.limits.queue).max(1)));
        let body_timeout = Duration::from_millis(config.limits.timeout_ms);
        let max_body_bytes = config.limits.max_body_bytes;
        let auth = config.auth.clone();
        Ok(Host { registry, modules, pool, max_body_bytes, bodies, body_timeout, reload_every, auth })
    }

    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// The OIP routes and each module's route, each group behind its tokens when `[auth]` lists
    /// some.
    pub fn router(self: &Arc<Self>) -> Router {
        let open = Router::new()
            .route("/v2/health/live", get(|| async { Json(serde_json::json!({ "live": true })) }))
            .route("/v2/health/ready", get(|| async { Json(serde_json::json!({ "ready": true })) }))
            .route("/v2", get(server_metadata));
        let admin = Router::new().route("/v2/modules", get(modules));
        let models = Router::new()
            .route("/v2/models/{model}", get(metadata))
            .route("/v2/models/{model}/ready", get(ready))
            .route("/v2/models/{model}/infer", post(infer))
            .route("/v2/models/{model}/versions/{version}", get(metadata))
            .route("/v2/models/{model}/versions/{version}/ready", get(ready))
            .route("/v2/models/{model}/versions/{version}/infer", post(infer))
            .layer(DefaultBodyLimit::max(self.max_body_bytes));
        let mut modules = Router::new();
        for (route, name) in self.modules.routes() {
            let handler = move |State(host): State<Arc<Host>>, request: axum::extract::Request| async move {
                host.call_module(&name, request).await
            };
            // The module reads its body itself, within the same limit.
            modules = modules
                .route(&route, any(handler.clone()).layer(DefaultBodyLimit::disable()))
                .route(&format!("{route}/{{*rest}}"), any(handler).layer(DefaultBodyLimit::disable()));
        }
        open.merge(self.guarded(admin, "admin"))
            .merge(self.guarded(models, "inference"))
            .merge(self.guarded(modules, "modules"))
            .fallback(|| async { Refusal(StatusCode::NOT_FOUND, "no such route; see /v2 for the API".to_owned()) })
            .with_state(self.clone())
    }

    /// `routes` behind the group's tokens, if `[auth]` names the group (a group without routes,
    /// no modules, has nothing to wrap: axum refuses a route layer there).
    fn guarded(&self, routes: Router<Arc<Host>>, group: &'static str) -> Router<Arc<Host>> {
        match self.auth.gate(group) {
            Some(gate) if routes.has_routes() => {
                routes.route_layer(axum::middleware::from_fn_with_state(gate, crate::auth::require))
            }
            _ => routes,
        }
    }

    /// Serves `request` on the module `name` as its route does (for embedders and benchmarks).
    pub async fn call_module(&self, name: &str, request: axum::extract::Request) -> Response {
        self.modules.handle(name, request).await.into_response()
    }

    /// Starts checking model and module files for changes (when `limits.reload_ms` > 0); stops
    /// when the handle is aborted.
    pub fn watch(&self) -> Option<tokio::task::JoinHandle<()>> {
        let every = self.reload_every?;
        Some(crate::reload::spawn(self.registry.clone(), self.modules.clone(), every))
    }

    /// At shutdown: each model's last feature summary, then what telemetry can be delivered
    /// within `timeout`; the rest stays spooled for the next start.
    pub async fn flush(&self, timeout: Duration) {
        self.registry.flush(timeout).await;
    }
}

/// Loads the configured models and modules and serves until `shutdown` resolves.
pub async fn serve(
    config: &Config,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), LoadError> {
    let host = Arc::new(Host::load(config).await?);
    let watcher = host.watch();
    if let Err(e) = serve::serve(listener, host.router(), config.connections, shutdown).await {
        tracing::error!(error = %e, "the edge host stopped serving");
    }
    if let Some(watcher) = watcher {
        watcher.abort();
    }
    host.flush(Duration::from_secs(5)).await;
    Ok(())
}

async fn server_metadata() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "name": "sextant-edge", "version": env!("CARGO_PKG_VERSION"), "extensions": [] }))
}

async fn modules(State(host): State<Arc<Host>>) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "modules": host.modules.status() }))
}

/// `{model}` or `{model}/versions/{version}` from the path.
fn find(host: &Host, path: &[String]) -> Result<Arc<Served>, Refusal> {
    let (name, version) = (path[0].as_str(), path.get(1).map(String::as_str));
    host.registry.get(name, version).ok_or_else(|| {
        let known: Vec<String> =
            host.registry.all().iter().map(|m| format!("{} (version {})", m.name, m.version)).collect();
        let asked = version.map_or_else(|| format!("model {name:?}"), |v| format!("model {name:?} version {v:?}"));
        Refusal(StatusCode::NOT_FOUND, format!("{asked} is not served here; served: {}", known.join(", ")))
    })
}

async fn metadata(State(host): State<Arc<Host>>, Path(path): Path<Vec<String>>) -> Result<Response, Refusal> {
    let served = find(&host, &path)?;
    Ok(Json(ModelMetadata {
        name: served.name.clone(),
        versions: vec![served.version.clone()],
        platform: "onnx",
        inputs: served.session.inputs().iter().map(TensorMetadata::of).collect(),
        outputs: served.session.outputs().iter().map(TensorMetadata::of).collect(),
    })
    .into_response())
}

async fn ready(State(host): State<Arc<Host>>, Path(path): Path<Vec<String>>) -> Result<Response, Refusal> {
    let served = find(&host, &path)?;
    Ok(Json(serde_json::json!({ "name": served.name, "ready": true })).into_response())
}

async fn infer(
    State(host): State<Arc<Host>>,
    Path(path): Path<Vec<String>>,
    body: axum::body::Body,
) -> Result<Response, Refusal> {
    let served = find(&host, &path)?;
    let Ok(reading) = host.bodies.clone().try_acquire_owned() else {
        return Err(Refusal(
            StatusCode::SERVICE_UNAVAILABLE,
            "as many inference requests as the pool holds are being read; retry later".to_owned(),
        ));
    };
    // Over `limits.max_body_bytes` (413), unreadable, or trickling in past the inference
    // timeout while it holds a slot (408): the protocol's error body, not axum's text.
    let read = tokio::time::timeout(host.body_timeout, axum::body::to_bytes(body, host.max_body_bytes));
    let body = read
        .await
        .map_err(|_| {
            Refusal(StatusCode::REQUEST_TIMEOUT, format!("the body did not arrive within {:?}", host.body_timeout))
        })?
        .map_err(|_| {
            Refusal(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the body is over the limit of {} bytes (or was cut off)", host.max_body_bytes),
            )
        })?;
    // A request this model cannot take is telemetry too (`rejected_input`).
    let rejected = |message: String| {
        if let Some(recording) = &served.recording {
            recording.error(telemetry::ErrorKind::RejectedInput, &message);
        }
        Refusal(StatusCode::BAD_REQUEST, message)
    };
    let mut request: InferRequest =
        serde_json::from_slice(&body).map_err(|e| rejected(format!("not an inference request: {e}")))?;
    drop(body);
    // Each input's scalars go as its tensor is made.
    let inputs = std::mem::take(&mut request.inputs)
        .into_iter()
        .map(|input| {
            let name = input.name.clone();
            oip::tensor_of(input).map(|t| (name, t))
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(rejected)?;
    // What waits from here on is the pool's to bound.
    drop(reading);
    let wanted: Option<Vec<String>> = request.outputs.map(|o| o.into_iter().map(|o| o.name).collect());
    if let Some(wanted) = &wanted
        && let Some(unknown) = wanted.iter().find(|w| !served.session.outputs().iter().any(|o| &o.name == *w))
    {
        let names: Vec<&str> = served.session.outputs().iter().map(|o| o.name.as_str()).collect();
        return Err(rejected(format!("unknown output `{unknown}`; the model has {names:?}")));
    }
    let done = served.infer(&host.pool, inputs).await.map_err(Refusal::from)?;
    let (outputs, prediction_ids) = (done.outputs, done.prediction_ids);
    let outputs = outputs
        .iter()
        .filter(|(name, _)| wanted.as_ref().is_none_or(|w| w.contains(name)))
        .map(|(name, tensor)| oip::output_of(name, tensor))
        .collect();
    Ok(Json(InferResponse {
        model_name: served.name.clone(),
        model_version: served.version.clone(),
        id: request.id,
        parameters: prediction_ids.map(|ids| serde_json::json!({ "prediction_ids": ids })),
        outputs,
    })
    .into_response())
}
