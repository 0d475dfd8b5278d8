//! `Session`: a model loaded on the engine the runtime chose, with its telemetry.

use std::rc::Rc;

use js_sys::{Array, Object, Promise, Reflect};
use runtime::{Engine, Model, SessionOptions, Tensor, TensorData};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use crate::error::WebError;
use crate::feeds::{info_to_js, tensor_to_js, tensors_from_js};
use crate::options::Options;
use crate::page_telemetry::PageTelemetry;
use crate::{js, load};

/// A model ready to run. Create one with `Session.create`; call `release()` when done.
#[wasm_bindgen]
pub struct Session {
    inner: Option<Rc<Inner>>,
}

struct Inner {
    session: runtime::Session,
    sha256: String,
    telemetry: Option<Rc<PageTelemetry>>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").field("session", &self.inner.as_ref().map(|i| &i.session)).finish()
    }
}

#[wasm_bindgen]
impl Session {
    /// Loads a model (a URL, or its bytes) and prepares it on the engine `options.backend` allows.
    pub async fn create(
        #[wasm_bindgen(unchecked_param_type = "string | URL | ArrayBuffer | Uint8Array")] model: JsValue,
        #[wasm_bindgen(unchecked_param_type = "SessionOptions")] options: Option<js_sys::Object>,
    ) -> Result<Session, JsValue> {
        Ok(Session::create_inner(model, options.map_or(JsValue::UNDEFINED, JsValue::from)).await?)
    }

    async fn create_inner(source: JsValue, options: JsValue) -> Result<Session, WebError> {
        let options = Options::from_js(&options)?;
        let loaded = load::load(&source, &options.load).await?;
        let model = Model::from_bytes(&loaded.bytes)?;
        let adapter_hint = match options.backend {
            runtime::BackendChoice::Cpu => None,
            _ => js::webgpu_adapter().await,
        };
        let runtime_options =
            SessionOptions { backend: options.backend, dims: options.dims, adapter_hint, ..SessionOptions::default() };
        let session = runtime::Session::new(&model, &runtime_options).await?;
        let telemetry = match options.telemetry {
            None => None,
            Some(t) => {
                let metadata = model.metadata();
                // Names the page gives must be usable as they are; names read from the file are
                // made usable (the collector refuses others).
                let model_ref = telemetry::ModelRef {
                    name: t.model.clone().unwrap_or_else(|| {
                        telemetry::usable_name(metadata.get("name").map_or(model.graph_name(), String::as_str))
                    }),
                    version: t.version.clone().unwrap_or_else(|| match metadata.get("version") {
                        Some(version) => telemetry::usable_name(version),
                        None => model.model_version().to_string(),
                    }),
                    hash: format!("sha256:{}", loaded.sha256),
                };
                model_ref.validate().map_err(|e| WebError::bad_argument(format!("telemetry: {e}")))?;
                let widths: Vec<(&str, usize)> =
                    session.inputs().iter().map(|i| (i.name.as_str(), i.row_width().unwrap_or(0))).collect();
                Some(PageTelemetry::start(t, model_ref, &widths).await?)
            }
        };
        Ok(Session { inner: Some(Rc::new(Inner { session, sha256: loaded.sha256, telemetry })) })
    }

    fn inner(&self) -> Result<&Rc<Inner>, WebError> {
        self.inner.as_ref().ok_or_else(|| WebError::new("released", "this session was released"))
    }

    /// The session's telemetry, for the calls that need it.
    fn telemetry(&self) -> Result<&Rc<PageTelemetry>, WebError> {
        self.inner()?.telemetry.as_ref().ok_or_else(|| {
            WebError::new("telemetry", "this session has no telemetry: pass options.telemetry to Session.create")
        })
    }

    #[wasm_bindgen(getter, unchecked_return_type = "TensorInfo[]")]
    pub fn inputs(&self) -> Result<Array, JsValue> {
        Ok(self.inner()?.session.inputs().iter().map(info_to_js).collect())
    }

    #[wasm_bindgen(getter, unchecked_return_type = "TensorInfo[]")]
    pub fn outputs(&self) -> Result<Array, JsValue> {
        Ok(self.inner()?.session.outputs().iter().map(info_to_js).collect())
    }

    /// The engine that runs this session: `"webgpu"` or `"cpu"`.
    #[wasm_bindgen(getter, unchecked_return_type = "\"webgpu\" | \"cpu\"")]
    pub fn backend(&self) -> Result<String, JsValue> {
        Ok(match self.inner()?.session.engine() {
            Engine::Gpu => "webgpu",
            Engine::Cpu => "cpu",
        }
        .to_owned())
    }

