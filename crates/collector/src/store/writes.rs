//! What a batch or a set of labels writes, computed without a database: the column values of every
//! row, and what labels add to their predictions' minutes. `ops.rs` hands these to either database.

use std::collections::{BTreeMap, HashMap};

use telemetry::{Batch, Label, Record, Truth};

use super::StoreError;
use crate::alerts::Attempt;
use crate::monitor::rollup::{self, Predicted, Rollup};

/// Largest count one client report is taken at (loss totals, summary rows): sums of a million
/// sessions' counts still fit a database integer, so no sum over them can overflow.
pub const MAX_CLIENT_COUNT: u64 = 1 << 40;

/// A count a client reported, saturated at [`MAX_CLIENT_COUNT`].
pub(super) fn client_count(n: u64) -> i64 {
    clamp(n.min(MAX_CLIENT_COUNT))
}

/// Database integers are i64; counts beyond that are saturated, not wrapped.
pub(super) fn clamp(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The rows one batch writes besides its own and its session's.
#[derive(Debug, Default)]
pub(super) struct BatchRows<'a> {
    /// The predictions' ids, in record order.
    pub ids: Vec<&'a str>,
    /// The predictions as one JSON array of rows, `[id, timestamp_ms, latency_us, engine, label,
    /// score, value, top_k]`, inserted by one statement in both databases.
    pub predictions: String,
    pub features: Vec<FeatureRow>,
    pub errors: Vec<ErrorRow<'a>>,
    pub labels: Vec<Label>,
}

#[derive(Debug)]
pub(super) struct FeatureRow {
    pub window_start_ms: i64,
    pub rows: i64,
    pub body: String,
}

#[derive(Debug)]
pub(super) struct ErrorRow<'a> {
    pub timestamp_ms: i64,
    pub kind: &'static str,
    pub message: &'a str,
}

impl<'a> BatchRows<'a> {
    pub(super) fn of(batch: &'a Batch) -> Result<BatchRows<'a>, StoreError> {
        let mut rows = BatchRows::default();
        let mut predictions = Vec::new();
        for record in &batch.records {
            match record {
                Record::Prediction(p) => {
                    let (label, score, value, top_k) = output_columns(&p.output);
                    rows.ids.push(&p.id);
                    predictions.push(serde_json::json!([
                        p.id,
                        p.timestamp_ms,
                        p.latency_us,
                        engine_str(p.engine),
                        label,
                        score,
                        value,
                        top_k
                    ]));
                }
                Record::Features(summary) => rows.features.push(FeatureRow {
                    window_start_ms: summary.window_start_ms,
                    rows: client_count(summary.rows),
                    body: json(summary, "feature summary")?,
                }),
                Record::Error(error) => rows.errors.push(ErrorRow {
                    timestamp_ms: error.timestamp_ms,
                    kind: error_kind_str(error.kind),
                    message: &error.message,
                }),
                Record::Label(label) => rows.labels.push(label.clone()),
            }
        }
        rows.predictions = json(&predictions, "predictions")?;
        Ok(rows)
    }
}

fn json(value: &impl serde::Serialize, what: &'static str) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt { what, message: e.to_string() })
}

/// The batch's prediction records, kept on its row so `GET /v1/models` sums batches instead of
/// counting predictions.
pub(super) fn prediction_count(batch: &Batch) -> i64 {
    clamp(batch.records.iter().filter(|r| matches!(r, Record::Prediction(_))).count() as u64)
}

/// Labels to store: one per prediction, the last one winning (as a later upload would), as one
/// JSON array of rows `[prediction_id, timestamp_ms, truth_class, truth_value]`.
#[derive(Debug)]
pub(super) struct LabelRows {
    pub labels: Vec<Label>,
    pub rows: String,
}

impl LabelRows {
    pub(super) fn of(labels: Vec<Label>) -> Result<LabelRows, StoreError> {
        let labels = last_label_per_prediction(labels);
        let rows: Vec<serde_json::Value> = labels
            .iter()
            .map(|l| {
                let (class, value) = truth_columns(&l.truth);
                serde_json::json!([l.prediction_id, l.timestamp_ms, class, value])
            })
            .collect();
        Ok(LabelRows { rows: json(&rows, "labels")?, labels })
    }

    pub(super) fn ids(&self) -> Vec<&str> {
        self.labels.iter().map(|l| l.prediction_id.as_str()).collect()
    }

