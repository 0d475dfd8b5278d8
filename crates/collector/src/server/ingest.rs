//! `POST /v1/batches`, `POST /v1/beacon`, `POST /v1/labels`: admission, bounded reads and
//! decodes, validation, storage.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use telemetry::{DecodeError, Diagnostic, Encoding, Format, Label, Record};
use tokio::sync::OwnedSemaphorePermit;

use super::error::{ApiError, ApiQuery};
use super::{Collector, MAX_ID_BYTES};
use crate::acceptance::Acceptance;
use crate::admission::{Refused, Slot};
use crate::keys::{KeyInfo, Role};
use crate::metrics::Metrics;
use crate::store::{Incoming, Ingested, ModelLabels};

impl Collector {
    /// A slot for one upload, or 429: bounded work instead of a growing queue.
    pub(super) fn admit(&self) -> Result<Slot, ApiError> {
        self.admission.slot(self.metrics.in_flight()).map_err(|e| self.overloaded("overloaded", e))
    }

    /// Memory for decoding `decoded_bytes` of `encoding`, from the decode budget, or 429: the
    /// uploads being decoded at once never hold more than the budget, whatever their shape.
    pub(super) fn reserve_decode(
        &self,
        decoded_bytes: usize,
        encoding: Encoding,
    ) -> Result<OwnedSemaphorePermit, ApiError> {
        self.admission.memory(decoded_bytes, encoding).map_err(|e| self.overloaded("decode_budget", e))
    }

    /// What this upload's records are judged by, from the collector's clock now.
    pub(super) fn acceptance(&self) -> Acceptance {
        Acceptance::new(crate::now_ms(), self.config.accept_past, self.config.accept_future)
    }

    pub(super) fn overloaded(&self, code: &'static str, refused: Refused) -> ApiError {
        self.metrics.refused("overloaded");
        ApiError::new(StatusCode::TOO_MANY_REQUESTS, code, refused.to_string()).retry_after(self.config.retry_after_s)
    }
}

