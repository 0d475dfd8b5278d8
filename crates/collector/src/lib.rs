//! Sextant's telemetry collector: the service every deployment sends its batches to.
//!
//! What it guarantees (ARCHITECTURE.md lists these as invariants):
//! - a batch is acknowledged (2xx) only after it is committed to the database;
//! - a `batch_id` is stored once, however often it is sent and to however many collector processes
//!   sharing one PostgreSQL database;
//! - a batch with some invalid records stores the valid ones and names the others;
//! - a body it cannot read (unknown schema version, bad encoding, oversize) is refused with a 4xx
//!   and nothing of it is stored;
//! - when saturated it answers 429 with `Retry-After` instead of queueing without bound;
//! - what a client names is bounded: classes per window (the rest count as one), fields, minutes
//!   per batch, records per batch (counted before decoding), decode memory in flight.
//!
//! Layout: [`config`] (TOML file and defaults), [`keys`] (API tokens, stored as digests),
//! [`store`] (the `Store` trait, with SQLite and PostgreSQL behind it), [`server`] (the axum
//! routes), `admission` (upload slots, the decode memory budget), `acceptance` (record times,
//! minutes per batch) and [`metrics`] (Prometheus text). Monitoring: [`monitor`] (windows and the
//! drift, integrity and performance reports on them), [`alerts`] (rules, the evaluator, webhooks)
//! and the dashboard (`www/dashboard`, compiled in); `tasks` supervises the background tasks.

mod acceptance;
mod admission;
pub mod alerts;
pub mod config;
mod dashboard;
pub mod keys;
pub mod metrics;
pub mod monitor;
pub mod server;
pub mod store;
mod tasks;

pub use config::{Config, Database};
pub use keys::{Role, Scope, Token};
pub use server::{Collector, serve};
pub use store::{NewKey, Store, StoreError, open};

/// Milliseconds since the Unix epoch, by the collector's clock.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