    /// Why the session runs where it does: the GPU's refusal when it runs on the CPU, the adapter
    /// and the probe's agreement when it runs on the GPU.
    #[wasm_bindgen(getter, js_name = backendReason)]
    pub fn backend_reason(&self) -> Result<String, JsValue> {
        let report = self.inner()?.session.report();
        let adapter = report.adapter.as_deref().map(|a| format!(" (adapter: {a})")).unwrap_or_default();
        Ok(match report.engine {
            Engine::Cpu if report.refused.is_empty() => "the CPU engine was asked for".to_owned(),
            Engine::Cpu => {
                let reasons: Vec<String> = report.refused.iter().map(|(e, r)| format!("{e} refused: {r}")).collect();
                format!("{}{adapter}", reasons.join("; "))
            }
            Engine::Gpu => {
                let probe = report.probe.as_ref().map(|p| {
                    let outputs: Vec<String> = p.iter().map(|(name, c)| format!("{name}: {}", c.summary())).collect();
                    format!("; the probe run agreed with the CPU engine ({})", outputs.join(", "))
                });
                format!("the model passed the GPU gate{adapter}{}", probe.unwrap_or_default())
            }
        })
    }

    /// The full engine report (engine, adapter, refusals, probe comparison), as a plain object.
    #[wasm_bindgen(getter, unchecked_return_type = "EngineReport")]
    pub fn report(&self) -> Result<JsValue, JsValue> {
        serde_wasm_bindgen::to_value(self.inner()?.session.report())
            .map_err(|e| WebError::new("engine_failed", e.to_string()).into())
    }

    /// The model's SHA-256 (hex).
    #[wasm_bindgen(getter)]
    pub fn sha256(&self) -> Result<String, JsValue> {
        Ok(self.inner()?.sha256.clone())
    }

    /// Runs the model on `feeds` (inputs by name). The inputs are copied before this returns.
    #[wasm_bindgen(unchecked_return_type = "Promise<RunResult>")]
    pub fn run(
        &self,
        #[wasm_bindgen(unchecked_param_type = "Record<string, Feed>")] feeds: JsValue,
    ) -> Result<Promise, JsValue> {
        let inner = self.inner()?.clone();
        let tensors = tensors_from_js(&feeds, inner.session.inputs());
        Ok(future_to_promise(async move {
            let result = match tensors {
                Ok(tensors) => inner.run(tensors).await,
                Err(e) => Err(e),
            };
            if let (Err(e), Some(t)) = (&result, &inner.telemetry) {
                t.record_error(e);
            }
            Ok(result?)
        }))
    }

