//! `SessionOptions` and `TelemetryOptions` from the page's object.

use std::collections::BTreeMap;

use js_sys::Function;
use runtime::BackendChoice;
use serde::Deserialize;
use wasm_bindgen::{JsCast, JsValue};

use crate::error::WebError;
use crate::js;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Raw {
    backend: Option<String>,
    #[serde(default)]
    dims: BTreeMap<String, u64>,
    sha256: Option<String>,
    #[serde(default)]
    cache: bool,
    telemetry: Option<TelemetryOptions>,
}

#[derive(Debug)]
pub(crate) struct Options {
    pub backend: BackendChoice,
    pub dims: BTreeMap<String, u64>,
    pub load: LoadOptions,
    pub telemetry: Option<TelemetryOptions>,
}

#[derive(Debug, Default)]
pub(crate) struct LoadOptions {
    pub on_progress: Option<Function>,
    /// Lowercase hex.
    pub sha256: Option<String>,
    pub cache: bool,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TelemetryOptions {
    pub collector: String,
    pub key: String,
    pub model: Option<String>,
    pub version: Option<String>,
    pub node: Option<String>,
    pub output: Option<String>,
    pub classes: Option<Vec<String>>,
    #[serde(default)]
    pub profile: ProfileSource,
    pub max_records: Option<usize>,
    pub max_age_ms: Option<i64>,
    #[serde(default = "yes")]
    pub persist: bool,
    /// Raw values kept per feature and summary (0: none).
    #[serde(default)]
    pub samples: usize,
}

fn yes() -> bool {
    true
}

/// Where feature summaries get their reference profile.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum ProfileSource {
    /// `true`: fetch it from the collector; `false`: no feature summaries.
    Fetch(bool),
    Given(Box<telemetry::Profile>),
}

impl Default for ProfileSource {
    fn default() -> Self {
        ProfileSource::Fetch(true)
    }
}

impl Options {
    pub(crate) fn from_js(value: &JsValue) -> Result<Options, WebError> {
        if value.is_undefined() || value.is_null() {
            return Options::from_raw(Raw::default(), None);
        }
        if !value.is_object() {
            return Err(WebError::bad_argument("options must be an object"));
        }
        let raw: Raw = serde_wasm_bindgen::from_value(value.clone())
            .map_err(|e| WebError::bad_argument(format!("options: {e}")))?;
        let on_progress = match js::get(value, "onProgress") {
            None => None,
            Some(f) => Some(
                f.dyn_into::<Function>()
                    .map_err(|_| WebError::bad_argument("options.onProgress must be a function"))?,
            ),
        };
        Options::from_raw(raw, on_progress)
    }

    fn from_raw(raw: Raw, on_progress: Option<Function>) -> Result<Options, WebError> {
        let backend = match raw.backend.as_deref() {
            None | Some("auto") => BackendChoice::Auto,
            Some("webgpu" | "gpu") => BackendChoice::Gpu,
            Some("cpu" | "wasm") => BackendChoice::Cpu,
            Some(other) => {
                return Err(WebError::bad_argument(format!(
                    "options.backend must be \"auto\", \"webgpu\" or \"cpu\", got {other:?}"
                )));
            }
        };
        let sha256 = match raw.sha256 {
            None => None,
            Some(hex) if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) => {
                Some(hex.to_ascii_lowercase())
            }
            Some(other) => {
                return Err(WebError::bad_argument(format!("options.sha256 must be 64 hex digits, got {other:?}")));
            }
        };
        if let Some(t) = &raw.telemetry {
            if !(t.collector.starts_with("http://") || t.collector.starts_with("https://")) {
                return Err(WebError::bad_argument(format!(
                    "options.telemetry.collector must be an http(s) URL, got {:?}",
                    t.collector
                )));
            }
            if t.key.is_empty() {
                return Err(WebError::bad_argument("options.telemetry.key is empty"));
            }
        }
        Ok(Options {
            backend,
            dims: raw.dims,
            load: LoadOptions { on_progress, sha256, cache: raw.cache },
            telemetry: raw.telemetry,
        })
    }
}
