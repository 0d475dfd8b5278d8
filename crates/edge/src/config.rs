//! The host's configuration file (TOML).
//!
//! ```toml
//! node = "gateway-7"
//! listen = "0.0.0.0:8090"
//!
//! [limits]
//! workers = 2            # concurrent inferences
//! queue = 64             # requests waiting for a worker; beyond this: 503
//! timeout_ms = 10000     # per inference, waiting included; beyond this: 504
//! max_body_bytes = 8388608
//!
//! [[models]]
//! name = "digits"
//! path = "models/digits.onnx"   # relative to the file
//! version = "1"                 # default: the model's `version` metadata, else "1"
//! backend = "auto"              # auto | gpu | cpu
//! dims = { N = 1 }
//! classes = ["0", "1", "2"]     # telemetry: class names by index
//!
//! [collector]                   # optional: telemetry for every model
//! url = "https://collector.example.com"
//! key = "sxt_…"                 # an ingest key
//! spool = "spool"               # unsent batches survive outages and restarts here
//! ```

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use runtime::BackendChoice;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// This gateway, as telemetry and logs name it.
    #[serde(default = "default_node")]
    pub node: String,
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    #[serde(default)]
    pub limits: Limits,
    /// Where telemetry goes; none without it.
    pub collector: Option<CollectorConfig>,
    #[serde(default)]
    pub models: Vec<ModelConfig>,
}

/// The collector every model's telemetry goes to, and the folder that keeps it through outages.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollectorConfig {
    pub url: String,
    /// An ingest key.
    pub key: String,
    /// Unsent batches, one folder per model (relative to the file; default `spool`).
    #[serde(default = "default_spool")]
    pub spool: PathBuf,
}

fn default_spool() -> PathBuf {
    PathBuf::from("spool")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    pub workers: usize,
    pub queue: usize,
    pub timeout_ms: u64,
    pub max_body_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { workers: 2, queue: 64, timeout_ms: 10_000, max_body_bytes: 8 << 20 }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    pub name: String,
    pub path: PathBuf,
    pub version: Option<String>,
    #[serde(default)]
    pub backend: BackendChoice,
    #[serde(default)]
    pub dims: BTreeMap<String, u64>,
    /// Class names by index, for telemetry's prediction summaries.
    pub classes: Option<Vec<String>>,
    /// The output whose rows telemetry summarises (default: the last).
    pub output: Option<String>,
}

fn default_node() -> String {
    "edge".to_owned()
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8090))
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("could not read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

impl Config {
    /// Reads a configuration file; model paths are taken relative to its folder.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
        let invalid = |message: String| ConfigError::Invalid { path: path.to_owned(), message };
        let mut config: Config = toml::from_str(&text).map_err(|e| invalid(e.to_string()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        for model in &mut config.models {
            model.path = base.join(&model.path);
        }
        if let Some(collector) = &mut config.collector {
            collector.spool = base.join(&collector.spool);
        }
        config.validate().map_err(invalid)?;
        Ok(config)
    }

    /// What the type system cannot say: names usable in URLs and unique, limits above zero.
    pub fn validate(&self) -> Result<(), String> {
        if self.limits.workers == 0 || self.limits.timeout_ms == 0 || self.limits.max_body_bytes == 0 {
            return Err("limits.workers, limits.timeout_ms and limits.max_body_bytes must be above 0".to_owned());
        }
        let mut names = std::collections::BTreeSet::new();
        for model in &self.models {
            let usable = !model.name.is_empty()
                && model.name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
            if !usable {
                return Err(format!("model name {:?} must be letters, digits, '-', '_' or '.'", model.name));
            }
            if !names.insert(&model.name) {
                return Err(format!("model {:?} is configured twice", model.name));
            }
        }
        Ok(())
    }
}