    /// Counts one application record against the reference profile: the fields the model's
    /// input was made from, by name (numbers; strings for categories; `null` for missing). For
    /// profiles that describe such records rather than the model's inputs, so that renamed
    /// fields, new categories and drift in fields the model sees encoded are caught.
    pub fn observe(
        &self,
        #[wasm_bindgen(unchecked_param_type = "Record<string, number | string | null>")] record: JsValue,
    ) -> Result<(), JsValue> {
        let telemetry = self.telemetry()?;
        if !record.is_object() || Array::is_array(&record) {
            return Err(
                WebError::bad_argument("observe: expected an object of fields, e.g. { region: \"north\" }").into()
            );
        }
        // Owned first (JS strings are copied out), borrowed as the summariser takes them.
        enum Field {
            Missing,
            Number(f64),
            Text(String),
        }
        let mut fields: Vec<(String, Field)> = Vec::new();
        for entry in Object::entries(record.unchecked_ref()).iter() {
            let entry: Array = entry.unchecked_into();
            let (name, value) = (entry.get(0).as_string().unwrap_or_default(), entry.get(1));
            let field = match (value.as_f64(), value.as_string()) {
                _ if value.is_null() || value.is_undefined() => Field::Missing,
                (Some(number), _) => Field::Number(number),
                (_, Some(text)) => Field::Text(text),
                _ => {
                    let kind = value.js_typeof().as_string().unwrap_or_default();
                    return Err(WebError::bad_argument(format!(
                        "observe: field `{name}` is of type {kind}; expected a number, a string or null"
                    ))
                    .into());
                }
            };
            fields.push((name, field));
        }
        let row: Vec<(&str, telemetry::Value<'_>)> = fields
            .iter()
            .map(|(name, field)| {
                let value = match field {
                    Field::Missing => telemetry::Value::Missing,
                    Field::Number(number) => telemetry::Value::Number(*number),
                    Field::Text(text) => telemetry::Value::Text(text),
                };
                (name.as_str(), value)
            })
            .collect();
        Ok(telemetry.observe(&row)?)
    }

    /// Sends the ground truth for a prediction: a class name (string) or a number.
    pub fn label(
        &self,
        #[wasm_bindgen(js_name = predictionId)] prediction_id: String,
        #[wasm_bindgen(unchecked_param_type = "string | number")] truth: JsValue,
    ) -> Result<(), JsValue> {
        let telemetry = self.telemetry()?;
        let truth = match (truth.as_string(), truth.as_f64()) {
            (Some(class), _) => telemetry::Truth::Class(class),
            (_, Some(value)) => telemetry::Truth::Value(value),
            _ => return Err(WebError::bad_argument("label: the truth must be a string (a class) or a number").into()),
        };
        Ok(telemetry.label(prediction_id, truth)?)
    }

    /// Seals what telemetry holds and sends it now; resolves with the telemetry counters once the
    /// pending batches are delivered or a delivery failed (they are retried later).
    #[wasm_bindgen(unchecked_return_type = "Promise<TelemetryStats | null>")]
    pub fn flush(&self) -> Result<Promise, JsValue> {
        let telemetry = self.inner()?.telemetry.clone();
        Ok(future_to_promise(async move {
            let Some(t) = telemetry else { return Ok(JsValue::NULL) };
            t.seal();
            t.deliver().await;
            Ok(t.stats())
        }))
    }

    /// Telemetry counters: records, batches sealed/delivered/pending, losses.
    #[wasm_bindgen(js_name = telemetryStats, unchecked_return_type = "TelemetryStats | null")]
    pub fn telemetry_stats(&self) -> Result<JsValue, JsValue> {
        Ok(self.inner()?.telemetry.as_ref().map_or(JsValue::NULL, |t| t.stats()))
    }

    /// Frees the model. Pending telemetry is sealed, saved and sent in the background.
    pub fn release(&mut self) {
        let Some(inner) = self.inner.take() else { return };
        if let Some(t) = inner.telemetry.clone() {
            t.seal();
            wasm_bindgen_futures::spawn_local(async move { t.deliver().await });
        }
    }
}

impl Inner {
    async fn run(&self, inputs: Vec<(String, Tensor)>) -> Result<JsValue, WebError> {
        // Copied before the run consumes them, and only when feature summaries will read them.
        let flat_inputs: Vec<telemetry::FlatTensor> = match &self.telemetry {
            Some(t) if t.wants_inputs() => inputs.iter().map(|(n, t)| flatten(n, t)).collect(),
            _ => Vec::new(),
        };
        let started = js::precise_ms();
        let outputs = self.session.run(inputs).await?;
        let latency_ms = js::precise_ms() - started;

        let ids = match &self.telemetry {
            None => Vec::new(),
            Some(t) => {
                let summarised = t
                    .summarised_output(outputs.iter().map(|(n, _)| n.as_str()))
                    .and_then(|name| outputs.iter().find(|(n, _)| n == name))
                    .map(|(n, t)| flatten(n, t));
                let inputs: Vec<_> = flat_inputs.iter().map(telemetry::FlatTensor::as_flat).collect();
                let engine = match self.session.engine() {
                    Engine::Gpu => telemetry::EngineKind::Gpu,
                    Engine::Cpu => telemetry::EngineKind::Cpu,
                };
                let latency_us = (latency_ms * 1000.0).clamp(0.0, u32::MAX as f64) as u32;
                t.record(&telemetry::Run {
                    inputs: &inputs,
                    output: summarised.as_ref().map(telemetry::FlatTensor::as_flat),
                    latency_us,
                    engine,
                })
            }
        };
        let ids = if ids.is_empty() { vec![js::random_id()] } else { ids };

        let result = Object::new();
        let outputs_js = Object::new();
        for (name, tensor) in &outputs {
            let _ = Reflect::set(&outputs_js, &name.as_str().into(), &tensor_to_js(name, tensor));
        }
        let ids_js: Array = ids.iter().map(|id| JsValue::from(id.as_str())).collect();
        for (key, value) in [
            ("outputs", JsValue::from(outputs_js)),
            ("predictionId", ids[0].as_str().into()),
            ("predictionIds", ids_js.into()),
            ("latencyMs", latency_ms.into()),
        ] {
            let _ = Reflect::set(&result, &key.into(), &value);
        }
        Ok(result.into())
    }
}

/// A tensor as telemetry reads it.
fn flatten(name: &str, tensor: &Tensor) -> telemetry::FlatTensor {
    telemetry::FlatTensor {
        name: name.to_owned(),
        shape: tensor.shape().to_vec(),
        values: tensor.data().to_f64_vec(),
        integral: !matches!(tensor.data(), TensorData::F32(_) | TensorData::F64(_)),
    }
}
