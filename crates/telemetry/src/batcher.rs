//! The client-side batcher: records in, encoded batches out, delivered in order with retries.
//!
//! No IO and no clock: the caller passes the time (`now_ms`) and a jitter value in [0, 1) from its
//! own random source, sends what [`Batcher::next_due`] returns through its transport, and reports
//! the outcome. Memory is bounded: at most one open batch plus `max_outbox` sealed ones of
//! `max_outbox_bytes` in all, none older than `max_outbox_age_ms`. When the outbox is full (or
//! its oldest batch too old to send) the oldest batch is dropped and its records counted: as `dropped` if it was never
//! attempted (or was refused), as `unconfirmed` if an attempt went unacknowledged (the collector may
//! have stored it). Every batch carries both running totals: nothing is dropped silently, and no
//! loss is counted twice.

use std::collections::VecDeque;

use crate::encoding::{EncodeError, Format, encode};
use crate::schema::{Batch, ModelRef, Record, SCHEMA_VERSION, Source};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatcherConfig {
    pub format: Format,
    /// Seal the open batch at this many records...
    pub max_records: usize,
    /// ...or at about this many encoded bytes...
    pub max_bytes: usize,
    /// ...or when its oldest record is this old.
    pub max_age_ms: i64,
    /// Sealed batches kept for delivery; beyond this the oldest is dropped and counted...
    pub max_outbox: usize,
    /// ...and their bodies' bytes, all together (one batch is kept whatever its size)...
    pub max_outbox_bytes: usize,
    /// ...and how long after its first record a batch is still worth sending (the collector
    /// refuses records older than its `accept_past`, 7 days by default).
    pub max_outbox_age_ms: i64,
    pub retry: RetryPolicy,
}

impl Default for BatcherConfig {
    fn default() -> Self {
        BatcherConfig {
            format: Format { encoding: crate::Encoding::MessagePack, gzip: false },
            max_records: 500,
            max_bytes: 512 << 10,
            max_age_ms: 5_000,
            max_outbox: 64,
            max_outbox_bytes: 32 << 20,
            max_outbox_age_ms: 6 * 86_400_000,
            retry: RetryPolicy::default(),
        }
    }
}

/// Exponential backoff with full jitter: attempt `n` waits a uniform share of `min(max, base·2ⁿ)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub base_ms: u64,
    pub max_ms: u64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { base_ms: 250, max_ms: 60_000 }
    }
}

impl RetryPolicy {
    /// The wait before retry number `attempt` (1 for the first retry); `jitter` in [0, 1).
    pub fn delay_ms(&self, attempt: u32, jitter: f64) -> u64 {
        let ceiling = self.base_ms.saturating_mul(1u64 << attempt.min(32)).min(self.max_ms);
        (ceiling as f64 * jitter.clamp(0.0, 1.0)) as u64
    }
}

/// What the transport reports for one delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Stored (2xx), including "already stored" for a repeated `batch_id`.
    Accepted,
    /// Worth retrying (network error, 429, 5xx); the server may say when.
    Retry { after_ms: Option<u64> },
    /// The collector refuses this client, not this batch (401, 403, 404: its key, the key's
    /// scope, or a wrong URL): the batch is kept and retried with backoff, and the client should
    /// say so loudly — someone has to fix the key or the address, and nothing is lost meanwhile.
    Refused { reason: String },
    /// Refused for good (any other 4xx but 408 and 429: the batch itself): dropped and counted.
    Rejected { reason: String },
}

impl Outcome {
    /// What an HTTP answer means for a batch: 2xx delivered; 408, 429 and 5xx worth retrying
    /// (after `Retry-After` seconds if the server said); 401, 403 and 404 the client refused (kept);
    /// any other status the batch refused for good.
    pub fn from_http(status: u16, retry_after: Option<&str>, body: &str) -> Outcome {
        let reason = || format!("HTTP {status}: {}", body.chars().take(512).collect::<String>());
        match status {
            200..=299 => Outcome::Accepted,
            408 | 429 | 500..=599 => Outcome::Retry {
                after_ms: retry_after.and_then(|s| s.trim().parse::<u64>().ok()).map(|s| s.saturating_mul(1000)),
            },
            401 | 403 | 404 => Outcome::Refused { reason: reason() },
            _ => Outcome::Rejected { reason: reason() },
        }
    }
}

