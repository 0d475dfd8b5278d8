//! Sandboxed modules (wasm components) mounted at routes, on one shared engine. Each route's
//! module can be swapped in place: a request holds the module it started on, so it finishes on
//! that version; a module that fails to load leaves the old one serving.

mod engine;
mod module;
mod nn;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use axum::response::Response;

pub use module::{ModuleError, PREDICTION_IDS_HEADER};

use crate::config::Config;
use crate::pool::Pool;
use crate::refusal::Refusal;
use crate::registry::Registry;
use module::{Module, Shared};

/// Every configured module, by name.
pub(crate) struct Modules {
    shared: Arc<Shared>,
    slots: BTreeMap<String, Slot>,
}

struct Slot {
    current: RwLock<Arc<Module>>,
    /// Why the last reload failed, while the old version serves.
    reload_error: RwLock<Option<String>>,
}

/// A module's state for `GET /v2/modules`.
#[derive(Debug, serde::Serialize)]
pub(crate) struct ModuleStatus {
    pub name: String,
    pub route: String,
    pub hash: String,
    pub memory_mb: u32,
    pub timeout_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reload_error: Option<String>,
}

impl Modules {
    /// Compiles every configured module (in parallel with nothing else: this is start-up).
    pub async fn load(config: &Config, registry: Arc<Registry>, pool: Arc<Pool>) -> Result<Modules, ModuleError> {
        let limits = config.limits;
        let configs = config.modules.clone();
        tokio::task::spawn_blocking(move || {
            let engine = engine::engine(&limits, &configs).map_err(|e| ModuleError::Engine(format!("{e:#}")))?;
            let shared =
                Shared::new(engine, registry, pool, limits).map_err(|e| ModuleError::Engine(format!("{e:#}")))?;
            let mut slots = BTreeMap::new();
            for config in &configs {
                let module = Module::load(&shared, config)?;
                tracing::info!(module = %config.name, route = %config.route(), hash = %module.hash, "module loaded");
                let slot = Slot { current: RwLock::new(Arc::new(module)), reload_error: RwLock::new(None) };
                slots.insert(config.name.clone(), slot);
            }
            Ok(Modules { shared: Arc::new(shared), slots })
        })
        .await
        .map_err(|e| ModuleError::Engine(e.to_string()))?
    }

    /// The module `name` as now served.
    fn get(&self, name: &str) -> Option<Arc<Module>> {
        self.slots.get(name).and_then(|slot| slot.current.read().ok().map(|m| m.clone()))
    }

    /// Routes and module names.
    pub fn routes(&self) -> Vec<(String, String)> {
        self.slots
            .values()
            .filter_map(|s| s.current.read().ok())
            .map(|m| (m.config.route(), m.config.name.clone()))
            .collect()
    }

    pub async fn handle(&self, name: &str, request: axum::extract::Request) -> Result<Response, Refusal> {
        let module = self
            .get(name)
            .ok_or_else(|| Refusal(axum::http::StatusCode::NOT_FOUND, format!("no module {name:?} is served here")))?;
        module.handle(&self.shared, request).await
    }

    pub fn status(&self) -> Vec<ModuleStatus> {
        self.slots
            .values()
            .filter_map(|slot| {
                let module = slot.current.read().ok()?.clone();
                Some(ModuleStatus {
                    name: module.config.name.clone(),
                    route: module.config.route(),
                    hash: module.hash.clone(),
                    memory_mb: module.config.memory_mb,
                    timeout_ms: module.config.timeout_ms,
                    reload_error: slot.reload_error.read().ok().and_then(|e| e.clone()),
                })
            })
            .collect()
    }

    /// The files behind the modules, for the reloader.
    pub fn files(&self) -> Vec<(String, PathBuf)> {
        self.slots
            .iter()
            .filter_map(|(name, slot)| Some((name.clone(), slot.current.read().ok()?.config.path.clone())))
            .collect()
    }

    /// Compiles `name`'s file again and swaps it in; on failure the old version keeps serving and
    /// the reason is kept for `GET /v2/modules`.
    pub async fn reload(&self, name: &str) -> Result<(), ModuleError> {
        let (Some(slot), Some(old)) = (self.slots.get(name), self.get(name)) else { return Ok(()) };
        let shared = self.shared.clone();
        let config = old.config.clone();
        let loaded = tokio::task::spawn_blocking(move || Module::load(&shared, &config))
            .await
            .map_err(|e| ModuleError::Engine(e.to_string()))?;
        match loaded {
            Ok(module) => {
                tracing::info!(module = %name, hash = %module.hash, "module reloaded");
                if let Ok(mut current) = slot.current.write() {
                    *current = Arc::new(module);
                }
                if let Ok(mut error) = slot.reload_error.write() {
                    *error = None;
                }
                Ok(())
            }
            Err(e) => {
                tracing::error!(module = %name, error = %e, "the new module does not load; the old one keeps serving");
                if let Ok(mut error) = slot.reload_error.write() {
                    *error = Some(e.to_string());
                }
                Err(e)
            }
        }
    }
}
