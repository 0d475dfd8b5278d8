//! The host's HTTP API: the Open Inference Protocol (KServe v2 REST).
//!
//! | Route | |
//! |---|---|
//! | `GET /v2/health/live`, `GET /v2/health/ready` | 200 while serving (ready: every model loaded) |
//! | `GET /v2` | server metadata |
//! | `GET /v2/models/{m}[/versions/{v}]` | model metadata: inputs and outputs with datatypes and shapes (-1: free) |
//! | `GET /v2/models/{m}[/versions/{v}]/ready` | 200 when the model is served |
//! | `POST /v2/models/{m}[/versions/{v}]/infer` | `{"inputs": [{name, shape, datatype, data}], "outputs"?: [{name}]}`; with telemetry the answer's `parameters.prediction_ids` name each row's prediction (for labels) |
//!
//! Refusals are `{"error": "<message>"}`: 400 for a request that does not fit the model, 404 for an
//! unknown model or version, 413 for a body over the limit, 503 when the pool is full, 504 when an
//! inference runs past its timeout.

use std::future::Future;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};

use crate::config::Config;
use crate::oip::{self, InferRequest, InferResponse, ModelMetadata, TensorMetadata};
use crate::pool::{Pool, PoolError};
use crate::registry::{Registry, Served};

struct Host {
    registry: Arc<Registry>,
    pool: Pool,
}

/// An OIP error body with its status.
struct Refusal(StatusCode, String);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        (self.0, Json(serde_json::json!({ "error": self.1 }))).into_response()
    }
}

impl From<PoolError> for Refusal {
    fn from(e: PoolError) -> Refusal {
        let status = match &e {
            PoolError::Busy { .. } => StatusCode::SERVICE_UNAVAILABLE,
            PoolError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            PoolError::Runtime(runtime::Error::Engine { .. } | runtime::Error::EngineRefused { .. }) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
            PoolError::Runtime(_) => StatusCode::BAD_REQUEST,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Refusal(status, e.to_string())
    }
}

/// The routes over loaded models.
pub fn router(config: &Config, registry: Arc<Registry>) -> Router {
    let host = Arc::new(Host { registry, pool: Pool::new(&config.limits) });
    Router::new()
        .route("/v2/health/live", get(|| async { Json(serde_json::json!({ "live": true })) }))
        .route("/v2/health/ready", get(|| async { Json(serde_json::json!({ "ready": true })) }))
        .route("/v2", get(server_metadata))
        .route("/v2/models/{model}", get(metadata))
        .route("/v2/models/{model}/ready", get(ready))
        .route("/v2/models/{model}/infer", post(infer))
        .route("/v2/models/{model}/versions/{version}", get(metadata))
        .route("/v2/models/{model}/versions/{version}/ready", get(ready))
        .route("/v2/models/{model}/versions/{version}/infer", post(infer))
        .fallback(|| async { Refusal(StatusCode::NOT_FOUND, "no such route; see /v2 for the API".to_owned()) })
        .layer(DefaultBodyLimit::max(config.limits.max_body_bytes))
        .with_state(host)
}

/// Loads the configured models and serves until `shutdown` resolves.
pub async fn serve(
    config: &Config,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), crate::LoadError> {
    let registry = Arc::new(Registry::load(config).await?);
    let app = router(config, registry.clone());
    if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(shutdown).await {
        tracing::error!(error = %e, "the edge host stopped serving");
    }
    // What is not delivered in time stays spooled for the next start.
    for served in registry.iter() {
        if let Some(recording) = &served.recording {
            recording.flush(std::time::Duration::from_secs(5)).await;
        }
    }
    Ok(())
}

async fn server_metadata() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "name": "sextant-edge", "version": env!("CARGO_PKG_VERSION"), "extensions": [] }))
}

/// `{model}` or `{model}/versions/{version}` from the path.
fn find<'a>(host: &'a Host, path: &[String]) -> Result<&'a Arc<Served>, Refusal> {
    let (name, version) = (path[0].as_str(), path.get(1).map(String::as_str));
    host.registry.get(name, version).ok_or_else(|| {
        let known: Vec<String> = host.registry.iter().map(|m| format!("{} (version {})", m.name, m.version)).collect();
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
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Refusal> {
    let served = find(&host, &path)?.clone();
    // Over `limits.max_body_bytes` (413) or unreadable: the protocol's error body, not axum's text.
    let body = body.map_err(|e| Refusal(e.status(), e.body_text()))?;
    // A request this model cannot take is telemetry too (`rejected_input`).
    let rejected = |message: String| {
        if let Some(recording) = &served.recording {
            recording.error(telemetry::ErrorKind::RejectedInput, &message);
        }
        Refusal(StatusCode::BAD_REQUEST, message)
    };
    let request: InferRequest =
        serde_json::from_slice(&body).map_err(|e| rejected(format!("not an inference request: {e}")))?;
    let inputs = request
        .inputs
        .iter()
        .map(|input| oip::tensor_of(input).map(|t| (input.name.clone(), t)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(rejected)?;
    let wanted: Option<Vec<String>> = request.outputs.map(|o| o.into_iter().map(|o| o.name).collect());
    if let Some(wanted) = &wanted
        && let Some(unknown) = wanted.iter().find(|w| !served.session.outputs().iter().any(|o| &o.name == *w))
    {
        let names: Vec<&str> = served.session.outputs().iter().map(|o| o.name.as_str()).collect();
        return Err(rejected(format!("unknown output `{unknown}`; the model has {names:?}")));
    }
    let recorded_inputs = served.recording.as_ref().map(|r| r.inputs(&inputs)).unwrap_or_default();
    let started = tokio::time::Instant::now();
    let outputs = match host.pool.run(served.session.clone(), inputs).await {
        Ok(outputs) => outputs,
        Err(e) => {
            let refusal = Refusal::from(e);
            if let Some(recording) = &served.recording {
                let kind = match refusal.0 {
                    StatusCode::BAD_REQUEST => telemetry::ErrorKind::RejectedInput,
                    _ => telemetry::ErrorKind::Inference,
                };
                recording.error(kind, &refusal.1);
            }
            return Err(refusal);
        }
    };
    let gpu = served.session.engine() == runtime::Engine::Gpu;
    let prediction_ids = served.recording.as_ref().map(|r| r.run(&recorded_inputs, &outputs, started.elapsed(), gpu));
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
