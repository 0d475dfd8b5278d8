//! The models a host serves: loaded at start, shared by every request (OIP and `wasi:nn` alike),
//! swapped in place when a model file changes. A request holds the [`Served`] it started with, so
//! it finishes on that version whatever is swapped meanwhile.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use runtime::{Model, Session, SessionOptions, Tensor};
use sha2::{Digest, Sha256};

use crate::config::{Config, ModelConfig};
use crate::pool::{Pool, PoolError};
use crate::recording::Recording;

/// One model version as the host serves it.
#[derive(Debug)]
pub struct Served {
    pub name: String,
    pub version: String,
    /// `sha256:` and the file's hex digest.
    pub hash: String,
    pub session: Arc<Session>,
    /// Telemetry, when a collector is configured; one per model name, kept across versions.
    pub(crate) recording: Option<Arc<Recording>>,
}

/// A run's outputs and, with telemetry, the prediction id of each row.
#[derive(Debug)]
pub(crate) struct Inferred {
    pub outputs: Vec<(String, Tensor)>,
    pub prediction_ids: Option<Vec<String>>,
}

impl Served {
    /// Runs on the pool and records the run, or its failure (`rejected_input` for what the model
    /// cannot take, `inference` for the rest).
    pub(crate) async fn infer(&self, pool: &Pool, inputs: Vec<(String, Tensor)>) -> Result<Inferred, PoolError> {
        let recorded_inputs = self.recording.as_ref().map(|r| r.inputs(&inputs)).unwrap_or_default();
        let started = tokio::time::Instant::now();
        match pool.run(self.session.clone(), inputs).await {
            Ok(outputs) => {
                let gpu = self.session.engine() != runtime::Engine::Cpu;
                let prediction_ids =
                    self.recording.as_ref().map(|r| r.run(&recorded_inputs, &outputs, started.elapsed(), gpu));
                Ok(Inferred { outputs, prediction_ids })
            }
            Err(e) => {
                self.rejected(&e);
                Err(e)
            }
        }
    }

    /// Records a refusal as telemetry.
    pub(crate) fn rejected(&self, e: &PoolError) {
        if let Some(recording) = &self.recording {
            let kind = match e {
                e if e.is_bad_input() => telemetry::ErrorKind::RejectedInput,
                _ => telemetry::ErrorKind::Inference,
            };
            recording.error(kind, &e.to_string());
        }
    }
}

/// A model name's current version.
#[derive(Debug)]
struct Slot {
    config: ModelConfig,
    current: RwLock<Arc<Served>>,
}

#[derive(Debug)]
pub struct Registry {
    models: BTreeMap<String, Slot>,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    #[error("model {name:?}: could not read {path}: {source}")]
    Read {
        name: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("model {name:?}: {source}")]
    Spool {
        name: String,
        #[source]
        source: telemetry_client::SpoolError,
    },
    #[error("model {name:?}: telemetry to {url}: {source}")]
    Tls {
        name: String,
        url: String,
        #[source]
        source: tls::TlsError,
    },
    #[error("model {name:?} ({path}): {source}")]
    Runtime {
        name: String,
        path: PathBuf,
        #[source]
        source: runtime::Error,
    },
    #[error(transparent)]
    Module(#[from] crate::wasm::ModuleError),
}

/// A model file read and prepared, not yet served.
struct Loaded {
    version: String,
    hash: String,
    session: Session,
}

async fn load_model(m: &ModelConfig) -> Result<Loaded, LoadError> {
    let bytes = std::fs::read(&m.path).map_err(|source| LoadError::Read {
        name: m.name.clone(),
        path: m.path.clone(),
        source,
    })?;
    let runtime_error = |source| LoadError::Runtime { name: m.name.clone(), path: m.path.clone(), source };
    let model = Model::from_bytes(&bytes).map_err(runtime_error)?;
    let options = SessionOptions { backend: m.backend, dims: m.dims.clone(), ..SessionOptions::default() };
    let session = Session::new(&model, &options).await.map_err(runtime_error)?;
    let version = m
        .version
        .clone()
        .or_else(|| model.metadata().get("version").map(|v| telemetry::usable_name(v)))
        .unwrap_or_else(|| "1".to_owned());
    Ok(Loaded { version, hash: content_hash(&bytes), session })
}

/// A file's identity as telemetry and `/v2/modules` name it: `sha256:` and the hex digest.
pub fn content_hash(bytes: &[u8]) -> String {
    format!("sha256:{}", Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect::<String>())
}

impl Registry {
    /// Loads every configured model and prepares its session (the GPU gate runs here, once).
    pub async fn load(config: &Config) -> Result<Registry, LoadError> {
        let mut models = BTreeMap::new();
        for m in &config.models {
            let Loaded { version, hash, session } = load_model(m).await?;
            tracing::info!(model = %m.name, %version, engine = %session.engine(), "model loaded");
            let recording = match &config.collector {
                None => None,
                Some(collector) => {
                    let model_ref =
                        telemetry::ModelRef { name: m.name.clone(), version: version.clone(), hash: hash.clone() };
                    let recording = Recording::start(collector, &config.node, m, model_ref, &session).await?;
                    Some(Arc::new(recording))
                }
            };
            let served = Served { name: m.name.clone(), version, hash, session: Arc::new(session), recording };
            models.insert(m.name.clone(), Slot { config: m.clone(), current: RwLock::new(Arc::new(served)) });
        }
        Ok(Registry { models })
    }

    /// The model `name` as now served, at `version` when one is asked for.
    pub fn get(&self, name: &str, version: Option<&str>) -> Option<Arc<Served>> {
        let slot = self.models.get(name)?;
        let served = slot.current.read().ok()?.clone();
        version.is_none_or(|v| v == served.version).then_some(served)
    }

    /// Every model as now served.
    pub fn all(&self) -> Vec<Arc<Served>> {
        self.models.values().filter_map(|slot| slot.current.read().ok().map(|s| s.clone())).collect()
    }

    /// The files behind the models, for the reloader.
    pub(crate) fn files(&self) -> Vec<(String, PathBuf)> {
        self.models.iter().map(|(name, slot)| (name.clone(), slot.config.path.clone())).collect()
    }

    /// Loads `name`'s file again and swaps it in; on failure the old version keeps serving.
    pub(crate) async fn reload(&self, name: &str) -> Result<Arc<Served>, LoadError> {
        let Some(slot) = self.models.get(name) else {
            return Err(LoadError::Read {
                name: name.to_owned(),
                path: PathBuf::new(),
                source: std::io::Error::other("not a configured model"),
            });
        };
        let Loaded { version, hash, session } = load_model(&slot.config).await?;
        let old = slot.current.read().map(|s| s.clone()).ok();
        let recording = old.and_then(|old| old.recording.clone());
        if let Some(recording) = &recording {
            let model_ref = telemetry::ModelRef { name: name.to_owned(), version: version.clone(), hash: hash.clone() };
            recording.switch(model_ref, &slot.config, &session).await;
        }
        let served = Arc::new(Served { name: name.to_owned(), version, hash, session: Arc::new(session), recording });
        if let Ok(mut current) = slot.current.write() {
            *current = served.clone();
        }
        tracing::info!(model = %name, version = %served.version, hash = %served.hash, "model reloaded");
        Ok(served)
    }

    /// At shutdown: each model's last summary, then what can be delivered within `timeout`.
    pub(crate) async fn flush(&self, timeout: Duration) {
        for served in self.all() {
            if let Some(recording) = &served.recording {
                recording.flush(timeout).await;
            }
        }
    }
}