/// The format a request's headers declare.
pub(super) fn format_of(headers: &HeaderMap) -> Result<Format, ApiError> {
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
pub(super) async fn read_body(collector: &Collector, body: Body) -> Result<axum::body::Bytes, ApiError> {
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

pub(super) fn decode_error(collector: &Collector, e: DecodeError) -> ApiError {
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

pub(super) fn check_id(what: &str, value: &str) -> Result<(), String> {
    match value.len() {
        0 => Err(format!("{what} is empty")),
        n if n > MAX_ID_BYTES => Err(format!("{what} is {n} bytes, over the limit of {MAX_ID_BYTES}")),
        _ => Ok(()),
    }
}

pub(super) async fn ingest(
    State(c): State<Arc<Collector>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let key = c.authorize(&headers, &[Role::Ingest]).await?;
    let format = format_of(&headers).inspect_err(|_| c.metrics.refused("unsupported_media_type"))?;
    store_batch(&c, key, format, body).await
}

/// What `navigator.sendBeacon` can send: no headers, so the ingest key and the encoding come in
/// the query (`?key=…&encoding=msgpack|json`). Otherwise the same as `POST /v1/batches`.
#[derive(Deserialize)]
pub(super) struct BeaconQuery {
    key: Option<String>,
    encoding: Option<String>,
}

pub(super) async fn beacon(
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

pub(super) async fn store_batch(c: &Collector, key: KeyInfo, format: Format, body: Body) -> Result<Response, ApiError> {
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
    if !key.scope.allows(&batch.model.name) {
        c.metrics.refused("forbidden");
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "model_not_allowed",
            format!("key {:?} may write {}; this batch is for model {:?}", key.name, key.scope, batch.model.name),
        ));
    }
    let mut acceptance = c.acceptance();
    let (batch, rejected) = batch.partition_by(|record| acceptance.check(record));
    let batch_id = batch.batch_id.clone();
    let (model_name, model_version) = (batch.model.name.clone(), batch.model.version.clone());
    let counts = RecordCounts::of(&batch.records);
    let accepted = batch.records.len();
    let started = Instant::now();
    let outcome = c
        .store
        .ingest(Incoming {
            batch,
            rejected: rejected.len() as u64,
            key_id: key.id,
            max_models: c.config.max_model_versions_per_key,
        })
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
        Ingested::ModelLimit => {
            c.metrics.refused("forbidden");
            let limit = c.config.max_model_versions_per_key;
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "model_limit",
                format!(
                    "key {:?} has registered {limit} model versions (name, version, hash), the most one key may \
                     (max_model_versions_per_key); model {:?} version {:?} is new",
                    key.name, model_name, model_version
                ),
            ));
        }
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
    pub(super) fn of(records: &[Record]) -> RecordCounts {
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

    pub(super) fn report(&self, metrics: &Metrics) {
        metrics.records("prediction", self.predictions);
        metrics.records("features", self.features);
        metrics.records("label", self.labels);
        metrics.records("error", self.errors);
    }
}

/// The body of `POST /v1/labels`: ground truth for predictions of `model` (by name, any
/// version). Without a model, each label is for the one model its prediction is stored under.
#[derive(Debug, Serialize, Deserialize)]
pub struct LabelUpload {
    pub labels: Vec<Label>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
}

/// What `POST /v1/labels` answers.
#[derive(Debug, Serialize, Deserialize)]
pub struct LabelsReply {
    pub accepted: usize,
    pub rejected: Vec<Diagnostic>,
}

pub(super) async fn labels(
    State(c): State<Arc<Collector>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let key = c.authorize(&headers, &[Role::Ingest]).await?;
    let _slot = c.admit()?;
    let format = format_of(&headers)?;
    let bytes = read_body(&c, body).await?;
    let upload: LabelUpload = decode_labels(&c, &bytes, format)?;
    if let Some(model) = &upload.model {
        telemetry::check_name("model name", model).map_err(|message| {
            c.metrics.refused("malformed");
            ApiError::new(StatusCode::BAD_REQUEST, "malformed_labels", message)
        })?;
        if !key.scope.allows(model) {
            c.metrics.refused("forbidden");
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "model_not_allowed",
                format!("key {:?} may write {}; these labels are for model {model:?}", key.name, key.scope),
            ));
        }
    }
    let mut valid = Vec::with_capacity(upload.labels.len());
    let mut rejected = Vec::new();
    let mut acceptance = c.acceptance();
    for (index, label) in upload.labels.into_iter().enumerate() {
        let record = Record::Label(label);
        match record.validate().and_then(|()| acceptance.check(&record)) {
            Err(reason) => rejected.push(Diagnostic { index, reason }),
            Ok(()) => {
                if let Record::Label(label) = record {
                    valid.push((index, label));
                }
            }
        }
    }
    let valid = by_model(&c, &key, upload.model, valid, &mut rejected).await?;
    rejected.sort_by_key(|d| d.index);
    let accepted = valid.values().map(Vec::len).sum();
    let started = Instant::now();
    c.store.put_labels(valid).await.map_err(ApiError::storage)?;
    c.metrics.storage("labels", started.elapsed().as_secs_f64());
    c.metrics.records("label", accepted as u64);
    if !rejected.is_empty() {
        c.metrics.rejected_records("invalid", rejected.len() as u64);
    }
    Ok(axum::Json(LabelsReply { accepted, rejected }).into_response())
}

/// Each label under its model: the upload's, or else the one model its prediction is stored
/// under, if this key may write it. Without a model named, a label for a prediction not stored
/// (yet), or stored under several models, is refused: its model is not known.
async fn by_model(
    c: &Collector,
    key: &KeyInfo,
    model: Option<String>,
    labels: Vec<(usize, Label)>,
    rejected: &mut Vec<Diagnostic>,
) -> Result<ModelLabels, ApiError> {
    if let Some(model) = model {
        return Ok(ModelLabels::from([(model, labels.into_iter().map(|(_, label)| label).collect())]));
    }
    let ids = labels.iter().map(|(_, l)| l.prediction_id.clone()).collect();
    let models = c.store.prediction_models(ids).await.map_err(ApiError::storage)?;
    let mut by_model = ModelLabels::new();
    for (index, label) in labels {
        let id = &label.prediction_id;
        let reason = match models.get(id).map(Vec::as_slice).unwrap_or_default() {
            [model] if key.scope.allows(model) => {
                by_model.entry(model.clone()).or_default().push(label);
                continue;
            }
            [model] => format!("prediction {id:?} is of model {model:?}; this key may write {}", key.scope),
            [] => format!(
                "prediction {id:?} is not stored (yet): name its model (\"model\" in the upload) to label it ahead"
            ),
            several => format!(
                "prediction {id:?} is stored under models {}: name the one labelled (\"model\" in the upload)",
                several.join(", ")
            ),
        };
        rejected.push(Diagnostic { index, reason });
    }
    Ok(by_model)
}

/// Decodes a label upload with the bounds of batches: inflated within the limits, its labels
/// counted before any is built, its memory reserved.
pub(super) fn decode_labels(c: &Collector, body: &[u8], format: Format) -> Result<LabelUpload, ApiError> {
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
