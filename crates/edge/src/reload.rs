//! Hot reload: the model and module files are checked every `limits.reload_ms`; a file whose
//! size or modification time changed, and then stayed the same for one more check (so a file
//! still being written is not read half-way), is loaded again and swapped in. A version that
//! fails to load leaves the old one serving.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::registry::Registry;
use crate::wasm::Modules;

type Stamp = Option<(SystemTime, u64)>;

fn stamp(path: &Path) -> Stamp {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Model,
    Module,
}

struct Watched {
    kind: Kind,
    name: String,
    path: std::path::PathBuf,
    /// What is served was loaded from this.
    loaded: Stamp,
    /// A change seen at the last check, waiting to be seen again unchanged.
    pending: Option<Stamp>,
}

/// Watches until the returned task is aborted.
pub(crate) fn spawn(registry: Arc<Registry>, modules: Arc<Modules>, every: Duration) -> tokio::task::JoinHandle<()> {
    let mut watched: Vec<Watched> = registry
        .files()
        .into_iter()
        .map(|(name, path)| (Kind::Model, name, path))
        .chain(modules.files().into_iter().map(|(name, path)| (Kind::Module, name, path)))
        .map(|(kind, name, path)| Watched { kind, loaded: stamp(&path), name, path, pending: None })
        .collect();
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(every);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            for file in &mut watched {
                let now = stamp(&file.path);
                if now == file.loaded || now.is_none() {
                    file.pending = None;
                    continue;
                }
                if file.pending != Some(now) {
                    file.pending = Some(now);
                    continue;
                }
                // Changed, and unchanged since the last check: load it. Whatever the outcome,
                // this version of the file is not tried again.
                file.loaded = now;
                file.pending = None;
                match file.kind {
                    Kind::Model => {
                        if let Err(e) = registry.reload(&file.name).await {
                            tracing::error!(model = %file.name, error = %e, "the new model does not load; the old one keeps serving");
                        }
                    }
                    Kind::Module => {
                        let _ = modules.reload(&file.name).await;
                    }
                }
            }
        }
    })
}
