//! One sandboxed module: a component exporting `wasi:http/incoming-handler`, compiled once and
//! pre-instantiated, then instantiated per request from the pooling allocator into a fresh store.
//!
//! What a guest gets: `wasi:http` for its request and answer, `wasi:nn` over the graphs it is
//! granted, stderr, clocks and random; and only when its configuration grants them, environment
//! variables and read-only folders. No sockets, no outgoing HTTP. What it may use: its memory cap
//! (a `memory.grow` past it traps), its execution time (counted in epoch ticks while guest code
//! runs; inference on the worker pool does not count and has its own timeout), and the instance
//! slots of the pool (beyond: 503).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use http_body_util::{BodyExt, Full};
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Engine, ResourceLimiter, Store, UpdateDeadline};
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView};

use super::engine::TICK;
use super::nn::{self, NnCtx, NnView};
use crate::config::{Limits, ModuleConfig};
use crate::pool::Pool;
use crate::refusal::Refusal;
use crate::registry::{Registry, content_hash};

const MIB: usize = 1 << 20;

/// The header naming the predictions a module's inferences recorded (comma-separated), so a
/// client can send labels for them.
pub const PREDICTION_IDS_HEADER: &str = "x-sextant-prediction-ids";

/// What every module shares: the engine, the linker with the host's interfaces, the models and
/// the worker pool.
pub(crate) struct Shared {
    pub engine: Engine,
    pub linker: Linker<State>,
    pub registry: Arc<Registry>,
    pub pool: Arc<Pool>,
    pub limits: Limits,
}

impl Shared {
    pub fn new(engine: Engine, registry: Arc<Registry>, pool: Arc<Pool>, limits: Limits) -> wasmtime::Result<Shared> {
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
        nn::add_to_linker(&mut linker, |state: &mut State| NnView { ctx: &mut state.nn, table: &mut state.table })?;
        Ok(Shared { engine, linker, registry, pool, limits })
    }
}

/// A module that could not be loaded (at start: the host does not start; on reload: the old
/// version keeps serving).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ModuleError {
    #[error("module {name:?}: could not read {path}: {source}")]
    Read {
        name: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("module {name:?} ({path}) cannot run here: {message}")]
    Invalid { name: String, path: PathBuf, message: String },
    #[error("the wasm engine could not start: {0}")]
    Engine(String),
}

/// A compiled, pre-instantiated module.
pub(crate) struct Module {
    pub config: ModuleConfig,
    /// `sha256:` and the file's hex digest.
    pub hash: String,
    pre: ProxyPre<State>,
}

impl std::fmt::Debug for Module {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Module").field("name", &self.config.name).field("hash", &self.hash).finish()
    }
}

impl Module {
    /// Reads, compiles and links the module (CPU-heavy: call it off the async threads).
    pub fn load(shared: &Shared, config: &ModuleConfig) -> Result<Module, ModuleError> {
        let bytes = std::fs::read(&config.path).map_err(|source| ModuleError::Read {
            name: config.name.clone(),
            path: config.path.clone(),
            source,
        })?;
        let invalid = |e: wasmtime::Error| ModuleError::Invalid {
            name: config.name.clone(),
            path: config.path.clone(),
            message: format!("{e:#}"),
        };
        let component = Component::new(&shared.engine, &bytes).map_err(invalid)?;
        let pre = shared.linker.instantiate_pre(&component).map_err(invalid)?;
        let pre = ProxyPre::new(pre).map_err(invalid)?;
        Ok(Module { config: config.clone(), hash: content_hash(&bytes), pre })
    }