    /// What the labels add to their predictions' minutes, per (model id, minute): each label
    /// takes back the truth it replaces.
    pub(super) fn rollups(
        &self,
        predicted: &HashMap<String, (i64, Predicted)>,
        old: &HashMap<String, Truth>,
    ) -> BTreeMap<(i64, i64), Rollup> {
        let mut rollups: BTreeMap<(i64, i64), Rollup> = BTreeMap::new();
        for label in &self.labels {
            let Some((model_id, p)) = predicted.get(&label.prediction_id) else { continue };
            if let Some((minute, rollup)) = rollup::of_label(Some(p), old.get(&label.prediction_id), &label.truth) {
                rollups.entry((*model_id, minute)).or_default().merge(&rollup);
            }
        }
        rollups
    }
}

/// Labels deduplicated by prediction id, the last one winning.
fn last_label_per_prediction(labels: Vec<Label>) -> Vec<Label> {
    let mut seen = HashMap::with_capacity(labels.len());
    let mut out: Vec<Label> = Vec::with_capacity(labels.len());
    for label in labels {
        match seen.get(&label.prediction_id) {
            Some(&i) => out[i] = label,
            None => {
                seen.insert(label.prediction_id.clone(), out.len());
                out.push(label);
            }
        }
    }
    out
}

/// A prediction's output as the columns store it: (class label, score, value, top-k JSON).
fn output_columns(output: &telemetry::Output) -> (Option<&str>, Option<f64>, Option<f64>, Option<String>) {
    match output {
        telemetry::Output::Class { label, score } => (Some(label), Some(f64::from(*score)), None, None),
        telemetry::Output::Value(v) => (None, None, Some(*v), None),
        telemetry::Output::TopK(classes) => {
            let best = classes.first();
            (
                best.map(|c| c.label.as_str()),
                best.map(|c| f64::from(c.score)),
                None,
                serde_json::to_string(classes).ok(),
            )
        }
    }
}

pub(super) fn truth_of(class: Option<String>, value: Option<f64>) -> Option<Truth> {
    match (class, value) {
        (Some(class), _) => Some(Truth::Class(class)),
        (None, Some(value)) => Some(Truth::Value(value)),
        (None, None) => None,
    }
}

fn truth_columns(truth: &Truth) -> (Option<&str>, Option<f64>) {
    match truth {
        Truth::Class(c) => (Some(c), None),
        Truth::Value(v) => (None, Some(*v)),
    }
}

/// The state and columns an attempt's outcome writes: (state, delivered_ms, next_attempt_ms, error).
pub(super) fn attempt_columns(attempt: &Attempt) -> (&'static str, Option<i64>, Option<i64>, Option<&str>) {
    match attempt {
        Attempt::Delivered { at_ms } => ("delivered", Some(*at_ms), None, None),
        Attempt::Retry { next_attempt_ms, error } => ("pending", None, Some(*next_attempt_ms), Some(error)),
        Attempt::Failed { error } => ("failed", None, None, Some(error)),
    }
}

fn engine_str(engine: telemetry::EngineKind) -> &'static str {
    match engine {
        telemetry::EngineKind::Cpu => "cpu",
        telemetry::EngineKind::Gpu => "gpu",
    }
}

pub(super) fn source_kind_str(kind: telemetry::SourceKind) -> &'static str {
    match kind {
        telemetry::SourceKind::Browser => "browser",
        telemetry::SourceKind::Edge => "edge",
        telemetry::SourceKind::Native => "native",
    }
}

fn error_kind_str(kind: telemetry::ErrorKind) -> &'static str {
    match kind {
        telemetry::ErrorKind::Inference => "inference",
        telemetry::ErrorKind::RejectedInput => "rejected_input",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn label(id: &str, class: &str) -> Label {
        Label { prediction_id: id.into(), timestamp_ms: 1, truth: Truth::Class(class.into()) }
    }

    #[test]
    fn the_last_label_per_prediction_wins() {
        let rows = LabelRows::of(vec![label("a", "x"), label("b", "y"), label("a", "z")]).unwrap();
        assert_eq!(rows.ids(), ["a", "b"]);
        assert_eq!(rows.rows, r#"[["a",1,"z",null],["b",1,"y",null]]"#);
    }

    #[test]
    fn a_correction_takes_back_the_truth_it_replaces() {
        let rows = LabelRows::of(vec![label("a", "y")]).unwrap();
        let predicted = HashMap::from([(
            "a".to_owned(),
            (7, Predicted { timestamp_ms: 120_000, label: Some("x".into()), value: None }),
        )]);
        let old = HashMap::from([("a".to_owned(), Truth::Class("x".into()))]);
        let rollups = rows.rollups(&predicted, &old);
        assert_eq!(rollups.keys().copied().collect::<Vec<_>>(), [(7, 120_000)]);
        // The same label again changes nothing.
        let same = HashMap::from([("a".to_owned(), Truth::Class("y".into()))]);
        assert!(rows.rollups(&predicted, &same).is_empty());
        // A label for a prediction not stored (yet) adds nothing now: the batch brings it later.
        assert!(rows.rollups(&HashMap::new(), &old).is_empty());
    }

    #[test]
    fn client_counts_saturate() {
        assert_eq!(client_count(u64::MAX), MAX_CLIENT_COUNT as i64);
        assert_eq!(clamp(u64::MAX), i64::MAX);
    }
}