/// Delivers sealed batches to a collector: the browser package (gloo-net), native clients and the
/// edge host each bring one. A transport reports what happened and never retries by itself: the
/// batcher decides when.
pub trait Transport {
    fn send(&self, batch: &Sealed) -> impl std::future::Future<Output = Outcome> + MaybeSend;
}

/// `Send` where threads exist, so native transports can run on a multi-threaded executor; nothing
/// on wasm32, where browser futures (JS promises) are not `Send`.
#[cfg(not(target_arch = "wasm32"))]
pub trait MaybeSend: Send {}
#[cfg(not(target_arch = "wasm32"))]
impl<T: Send> MaybeSend for T {}
#[cfg(target_arch = "wasm32")]
pub trait MaybeSend {}
#[cfg(target_arch = "wasm32")]
impl<T> MaybeSend for T {}

/// A batch ready to send: the same id and bytes on every attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct Sealed {
    pub batch_id: String,
    pub body: Vec<u8>,
    pub format: Format,
    records: u64,
    attempts: u32,
    not_before_ms: i64,
    /// When its first record came (None: not known, for a batch saved without it; the next tick
    /// sets it).
    born_ms: Option<i64>,
}

impl Sealed {
    /// A batch saved by an earlier client run (see [`Batcher::restore`]): what [`Sealed::records`],
    /// [`Sealed::attempts`] and [`Sealed::born_ms`] said when it was saved.
    pub fn saved(
        batch_id: String,
        body: Vec<u8>,
        format: Format,
        records: u64,
        attempts: u32,
        born_ms: Option<i64>,
    ) -> Sealed {
        Sealed { batch_id, body, format, records, attempts, not_before_ms: i64::MIN, born_ms }
    }

    /// When the batch's first record came, by the client's clock (for the outbox's age bound).
    pub fn born_ms(&self) -> Option<i64> {
        self.born_ms
    }

    /// Records in the batch (losses are counted in records).
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Delivery attempts so far: after one, the collector may hold the batch.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }
}