    /// Serves one request on a fresh instance. Every failure is a refusal naming the module and
    /// what it did; the host and the other modules are unaffected.
    pub async fn handle(&self, shared: &Shared, request: axum::extract::Request) -> Result<Response, Refusal> {
        let name = &self.config.name;
        let limit = shared.limits.max_body_bytes;
        let (mut parts, body) = request.into_parts();
        let body = axum::body::to_bytes(Body::new(body), limit).await.map_err(|e| {
            let over = std::error::Error::source(&e).is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
            match over {
                true => Refusal(StatusCode::PAYLOAD_TOO_LARGE, format!("the request body is over {limit} bytes")),
                false => Refusal(StatusCode::BAD_REQUEST, format!("the request body could not be read: {e}")),
            }
        })?;
        if parts.uri.authority().is_none() && !parts.headers.contains_key(axum::http::header::HOST) {
            parts.headers.insert(axum::http::header::HOST, HeaderValue::from_static("localhost"));
        }
        let request = axum::http::Request::from_parts(parts, Full::new(body));

        let prediction_ids = Arc::new(Mutex::new(Vec::new()));
        let mut store = Store::new(&shared.engine, State::new(&self.config, shared, prediction_ids.clone()));
        store.limiter(|state| &mut state.limiter);
        let budget = (self.config.timeout_ms / TICK.as_millis() as u64).max(1);
        let mut used = 0;
        let timeout_ms = self.config.timeout_ms;
        store.set_epoch_deadline(1);
        // Called at each tick that finds guest code running: the count is its execution time.
        store.epoch_deadline_callback(move |_| {
            used += 1;
            match used > budget {
                true => Err(DeadlineExceeded { timeout_ms }.into()),
                false => Ok(UpdateDeadline::Yield(1)),
            }
        });
        let internal =
            |e: wasmtime::Error| Refusal(StatusCode::INTERNAL_SERVER_ERROR, format!("module {name:?}: {e:#}"));
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let incoming = store.data_mut().http().new_incoming_request(Scheme::Http, request).map_err(internal)?;
        let outparam = store.data_mut().http().new_response_outparam(sender).map_err(internal)?;

        // The whole life of the instance, answer and streamed body included, is bounded: guest
        // time, plus the pool's timeout for its inferences, plus a second of slack.
        let life = Duration::from_millis(self.config.timeout_ms + shared.limits.timeout_ms) + Duration::from_secs(1);
        let pre = self.pre.clone();
        let task = tokio::spawn(async move {
            let run = async {
                let proxy = pre.instantiate_async(&mut store).await?;
                proxy.wasi_http_incoming_handler().call_handle(&mut store, incoming, outparam).await
            };
            match tokio::time::timeout(life, run).await {
                Ok(result) => result,
                Err(_) => Err(wasmtime::Error::msg(format!("did not finish within {life:?}"))),
            }
        });

        let answer = match tokio::time::timeout(life, receiver).await {
            Ok(Ok(Ok(response))) => response,
            Ok(Ok(Err(code))) => {
                return Err(Refusal(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("module {name:?} answered with an error: {code:?}"),
                ));
            }
            // The guest dropped its answer: it trapped, ran out of time or memory, or returned
            // without answering.
            Ok(Err(_)) => {
                let failure = match task.await {
                    Ok(Ok(())) => Refusal(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        format!("module {name:?} returned without answering (response-outparam.set)"),
                    ),
                    Ok(Err(e)) => self.failure(e),
                    Err(e) => Refusal(StatusCode::INTERNAL_SERVER_ERROR, format!("module {name:?}: {e}")),
                };
                return Err(failure);
            }
            Err(_) => {
                task.abort();
                return Err(Refusal(
                    StatusCode::GATEWAY_TIMEOUT,
                    format!("module {name:?} did not answer within {life:?}"),
                ));
            }
        };
        let (mut parts, body) = answer.into_parts();
        let ids = prediction_ids.lock().map(|ids| ids.join(",")).unwrap_or_default();
        if !ids.is_empty()
            && let Ok(value) = HeaderValue::from_str(&ids)
        {
            parts.headers.insert(PREDICTION_IDS_HEADER, value);
        }
        let name = name.clone();
        let body = body.map_err(move |e| format!("module {name:?}: the answer's body failed: {e:?}"));
        Ok(Response::from_parts(parts, Body::new(body)))
    }

