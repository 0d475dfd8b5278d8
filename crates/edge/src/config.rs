//! The host's configuration file (TOML).
//!
//! ```toml
//! node = "gateway-7"
//! listen = "0.0.0.0:8090"
//!
//! [limits]
//! workers = 2            # concurrent inferences
//! queue = 64             # requests waiting for a worker; beyond this: 503
//! timeout_ms = 10000     # per inference, waiting included; beyond this: 504 (a body: 408)
//! max_body_bytes = 8388608
//! instances = 64         # module instances alive at once (pooled, pre-allocated); beyond: 503
//! reload_ms = 1000       # how often module and model files are checked for changes (0: never)
//!
//! [connections]          # as the collector's: header timeout, caps, lifetime (`serve::Limits`)
//! header_timeout_s = 10
//! max_connections = 512
//!
//! [auth]                 # optional: bearer tokens per route group, as SHA-256 digests
//! inference = ["sha256:…"]   # /v2/models/… (`sextant edge token` makes a token and its digest)
//! modules = ["sha256:…"]     # the modules' routes
//! admin = ["sha256:…"]       # GET /v2/modules; a group not listed is open, health always is
//!
//! [[models]]
//! name = "digits"
//! path = "models/digits.onnx"   # relative to the file
//! version = "1"                 # default: the model's `version` metadata, else "1"
//! backend = "auto"              # auto | gpu | cpu
//! dims = { N = 1 }
//! classes = ["0", "1", "2"]     # telemetry: class names by index
//!
//! [[modules]]                   # a wasm component exporting `wasi:http/incoming-handler`
//! name = "digits-app"
//! path = "modules/digits.wasm"  # relative to the file; watched: a new build is swapped in
//! route = "/digits"             # default "/{name}"; serves the route and everything under it
//! graphs = ["digits"]           # models it may load through `wasi:nn` (default: every model)
//! memory_mb = 64                # linear memory cap
//! timeout_ms = 1000             # guest execution time per request (inference excluded); beyond: 504
//! env = { LABELS = "a,b,c" }    # environment granted to the guest (default: none)
//! dirs = { "/assets" = "assets" } # read-only folders granted (guest path = host folder; default: none)
//!
//! [collector]                   # optional: telemetry for every model
//! url = "https://collector.example.com"
//! key = "sxt_…"                 # an ingest key
//! spool = "spool"               # unsent batches survive outages and restarts here
//! spool_max_bytes = 268435456   # per model (the spool is also held in memory); beyond: oldest dropped, counted
//! spool_max_age_s = 518400      # batches older than this (6 days) are dropped, counted
//! ```

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use runtime::BackendChoice;
use serde::Deserialize;

use crate::auth::AuthConfig;

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
    /// Connections: how many, from one address, and how long.
    #[serde(default)]
    pub connections: serve::Limits,
    /// Bearer tokens per route group; a group not listed is open.
    #[serde(default)]
    pub auth: AuthConfig,
    /// Where telemetry goes; none without it.
    pub collector: Option<CollectorConfig>,
    #[serde(default)]
    pub models: Vec<ModelConfig>,
    #[serde(default)]
    pub modules: Vec<ModuleConfig>,
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
    /// Bytes of unsent batches kept per model, on disk and in memory: the oldest beyond are
    /// dropped and counted in the loss totals. The default holds about a day and a half of an
    /// outage at 20 predictions a second per model.
    #[serde(default = "default_spool_max_bytes")]
    pub spool_max_bytes: usize,
    /// Seconds an unsent batch is kept: older ones are dropped and counted (the collector refuses
    /// records older than its `accept_past`, 7 days by default).
    #[serde(default = "default_spool_max_age_s")]
    pub spool_max_age_s: u64,
}

fn default_spool() -> PathBuf {
    PathBuf::from("spool")
}

fn default_spool_max_bytes() -> usize {
    256 << 20
}