/// Counters for the client's own health.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub records: u64,
    pub batches_sealed: u64,
    pub batches_delivered: u64,
    pub batches_rejected: u64,
    /// Dropped to keep the outbox within its count and bytes...
    pub batches_evicted: u64,
    /// ...or its age.
    pub batches_expired: u64,
    pub retries: u64,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PushError {
    #[error("invalid record: {0}")]
    Invalid(String),
    #[error(transparent)]
    Encode(#[from] EncodeError),
}

#[derive(Debug)]
pub struct Batcher {
    config: BatcherConfig,
    source: Source,
    model: ModelRef,
    session: String,
    next_seq: u64,
    open: Vec<Record>,
    open_bytes: usize,
    opened_at_ms: i64,
    outbox: VecDeque<Sealed>,
    /// The outbox's body bytes.
    outbox_bytes: usize,
    /// The latest time the caller passed.
    now_ms: i64,
    /// Running totals for the session (see [`Batch`]).
    dropped: u64,
    unconfirmed: u64,
    /// The totals the newest sealed batch carries.
    sealed_totals: (u64, u64),
    stats: Stats,
}

impl Batcher {
    /// `session` must be unique per client run (e.g. random): batch ids are `{session}-{seq}`.
    pub fn new(config: BatcherConfig, source: Source, model: ModelRef, session: impl Into<String>) -> Batcher {
        Batcher {
            config,
            source,
            model,
            session: session.into(),
            next_seq: 0,
            open: Vec::new(),
            open_bytes: 0,
            opened_at_ms: 0,
            outbox: VecDeque::new(),
            outbox_bytes: 0,
            now_ms: i64::MIN,
            dropped: 0,
            unconfirmed: 0,
            sealed_totals: (0, 0),
            stats: Stats::default(),
        }
    }

    /// Adds a record, sealing the open batch when it reaches the count or size limit. An invalid
    /// record is refused here, so it cannot spoil a batch later.
    pub fn push(&mut self, record: Record, now_ms: i64) -> Result<(), PushError> {
        record.validate().map_err(PushError::Invalid)?;
        let size = match self.config.format.encoding {
            crate::Encoding::Json => serde_json::to_vec(&record).map_err(EncodeError::from)?.len(),
            crate::Encoding::MessagePack => rmp_serde::to_vec(&record).map_err(EncodeError::from)?.len(),
        };
        self.now_ms = self.now_ms.max(now_ms);
        if self.open.is_empty() {
            self.opened_at_ms = now_ms;
        }
        self.open.push(record);
        self.open_bytes += size;
        self.stats.records += 1;
        if self.open.len() >= self.config.max_records || self.open_bytes >= self.config.max_bytes {
            self.seal()?;
        }
        Ok(())
    }

    /// The model the next records are about (a new version was deployed in place): what is open
    /// is sealed first, so each batch names the model its records came from.
    pub fn set_model(&mut self, model: ModelRef) -> Result<(), EncodeError> {
        if model != self.model {
            self.seal()?;
            self.model = model;
        }
        Ok(())
    }

    /// Seals the open batch when its oldest record is `max_age_ms` old, and drops (counting
    /// them) the sealed batches older than `max_outbox_age_ms`.
    pub fn tick(&mut self, now_ms: i64) -> Result<(), EncodeError> {
        self.now_ms = self.now_ms.max(now_ms);
        if !self.open.is_empty() && now_ms - self.opened_at_ms >= self.config.max_age_ms {
            self.seal()?;
        }
        for batch in &mut self.outbox {
            batch.born_ms.get_or_insert(now_ms);
        }
        let oldest = now_ms.saturating_sub(self.config.max_outbox_age_ms);
        while self.outbox.front().is_some_and(|b| b.born_ms.is_some_and(|born| born < oldest)) {
            self.evict();
            self.stats.batches_expired += 1;
        }
        Ok(())
    }

    /// Seals the open batch now (e.g. at shutdown). A batch is also sealed, empty, when the loss
    /// totals have changed since the last one, so they reach the collector.
    pub fn seal(&mut self) -> Result<(), EncodeError> {
        if self.open.is_empty() && self.sealed_totals == (self.dropped, self.unconfirmed) {
            return Ok(());
        }
        let born_ms = if self.open.is_empty() { self.now_ms } else { self.opened_at_ms };
        let records = std::mem::take(&mut self.open);
        let mut batch = Batch {
            schema_version: SCHEMA_VERSION,
            batch_id: format!("{}-{}", self.session, self.next_seq),
            session: self.session.clone(),
            source: self.source.clone(),
            model: self.model.clone(),
            dropped: self.dropped,
            unconfirmed: self.unconfirmed,
            records,
        };
        let mut body = encode(&batch, self.config.format)?;
        // Room for it: the oldest batches go first, and this batch carries what they lost
        // (encoded again with the new totals, which may take a little more room).
        while self.needs_room(body.len()) {
            while self.needs_room(body.len()) {
                self.evict();
                self.stats.batches_evicted += 1;
            }
            (batch.dropped, batch.unconfirmed) = (self.dropped, self.unconfirmed);
            body = encode(&batch, self.config.format)?;
        }
        self.outbox_bytes += body.len();
        self.outbox.push_back(Sealed {
            batch_id: batch.batch_id,
            body,
            format: self.config.format,
            records: batch.records.len() as u64,
            attempts: 0,
            not_before_ms: i64::MIN,
            born_ms: (born_ms != i64::MIN).then_some(born_ms),
        });
        self.next_seq += 1;
        self.sealed_totals = (self.dropped, self.unconfirmed);
        self.open_bytes = 0;
        self.stats.batches_sealed += 1;
        Ok(())
    }

    /// Whether a new batch of `bytes` needs older ones out first (one batch always fits).
    fn needs_room(&self, bytes: usize) -> bool {
        !self.outbox.is_empty()
            && (self.outbox.len() >= self.config.max_outbox.max(1)
                || self.outbox_bytes.saturating_add(bytes) > self.config.max_outbox_bytes)
    }

    /// The oldest sealed batch, out of the outbox.
    fn pop_front(&mut self) -> Option<Sealed> {
        let batch = self.outbox.pop_front()?;
        self.outbox_bytes -= batch.body.len();
        Some(batch)
    }

    /// Drops the oldest sealed batch for room (or age), counting its records.
    fn evict(&mut self) {
        if let Some(evicted) = self.pop_front() {
            self.lose(&evicted, false);
        }
    }

    /// Counts a batch given up on. Unless it was refused, an attempt may have stored it.
    fn lose(&mut self, batch: &Sealed, refused: bool) {
        if batch.attempts == 0 || refused {
            self.dropped += batch.records;
        } else {
            self.unconfirmed += batch.records;
        }
    }

    /// The batch to send now, if one is due. Batches go in order: the oldest first.
    pub fn next_due(&self, now_ms: i64) -> Option<&Sealed> {
        self.outbox.front().filter(|s| s.not_before_ms <= now_ms)
    }

    /// When the next batch becomes due, if any is waiting.
    pub fn next_due_at(&self) -> Option<i64> {
        self.outbox.front().map(|s| s.not_before_ms)
    }

    /// Records what became of an attempt to send `batch_id`. Reports for any batch but the one
    /// [`Batcher::next_due`] returned are stale and ignored.
    pub fn report(&mut self, batch_id: &str, outcome: Outcome, now_ms: i64, jitter: f64) {
        let Some(front) = self.outbox.front_mut().filter(|s| s.batch_id == batch_id) else { return };
        match outcome {
            Outcome::Accepted => {
                self.pop_front();
                self.stats.batches_delivered += 1;
            }
            Outcome::Retry { .. } | Outcome::Refused { .. } => {
                front.attempts += 1;
                let after_ms = if let Outcome::Retry { after_ms } = outcome { after_ms } else { None };
                let delay = after_ms.unwrap_or_else(|| self.config.retry.delay_ms(front.attempts, jitter));
                front.not_before_ms = now_ms.saturating_add(i64::try_from(delay).unwrap_or(i64::MAX));
                self.stats.retries += 1;
            }
            Outcome::Rejected { .. } => {
                if let Some(rejected) = self.pop_front() {
                    self.lose(&rejected, true);
                }
                self.stats.batches_rejected += 1;
            }
        }
    }

    /// When the open batch will be old enough to seal, if it holds records.
    pub fn next_seal_at(&self) -> Option<i64> {
        (!self.open.is_empty()).then(|| self.opened_at_ms.saturating_add(self.config.max_age_ms))
    }

    /// Records pushed but not yet sealed.
    pub fn open_len(&self) -> usize {
        self.open.len()
    }

    /// Sealed batches waiting for delivery.
    pub fn outbox_len(&self) -> usize {
        self.outbox.len()
    }

    /// The sealed batches waiting for delivery, oldest first: what a client saves so that they
    /// survive a restart.
    pub fn outbox(&self) -> impl Iterator<Item = &Sealed> {
        self.outbox.iter()
    }

    /// Queues batches an earlier run saved, oldest first, ahead of this run's: they go out first,
    /// with their own `batch_id`s, so the collector stores each once whatever was sent before. The
    /// outbox bounds hold: the oldest beyond them are dropped and counted (by age at the next tick).
    pub fn restore(&mut self, saved: impl IntoIterator<Item = Sealed>) {
        let mut saved: Vec<Sealed> = saved.into_iter().collect();
        for batch in saved.iter_mut() {
            batch.not_before_ms = i64::MIN;
        }
        self.outbox = saved.into_iter().chain(self.outbox.drain(..)).collect();
        self.outbox_bytes = self.outbox.iter().map(|b| b.body.len()).sum();
        while self.outbox.len() > self.config.max_outbox.max(1)
            || (self.outbox.len() > 1 && self.outbox_bytes > self.config.max_outbox_bytes)
        {
            self.evict();
            self.stats.batches_evicted += 1;
        }
    }

    /// The outbox's body bytes (bounded by `max_outbox_bytes`).
    pub fn outbox_bytes(&self) -> usize {
        self.outbox_bytes
    }

    /// The session's loss totals: (certainly dropped, unconfirmed).
    pub fn losses(&self) -> (u64, u64) {
        (self.dropped, self.unconfirmed)
    }

    pub fn stats(&self) -> Stats {
        self.stats
    }
}
