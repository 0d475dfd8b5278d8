//! Native telemetry delivery: an HTTP [`Transport`] (reqwest) and a [`Shipper`] that drives a
//! [`Batcher`] on a tokio task, so an application only pushes records.
//!
//! The batcher decides what to send and when (count, size and age limits; retries with backoff and
//! jitter, the same `batch_id` each time); this crate brings the clock, the randomness and the
//! network.

use std::sync::{Arc, Mutex};
use std::time::Duration;

mod spool;

pub use spool::{Spool, SpoolError};
use telemetry::{Batcher, Outcome, PushError, Record, Sealed, Stats, Transport};
use tokio::sync::{Notify, watch};

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// 128 random bits in hex: a session or id prefix nobody can guess, so no one holding the
/// ingest key can claim this client's batch ids before it sends them. Falls back to the clock
/// and the process id where the system has no randomness (it always has on the hosts we run).
pub fn random_id() -> String {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        let fallback = (u128::from(now_ms().unsigned_abs()) << 32) | u128::from(std::process::id());
        bytes = fallback.to_le_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A uniform value in [0, 1) for retry jitter.
fn jitter() -> f64 {
    getrandom::u64().map_or(0.5, |r| (r >> 11) as f64 / (1u64 << 53) as f64)
}

/// Posts batches to a collector's `/v1/batches` with a bearer key.
#[derive(Debug, Clone)]
pub struct HttpTransport {
    client: reqwest::Client,
    url: String,
    token: String,
}

impl HttpTransport {
    /// `base_url` is the collector's address, e.g. `https://collector.example.com` (TLS through
    /// [`tls`]: verified against the platform's roots).
    pub fn new(base_url: &str, token: impl Into<String>) -> Result<HttpTransport, tls::TlsError> {
        let client = tls::http_client()?.timeout(Duration::from_secs(30)).build().map_err(tls::TlsError::client)?;
        Ok(HttpTransport { client, url: format!("{}/v1/batches", base_url.trim_end_matches('/')), token: token.into() })
    }
}

impl Transport for HttpTransport {
    async fn send(&self, batch: &Sealed) -> Outcome {
        let mut request = self
            .client
            .post(&self.url)
            .bearer_auth(&self.token)
            .header(reqwest::header::CONTENT_TYPE, batch.format.encoding.content_type())
            .body(batch.body.clone());
        if batch.format.gzip {
            request = request.header(reqwest::header::CONTENT_ENCODING, "gzip");
        }
        match request.send().await {
            Err(e) => {
                tracing::debug!(batch = %batch.batch_id, error = %e, "telemetry upload failed; will retry");
                Outcome::Retry { after_ms: None }
            }
            Ok(response) => {
                let status = response.status().as_u16();
                let retry_after = response
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                let body = if response.status().is_success() {
                    String::new()
                } else {
                    response.text().await.unwrap_or_default()
                };
                Outcome::from_http(status, retry_after.as_deref(), &body)
            }
        }
    }
}

/// A batcher delivered in the background. Pushing never waits for the network.
#[derive(Debug)]
pub struct Shipper {
    state: Arc<Mutex<State>>,
    wake: Arc<Notify>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

/// The batcher and, when spooling, the folder that mirrors its outbox.
#[derive(Debug)]
struct State {
    batcher: Batcher,
    spool: Option<Spool>,
}

impl State {
    /// Brings the spool in line with the outbox after anything that may have changed it. A disk
    /// that fails costs only the persistence: batches stay in memory and are still sent.
    fn sync(&mut self) {
        if let Some(spool) = &mut self.spool
            && let Err(e) = spool.sync(&self.batcher)
        {
            tracing::error!(error = %e, "could not spool telemetry; unsent batches will not survive a restart");
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ShipError {
    #[error(transparent)]
    Push(#[from] PushError),
    #[error("the telemetry batcher is unusable after a panic in another thread")]
    Poisoned,
}

impl Shipper {
    /// Starts delivering `batcher`'s batches through `transport` on the current tokio runtime.
    pub fn spawn<T>(batcher: Batcher, transport: T) -> Shipper
    where
        T: Transport + Send + Sync + 'static,
    {
        Shipper::start(State { batcher, spool: None }, transport)
    }

    /// Like [`Shipper::spawn`], with every unsent batch also kept in `dir` (see [`Spool`]): what an
    /// earlier run left there goes out first, with its original ids.
    pub fn spawn_spooled<T>(mut batcher: Batcher, transport: T, dir: &std::path::Path) -> Result<Shipper, SpoolError>
    where
        T: Transport + Send + Sync + 'static,
    {
        let (spool, saved) = Spool::open(dir)?;
        if !saved.is_empty() {
            tracing::info!(batches = saved.len(), dir = %dir.display(), "resending spooled telemetry");
        }
        batcher.restore(saved);
        let mut state = State { batcher, spool: Some(spool) };
        state.sync();
        Ok(Shipper::start(state, transport))
    }

    fn start<T>(state: State, transport: T) -> Shipper
    where
        T: Transport + Send + Sync + 'static,
    {
        let state = Arc::new(Mutex::new(state));
        let wake = Arc::new(Notify::new());
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(deliver(state.clone(), transport, wake.clone(), stopped));
        Shipper { state, wake, stop, task }
    }

    pub fn push(&self, record: Record) -> Result<(), ShipError> {
        let mut state = self.state.lock().map_err(|_| ShipError::Poisoned)?;
        let sealed_before = state.batcher.outbox_len();
        state.batcher.push(record, now_ms())?;
        if state.batcher.outbox_len() != sealed_before {
            state.sync();
            self.wake.notify_one();
        }
        Ok(())
    }

    /// Switches the model the next records are about (see [`Batcher::set_model`]).
    pub fn set_model(&self, model: telemetry::ModelRef) -> Result<(), ShipError> {
        let mut state = self.state.lock().map_err(|_| ShipError::Poisoned)?;
        state.batcher.set_model(model).map_err(|e| ShipError::Push(e.into()))?;
        state.sync();
        self.wake.notify_one();
        Ok(())
    }

    /// Seals what is open and waits until every batch is delivered or given up on, or `timeout`
    /// passes. True when nothing is left to send.
    pub async fn flush(&self, timeout: Duration) -> bool {
        if let Ok(mut state) = self.state.lock() {
            let _ = state.batcher.seal();
            state.sync();
        }
        self.wake.notify_one();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let pending = self.state.lock().map_or(0, |s| s.batcher.outbox_len() + s.batcher.open_len());
            if pending == 0 {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    pub fn stats(&self) -> Stats {
        self.state.lock().map(|s| s.batcher.stats()).unwrap_or_default()
    }

    /// The session's loss totals: (certainly dropped, unconfirmed).
    pub fn losses(&self) -> (u64, u64) {
        self.state.lock().map(|s| s.batcher.losses()).unwrap_or_default()
    }

    /// Batches waiting on disk (0 without a spool).
    pub fn spooled(&self) -> usize {
        self.state.lock().map_or(0, |s| s.spool.as_ref().map_or(0, Spool::len))
    }

    /// Flushes for up to `timeout`, then stops the delivery task. With a spool, whatever is
    /// still unsent stays on disk for the next run.
    pub async fn close(self, timeout: Duration) -> Stats {
        self.flush(timeout).await;
        let stats = self.stats();
        let _ = self.stop.send(true);
        let _ = self.task.await;
        stats
    }
}

async fn deliver<T: Transport + Send + Sync>(
    state: Arc<Mutex<State>>,
    transport: T,
    wake: Arc<Notify>,
    mut stopped: watch::Receiver<bool>,
) {
    loop {
        let now = now_ms();
        let (due, wait_ms) = {
            let Ok(mut s) = state.lock() else { return };
            let sealed_before = s.batcher.outbox_len();
            if let Err(e) = s.batcher.tick(now) {
                tracing::error!(error = %e, "could not seal a telemetry batch");
            }
            if s.batcher.outbox_len() != sealed_before {
                s.sync();
            }
            let due = s.batcher.next_due(now).cloned();
            let next = [s.batcher.next_due_at(), s.batcher.next_seal_at()].into_iter().flatten().min();
            (due, next.map_or(1000, |at| at.saturating_sub(now).clamp(1, 1000)))
        };
        if let Some(batch) = due {
            let outcome = tokio::select! {
                outcome = transport.send(&batch) => outcome,
                _ = stopped.changed() => return,
            };
            match &outcome {
                Outcome::Rejected { reason } => {
                    tracing::warn!(batch = %batch.batch_id, %reason, "collector refused a telemetry batch; dropped")
                }
                Outcome::Refused { reason } => tracing::error!(
                    batch = %batch.batch_id, %reason,
                    "collector refuses this client's key or address; telemetry is kept and retried until it is fixed"
                ),
                Outcome::Accepted | Outcome::Retry { .. } => {}
            }
            if let Ok(mut s) = state.lock() {
                s.batcher.report(&batch.batch_id, outcome, now_ms(), jitter());
                s.sync();
            }
            continue;
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(u64::try_from(wait_ms).unwrap_or(1000))) => {}
            _ = wake.notified() => {}
            _ = stopped.changed() => return,
        }
    }
}