fn default_spool_max_age_s() -> u64 {
    6 * 86_400
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    pub workers: usize,
    pub queue: usize,
    pub timeout_ms: u64,
    pub max_body_bytes: usize,
    pub instances: u32,
    pub reload_ms: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { workers: 2, queue: 64, timeout_ms: 10_000, max_body_bytes: 8 << 20, instances: 64, reload_ms: 1000 }
    }
}

/// A sandboxed module: a component exporting `wasi:http/incoming-handler`, mounted at a route.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModuleConfig {
    pub name: String,
    pub path: PathBuf,
    /// Default `/{name}`.
    pub route: Option<String>,
    /// The models the module may load through `wasi:nn` (default: all).
    pub graphs: Option<Vec<String>>,
    #[serde(default = "default_memory_mb")]
    pub memory_mb: u32,
    #[serde(default = "default_module_timeout_ms")]
    pub timeout_ms: u64,
    /// Environment variables the guest sees; nothing else of the host's environment.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Read-only folders: guest path = host folder (relative to the file).
    #[serde(default)]
    pub dirs: BTreeMap<String, PathBuf>,
}

impl ModuleConfig {
    pub fn route(&self) -> String {
        self.route.clone().unwrap_or_else(|| format!("/{}", self.name))
    }
}

fn default_memory_mb() -> u32 {
    64
}

fn default_module_timeout_ms() -> u64 {
    5_000
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
        for module in &mut config.modules {
            module.path = base.join(&module.path);
            for dir in module.dirs.values_mut() {
                *dir = base.join(&*dir);
            }
        }
        if let Some(collector) = &mut config.collector {
            collector.spool = base.join(&collector.spool);
        }
        config.validate().map_err(invalid)?;
        Ok(config)
    }

    /// What the type system cannot say: names usable in URLs and unique, limits above zero.
    pub fn validate(&self) -> Result<(), String> {
        let limits = &self.limits;
        if limits.workers == 0 || limits.timeout_ms == 0 || limits.max_body_bytes == 0 || limits.instances == 0 {
            return Err(
                "limits.workers, limits.timeout_ms, limits.max_body_bytes and limits.instances must be above 0"
                    .to_owned(),
            );
        }
        self.connections.validate()?;
        self.auth.validate()?;
        let usable = |name: &str| {
            !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        };
        let mut names = std::collections::BTreeSet::new();
        for model in &self.models {
            if !usable(&model.name) {
                return Err(format!("model name {:?} must be letters, digits, '-', '_' or '.'", model.name));
            }
            if !names.insert(&model.name) {
                return Err(format!("model {:?} is configured twice", model.name));
            }
            if let Some(version) = &model.version {
                telemetry::check_name(&format!("model {:?}: version", model.name), version)?;
            }
        }
        let (mut modules, mut routes) = (std::collections::BTreeSet::new(), std::collections::BTreeSet::new());
        for module in &self.modules {
            if !usable(&module.name) {
                return Err(format!("module name {:?} must be letters, digits, '-', '_' or '.'", module.name));
            }
            if !modules.insert(&module.name) {
                return Err(format!("module {:?} is configured twice", module.name));
            }
            let route = module.route();
            let segments_ok = route.strip_prefix('/').is_some_and(|rest| rest.split('/').all(usable));
            if !segments_ok || route.starts_with("/v2") {
                return Err(format!(
                    "module {:?}: route {route:?} must be /segment[/segment…] of letters, digits, '-', '_' or '.', outside /v2",
                    module.name
                ));
            }
            if !routes.insert(route.clone()) {
                return Err(format!("route {route:?} is used by two modules"));
            }
            if module.memory_mb == 0 || module.timeout_ms == 0 {
                return Err(format!("module {:?}: memory_mb and timeout_ms must be above 0", module.name));
            }
            if let Some(unknown) = module.graphs.iter().flatten().find(|g| !self.models.iter().any(|m| &&m.name == g)) {
                return Err(format!(
                    "module {:?} names graph {unknown:?}, which is not a configured model",
                    module.name
                ));
            }
            if let Some(bad) = module.dirs.keys().find(|g| !g.starts_with('/')) {
                return Err(format!("module {:?}: guest path {bad:?} must be absolute", module.name));
            }
        }
        Ok(())
    }
}
