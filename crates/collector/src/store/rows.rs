//! Result rows back into the store's types, column by column in each statement's order (`sql.rs`).

use serde_json::json;

use super::conn::Row;
use super::{BatchRow, ModelSummary, ModelVersion, PredictionRow, StoreError, writes};
use crate::alerts::{AlertRow, AlertState, DeliveryRow};
use crate::keys::{KeyInfo, Role, Scope};

type Result<T> = std::result::Result<T, StoreError>;

pub(super) fn key(mut r: Row) -> Result<KeyInfo> {
    let role = r.text(2)?;
    Ok(KeyInfo {
        id: r.int(0)?,
        name: r.text(1)?,
        // Only this crate writes roles; an unknown one can only mean a hand-edited row: least power.
        role: Role::parse(&role).unwrap_or(Role::Ingest),
        created_ms: r.int(3)?,
        revoked_ms: r.opt_int(4)?,
        scope: Scope::from_column(r.opt_text(5)?.as_deref()),
    })
}

pub(super) fn model_summary(mut r: Row) -> Result<ModelSummary> {
    Ok(ModelSummary {
        name: r.text(0)?,
        version: r.text(1)?,
        hash: r.text(2)?,
        batches: r.int(3)?,
        predictions: r.int(4)?,
        sessions: r.int(5)?,
        dropped: r.int(6)?,
        unconfirmed: r.int(7)?,
        last_received_ms: r.opt_int(8)?,
        has_profile: r.bool(9)?,
    })
}

pub(super) fn model_version(mut r: Row) -> Result<ModelVersion> {
    Ok(ModelVersion { name: r.text(0)?, version: r.text(1)?, last_batch_seq: r.opt_int(2)? })
}

pub(super) fn batch(mut r: Row) -> Result<(i64, BatchRow)> {
    let row = BatchRow {
        seq: r.int(0)?,
        batch_id: r.text(1)?,
        session: r.text(2)?,
        model: r.text(3)?,
        version: r.text(4)?,
        source_kind: r.text(5)?,
        source_node: r.text(6)?,
        received_ms: r.int(7)?,
        records: r.int(8)?,
        rejected: r.int(9)?,
    };
    Ok((row.seq, row))
}

/// Reads one history row: its sequence number and its JSON.
pub(super) type Record = fn(Row) -> Result<(i64, serde_json::Value)>;

pub(super) fn prediction(mut r: Row) -> Result<(i64, serde_json::Value)> {
    let row = PredictionRow {
        seq: r.int(0)?,
        prediction_id: r.text(1)?,
        timestamp_ms: r.int(2)?,
        latency_us: r.int(3)?,
        engine: r.text(4)?,
        output: output_json(r.opt_text(5)?, r.opt_real(6)?, r.opt_real(7)?, r.opt_text(8)?),
        truth: truth_json(r.opt_text(9)?, r.opt_real(10)?),
    };
    let value =
        serde_json::to_value(&row).map_err(|e| StoreError::Corrupt { what: "prediction", message: e.to_string() })?;
    Ok((row.seq, value))
}

pub(super) fn features(mut r: Row) -> Result<(i64, serde_json::Value)> {
    let seq = r.int(0)?;
    let mut value: serde_json::Value = serde_json::from_str(&r.text(1)?)
        .map_err(|e| StoreError::Corrupt { what: "feature summary", message: e.to_string() })?;
    value["seq"] = seq.into();
    Ok((seq, value))
}

pub(super) fn error(mut r: Row) -> Result<(i64, serde_json::Value)> {
    let seq = r.int(0)?;
    Ok((seq, json!({ "seq": seq, "timestamp_ms": r.int(1)?, "kind": r.text(2)?, "message": r.text(3)? })))
}

/// The output back from its columns, in the wire schema's JSON shape.
fn output_json(
    label: Option<String>,
    score: Option<f64>,
    value: Option<f64>,
    top_k: Option<String>,
) -> serde_json::Value {
    if let Some(top_k) = top_k.and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok()) {
        json!({ "top_k": top_k })
    } else if let Some(value) = value {
        json!({ "value": value })
    } else {
        json!({ "class": { "label": label, "score": score } })
    }
}

fn truth_json(class: Option<String>, value: Option<f64>) -> Option<serde_json::Value> {
    writes::truth_of(class, value).map(|truth| match truth {
        telemetry::Truth::Class(class) => json!({ "class": class }),
        telemetry::Truth::Value(value) => json!({ "value": value }),
    })
}

/// An alert from [`super::sql::ALERTS`]' columns, without its deliveries.
pub(super) fn alert(mut r: Row) -> Result<AlertRow> {
    let resolved_ms = r.opt_int(12)?;
    Ok(AlertRow {
        id: r.int(0)?,
        rule: r.text(1)?,
        model: r.text(2)?,
        version: r.text(3)?,
        subject: r.text(4)?,
        metric: r.text(5)?,
        severity: r.text(6)?,
        state: if resolved_ms.is_some() { AlertState::Resolved } else { AlertState::Firing },
        value: r.opt_real(7)?,
        threshold: r.opt_real(8)?,
        message: r.text(9)?,
        window_start_ms: r.int(10)?,
        started_ms: r.int(11)?,
        resolved_ms,
        deliveries: Vec::new(),
    })
}

/// A delivery with its alert's id, from [`super::sql::ALERT_DELIVERIES`]' columns.
pub(super) fn delivery(mut r: Row) -> Result<(i64, DeliveryRow)> {
    let alert_id = r.int(0)?;
    let row = DeliveryRow {
        id: r.int(1)?,
        event: AlertState::parse(&r.text(2)?),
        url: r.text(3)?,
        state: r.text(4)?,
        attempts: r.int(5)?,
        next_attempt_ms: r.int(6)?,
        last_error: r.opt_text(7)?,
        delivered_ms: r.opt_int(8)?,
    };
    Ok((alert_id, row))
}

/// Attaches deliveries (alert id, row) to their alerts.
pub(super) fn attach(alerts: &mut [AlertRow], deliveries: Vec<(i64, DeliveryRow)>) {
    let index: std::collections::HashMap<i64, usize> = alerts.iter().enumerate().map(|(i, a)| (a.id, i)).collect();
    for (alert_id, delivery) in deliveries {
        if let Some(&i) = index.get(&alert_id) {
            alerts[i].deliveries.push(delivery);
        }
    }
}

/// Maps every row, stopping at the first that does not fit.
pub(super) fn all<T>(rows: Vec<Row>, f: impl FnMut(Row) -> Result<T>) -> Result<Vec<T>> {
    rows.into_iter().map(f).collect()
}
