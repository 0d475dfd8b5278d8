//! The models a host serves, loaded once at start and shared by every request.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use runtime::{Model, Session, SessionOptions};
use sha2::{Digest, Sha256};

use crate::config::Config;

/// One model as the host serves it.
#[derive(Debug)]
pub struct Served {
    pub name: String,
    pub version: String,
    /// `sha256:` and the file's hex digest.
    pub hash: String,
    pub session: Arc<Session>,
    /// Telemetry, when a collector is configured.
    pub(crate) recording: Option<crate::recording::Recording>,
}

#[derive(Debug, Default)]
pub struct Registry {
    models: BTreeMap<String, Arc<Served>>,
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
    #[error("model {name:?} ({path}): {source}")]
    Runtime {
        name: String,
        path: PathBuf,
        #[source]
        source: runtime::Error,
    },
}

impl Registry {
    /// Loads every configured model and prepares its session (the GPU gate runs here, once).
    pub async fn load(config: &Config) -> Result<Registry, LoadError> {
        let mut models = BTreeMap::new();
        for m in &config.models {
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
                .or_else(|| model.metadata().get("version").cloned())
                .unwrap_or_else(|| "1".to_owned());
            let hash =
                format!("sha256:{}", Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect::<String>());
            tracing::info!(model = %m.name, %version, engine = %session.engine(), "model loaded");
            let recording = match &config.collector {
                None => None,
                Some(collector) => {
                    let model_ref =
                        telemetry::ModelRef { name: m.name.clone(), version: version.clone(), hash: hash.clone() };
                    let recording = crate::recording::Recording::start(collector, &config.node, m, model_ref, &session)
                        .await
                        .map_err(|source| LoadError::Spool { name: m.name.clone(), source })?;
                    Some(recording)
                }
            };
            let served = Served { name: m.name.clone(), version, hash, session: Arc::new(session), recording };
            models.insert(m.name.clone(), Arc::new(served));
        }
        Ok(Registry { models })
    }

    /// The model `name`, at `version` when one is asked for.
    pub fn get(&self, name: &str, version: Option<&str>) -> Option<&Arc<Served>> {
        self.models.get(name).filter(|m| version.is_none_or(|v| v == m.version))
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<Served>> {
        self.models.values()
    }
}
