//! Alerts: rules evaluated on the current window of every model version, an alert per (rule, model
//! version, subject) that fires once and resolves once, and webhook deliveries kept with their state.
//!
//! - [`rule`]: what a rule says and how it judges a window.
//! - [`evaluator`]: the periodic pass that fires and resolves alerts and sets the Prometheus gauges.
//! - [`webhook`]: the worker that POSTs alert events, retrying with backoff.
//!
//! Deduplication is the database's: a unique index allows one firing alert per rule, model version
//! and subject, so two collector processes evaluating at once cannot fire it twice.

pub mod evaluator;
pub mod rule;
pub mod target;
pub mod webhook;

use serde::{Deserialize, Serialize};

pub use rule::{Metric, Rule, Severity};

/// An alert to open, if none is firing for its rule, model version and subject.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAlert {
    pub rule: String,
    pub model: String,
    pub version: String,
    pub subject: String,
    pub metric: String,
    pub severity: String,
    pub value: Option<f64>,
    pub threshold: Option<f64>,
    pub message: String,
    pub window_start_ms: i64,
    pub started_ms: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    Firing,
    Resolved,
}

/// An alert episode as stored, with its webhook deliveries.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertRow {
    pub id: i64,
    pub rule: String,
    pub model: String,
    pub version: String,
    /// The feature (or `feature:issue`) it is about; empty for the model as a whole.
    pub subject: String,
    pub metric: String,
    pub severity: String,
    pub state: AlertState,
    pub value: Option<f64>,
    pub threshold: Option<f64>,
    pub message: String,
    pub window_start_ms: i64,
    pub started_ms: i64,
    pub resolved_ms: Option<i64>,
    pub deliveries: Vec<DeliveryRow>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeliveryRow {
    pub id: i64,
    pub event: AlertState,
    pub url: String,
    /// `pending`, `delivered` or `failed` (given up after the last attempt).
    pub state: String,
    pub attempts: i64,
    pub next_attempt_ms: i64,
    pub last_error: Option<String>,
    pub delivered_ms: Option<i64>,
}

/// Which alerts to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlertQuery {
    pub model: Option<String>,
    pub firing_only: bool,
    pub limit: usize,
}

/// A delivery claimed for sending, with the alert it is about.
#[derive(Debug, Clone, PartialEq)]
pub struct Due {
    pub id: i64,
    pub event: AlertState,
    pub url: String,
    pub attempts: i64,
    /// The claim: its next attempt was moved to this time. The claim is still this claimant's
    /// while the row says so (no one else claimed it after the lease ran out).
    pub lease_until_ms: i64,
    pub alert: AlertRow,
}

/// How a delivery attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Attempt {
    Delivered { at_ms: i64 },
    Retry { next_attempt_ms: i64, error: String },
    Failed { error: String },
}

impl AlertState {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Firing => "firing",
            AlertState::Resolved => "resolved",
        }
    }

    pub fn parse(text: &str) -> AlertState {
        if text == "resolved" { AlertState::Resolved } else { AlertState::Firing }
    }
}