    /// Why an instance ended without answering, as a status and a message.
    fn failure(&self, e: wasmtime::Error) -> Refusal {
        let name = &self.config.name;
        if let Some(deadline) = e.downcast_ref::<DeadlineExceeded>() {
            return Refusal(StatusCode::GATEWAY_TIMEOUT, format!("module {name:?} {deadline}; it was stopped"));
        }
        if let Some(memory) = e.downcast_ref::<MemoryCapExceeded>() {
            return Refusal(StatusCode::INTERNAL_SERVER_ERROR, format!("module {name:?} {memory}; it was stopped"));
        }
        if let Some(busy) = e.downcast_ref::<wasmtime::PoolConcurrencyLimitError>() {
            return Refusal(StatusCode::SERVICE_UNAVAILABLE, format!("module {name:?}: {busy}; retry later"));
        }
        if let Some(trap) = e.downcast_ref::<wasmtime::Trap>() {
            return Refusal(StatusCode::INTERNAL_SERVER_ERROR, format!("module {name:?} trapped: {trap}"));
        }
        Refusal(StatusCode::INTERNAL_SERVER_ERROR, format!("module {name:?} failed: {e:#}"))
    }
}

#[derive(Debug, thiserror::Error)]
#[error("ran past its {timeout_ms} ms of execution time")]
struct DeadlineExceeded {
    timeout_ms: u64,
}

#[derive(Debug, thiserror::Error)]
#[error("asked for {desired} bytes of memory, over its cap of {cap} bytes")]
struct MemoryCapExceeded {
    desired: usize,
    cap: usize,
}

/// Caps a store's memories and tables.
struct Limiter {
    memory_cap: usize,
}

impl ResourceLimiter for Limiter {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        match desired > self.memory_cap {
            // An error, not `false`: the guest traps at once instead of limping on without memory.
            true => Err(MemoryCapExceeded { desired, cap: self.memory_cap }.into()),
            false => Ok(true),
        }
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= 1 << 20)
    }
}

/// A store's data: one request's instance.
pub(crate) struct State {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    hooks: NoOutgoingHttp,
    table: ResourceTable,
    nn: NnCtx,
    limiter: Limiter,
}

impl State {
    fn new(config: &ModuleConfig, shared: &Shared, prediction_ids: Arc<Mutex<Vec<String>>>) -> State {
        let mut wasi = WasiCtx::builder();
        wasi.inherit_stderr().allow_tcp(false).allow_udp(false).allow_ip_name_lookup(false);
        for (key, value) in &config.env {
            wasi.env(key, value);
        }
        for (guest, host) in &config.dirs {
            // A folder that cannot be opened is left out (and said), not fatal to the request.
            if let Err(e) = wasi.preopened_dir(host, guest, FsPerms::ReadOnly) {
                tracing::warn!(module = %config.name, dir = %host.display(), error = %e, "a granted folder is not readable");
            }
        }
        let memory_cap = config.memory_mb as usize * MIB;
        State {
            wasi: wasi.build(),
            http: WasiHttpCtx::new(),
            hooks: NoOutgoingHttp,
            table: ResourceTable::new(),
            nn: NnCtx {
                registry: shared.registry.clone(),
                pool: shared.pool.clone(),
                graphs: config.graphs.clone().map(Into::into),
                held: 0,
                cap: memory_cap,
                prediction_ids,
            },
            limiter: Limiter { memory_cap },
        }
    }
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for State {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: &mut self.hooks }
    }
}

/// Guests get no network: outgoing HTTP is refused.
struct NoOutgoingHttp;

impl WasiHttpHooks for NoOutgoingHttp {
    fn send_request(
        &mut self,
        _request: axum::http::Request<wasmtime_wasi_http::WasiBody>,
        _options: Option<wasmtime_wasi_http::RequestOptions>,
        _io: Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
    ) -> Box<
        dyn Future<
                Output = wasmtime_wasi_http::Result<(
                    axum::http::Response<wasmtime_wasi_http::WasiBody>,
                    Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
                )>,
            > + Send,
    > {
        Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) })
    }
}
