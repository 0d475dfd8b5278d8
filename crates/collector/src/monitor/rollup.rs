//! Rollups: what each batch adds to the windows, computed at ingest and stored per model and
//! minute, so a window is read as the merge of its minutes instead of a scan of its records.
//!
//! A batch adds its predictions (class counts, traffic and latency by engine and source), feature
//! summaries and errors to the minute of their event time. A label adds its (truth, predicted)
//! pair to its prediction's minute, whichever arrives first: the label path looks the prediction
//! up, and the prediction path looks up labels stored before it. A corrected label takes its old
//! pair back (counts are signed for that). Several rollup rows of one minute are merged into one by
//! [`crate::store::Store::compact_rollups`]; reading merges whatever rows there are, so compaction
//! only saves work.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use analysis::performance::{Regression, fold_counts, fold_pairs, keep};
use analysis::window::Window;
use serde::{Deserialize, Serialize};
use telemetry::{Batch, Output, Record, Truth};

use super::{Traffic, WindowData};

/// Rollups are kept per minute: windows are whole minutes.
pub const BUCKET_MS: i64 = 60_000;

/// Classes a window reports: beyond, the classes seen least are counted as one, [`OTHER`](analysis::performance::OTHER)
/// (accuracy stays exact). Class names come from clients; without this bound one batch of
/// thousands of classes costs every read the square of them.
pub const MAX_CLASSES: usize = 256;

/// Merging folds classes once a rollup holds more than this many, so a window's merge never
/// holds more than a few times [`MAX_CLASSES`] at once.
const MERGE_CLASSES: usize = 2 * MAX_CLASSES;

/// The minute holding `ms` (a client's clock: clamped to years 0 to 9999 like every window).
pub fn bucket(ms: i64) -> i64 {
    let ms = ms.clamp(-super::span::MAX_TIME_MS, super::span::MAX_TIME_MS);
    ms.div_euclid(BUCKET_MS) * BUCKET_MS
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Rollup {
    pub features: Window,
    /// Predicted class → predictions.
    pub outputs: BTreeMap<String, u64>,
    /// `engine/source` → predictions and latency.
    pub traffic: BTreeMap<String, TrafficSums>,
    /// Error kind → errors.
    pub errors: BTreeMap<String, u64>,
    /// True class → predicted class → labelled predictions (signed: corrections subtract).
    pub labels: BTreeMap<String, BTreeMap<String, i64>>,
    pub regression: RegressionSums,
    /// Labelled predictions whose true and predicted classes differ but were both folded into
    /// [`OTHER`](analysis::performance::OTHER) (signed, as `labels`).
    pub folded_wrong: i64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct TrafficSums {
    pub predictions: u64,
    pub latency_sum_us: u64,
    pub latency_max_us: u64,
}

/// Regression sums, signed so that a corrected label can take its old contribution back.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct RegressionSums {
    pub n: i64,
    pub sum_abs_error: f64,
    pub sum_squared_error: f64,
    pub sum_truth: f64,
    pub sum_truth_squared: f64,
}

/// A stored prediction's output, as a label is judged against it.
#[derive(Debug, Clone, PartialEq)]
pub struct Predicted {
    pub timestamp_ms: i64,
    pub label: Option<String>,
    pub value: Option<f64>,
}

impl Rollup {
    /// Adds `other`'s counts (saturating: they come from clients), folding classes beyond
    /// [`MERGE_CLASSES`].
    pub fn merge(&mut self, other: &Rollup) {
        self.features.merge(&other.features);
        for (label, n) in &other.outputs {
            let into = self.outputs.entry(label.clone()).or_default();
            *into = into.saturating_add(*n);
        }
        for (key, t) in &other.traffic {
            let into = self.traffic.entry(key.clone()).or_default();
            into.predictions = into.predictions.saturating_add(t.predictions);
            into.latency_sum_us = into.latency_sum_us.saturating_add(t.latency_sum_us);
            into.latency_max_us = into.latency_max_us.max(t.latency_max_us);
        }
        for (kind, n) in &other.errors {
            let into = self.errors.entry(kind.clone()).or_default();
            *into = into.saturating_add(*n);
        }
        for (truth, row) in &other.labels {
            let into = self.labels.entry(truth.clone()).or_default();
            for (predicted, n) in row {
                let count = into.entry(predicted.clone()).or_default();
                *count = count.saturating_add(*n);
            }
        }
        self.folded_wrong = self.folded_wrong.saturating_add(other.folded_wrong);
        if self.classes().len() > MERGE_CLASSES {
            self.fold_classes(MAX_CLASSES);
        }
        let (a, b) = (&mut self.regression, &other.regression);
        a.n = a.n.saturating_add(b.n);
        a.sum_abs_error += b.sum_abs_error;
        a.sum_squared_error += b.sum_squared_error;
        a.sum_truth += b.sum_truth;
        a.sum_truth_squared += b.sum_truth_squared;
    }

    /// Every class named, with how often: as a prediction, a true class or a predicted one.
    fn classes(&self) -> BTreeMap<&str, u64> {
        let mut totals: BTreeMap<&str, u64> = BTreeMap::new();
        for (class, n) in &self.outputs {
            let total = totals.entry(class).or_default();
            *total = total.saturating_add(*n);
        }
        for (truth, row) in &self.labels {
            for (predicted, n) in row {
                for class in [truth, predicted] {
                    let total = totals.entry(class).or_default();
                    *total = total.saturating_add(n.unsigned_abs());
                }
            }
        }
        totals
    }

    /// Keeps the `max - 1` classes named most and counts the others as [`OTHER`](analysis::performance::OTHER).
    fn fold_classes(&mut self, max: usize) {
        let kept: BTreeSet<String> = keep(self.classes(), max).into_iter().map(str::to_owned).collect();
        self.outputs = fold_counts(std::mem::take(&mut self.outputs), &kept);
        let (labels, wrong) = fold_pairs(std::mem::take(&mut self.labels), &kept);
        self.labels = labels;
        self.folded_wrong = self.folded_wrong.saturating_add(wrong);
    }

    /// Adds (`sign` = 1) or takes back (-1) a label for a prediction.
    pub fn add_label(&mut self, truth: &Truth, predicted: &Predicted, sign: i64) {
        match (truth, &predicted.label, predicted.value) {
            (Truth::Class(truth), Some(label), _) => {
                *self.labels.entry(truth.clone()).or_default().entry(label.clone()).or_default() += sign;
            }
            (Truth::Value(truth), _, Some(value)) => {
                let (s, e) = (sign as f64, value - truth);
                let r = &mut self.regression;
                r.n += sign;
                r.sum_abs_error += s * e.abs();
                r.sum_squared_error += s * e * e;
                r.sum_truth += s * truth;
                r.sum_truth_squared += s * truth * truth;
            }
            // A class label for a value output or the reverse: nothing to score.
            _ => {}
        }
    }

    pub fn into_window(mut self) -> WindowData {
        if self.classes().len() > MAX_CLASSES {
            self.fold_classes(MAX_CLASSES);
        }
        let mut data =
            WindowData { features: self.features, outputs: self.outputs, errors: self.errors, ..WindowData::default() };
        for (key, t) in self.traffic {
            let (engine, source) = key.split_once('/').unwrap_or((key.as_str(), ""));
            data.traffic.push(Traffic {
                engine: engine.to_owned(),
                source: source.to_owned(),
                predictions: t.predictions,
                latency_mean_ms: if t.predictions == 0 {
                    0.0
                } else {
                    t.latency_sum_us as f64 / t.predictions as f64 / 1000.0
                },
                latency_max_ms: t.latency_max_us as f64 / 1000.0,
            });
        }
        for (truth, row) in &self.labels {
            for (predicted, &n) in row {
                if n > 0 {
                    data.confusion.add_n(truth, predicted, n.unsigned_abs());
                }
            }
        }
        if self.folded_wrong > 0 {
            data.confusion.add_folded_wrong(self.folded_wrong.unsigned_abs());
        }
        let r = self.regression;
        if r.n > 0 {
            data.regression = Regression {
                n: r.n.unsigned_abs(),
                sum_abs_error: r.sum_abs_error,
                sum_squared_error: r.sum_squared_error,
                sum_truth: r.sum_truth,
                sum_truth_squared: r.sum_truth_squared,
            };
        }
        data
    }
}

/// What `batch` adds, per minute. `known` holds labels stored before their predictions arrived.
pub fn of_batch(batch: &Batch, known: &HashMap<String, Truth>) -> BTreeMap<i64, Rollup> {
    let mut rollups: BTreeMap<i64, Rollup> = BTreeMap::new();
    let source = match batch.source.kind {
        telemetry::SourceKind::Browser => "browser",
        telemetry::SourceKind::Edge => "edge",
        telemetry::SourceKind::Native => "native",
    };
    for record in &batch.records {
        match record {
            Record::Prediction(p) => {
                let rollup = rollups.entry(bucket(p.timestamp_ms)).or_default();
                let predicted = predicted_of(p);
                if let Some(label) = &predicted.label {
                    *rollup.outputs.entry(label.clone()).or_default() += 1;
                }
                let engine = match p.engine {
                    telemetry::EngineKind::Cpu => "cpu",
                    telemetry::EngineKind::Gpu => "gpu",
                };
                let t = rollup.traffic.entry(format!("{engine}/{source}")).or_default();
                t.predictions += 1;
                t.latency_sum_us += u64::from(p.latency_us);
                t.latency_max_us = t.latency_max_us.max(u64::from(p.latency_us));
                if let Some(truth) = known.get(&p.id) {
                    rollup.add_label(truth, &predicted, 1);
                }
            }
            Record::Features(summary) => {
                rollups.entry(bucket(summary.window_start_ms)).or_default().features.add(summary)
            }
            Record::Error(e) => {
                let kind = match e.kind {
                    telemetry::ErrorKind::Inference => "inference",
                    telemetry::ErrorKind::RejectedInput => "rejected_input",
                };
                *rollups.entry(bucket(e.timestamp_ms)).or_default().errors.entry(kind.to_owned()).or_default() += 1;
            }
            Record::Label(_) => {}
        }
    }
    rollups
}

/// A prediction's output as labels are judged against it: the top class, or the value.
pub fn predicted_of(p: &telemetry::Prediction) -> Predicted {
    let (label, value) = match &p.output {
        Output::Class { label, .. } => (Some(label.clone()), None),
        Output::TopK(classes) => (classes.first().map(|c| c.label.clone()), None),
        Output::Value(v) => (None, Some(*v)),
    };
    Predicted { timestamp_ms: p.timestamp_ms, label, value }
}

/// What a label adds to its prediction's minute: the new pair, less the pair of the label it
/// replaces. `None` when there is nothing to add (no change, or the prediction is not stored yet:
/// its ingest will count the label).
pub fn of_label(predicted: Option<&Predicted>, old: Option<&Truth>, new: &Truth) -> Option<(i64, Rollup)> {
    let predicted = predicted?;
    if old == Some(new) {
        return None;
    }
    let mut rollup = Rollup::default();
    if let Some(old) = old {
        rollup.add_label(old, predicted, -1);
    }
    rollup.add_label(new, predicted, 1);
    Some((bucket(predicted.timestamp_ms), rollup))
}

/// Serialises for the `rollups` table: MessagePack (a window read parses 60 of these per hour, and
/// MessagePack parses several times faster than JSON for these number-heavy bodies).
pub fn to_body(rollup: &Rollup) -> Result<Vec<u8>, crate::StoreError> {
    rmp_serde::to_vec(rollup).map_err(|e| crate::StoreError::Corrupt { what: "rollup", message: e.to_string() })
}

/// Merges stored rollup bodies into one.
pub fn merge_bodies<'a>(bodies: impl IntoIterator<Item = &'a [u8]>) -> Result<Rollup, crate::StoreError> {
    let mut total = Rollup::default();
    for body in bodies {
        let rollup: Rollup = rmp_serde::from_slice(body)
            .map_err(|e| crate::StoreError::Corrupt { what: "rollup", message: e.to_string() })?;
        total.merge(&rollup);
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use analysis::performance::OTHER;

    #[test]
    fn a_corrected_label_takes_its_old_pair_back() {
        let predicted = Predicted { timestamp_ms: 61_000, label: Some("a".into()), value: None };
        let (minute, first) = of_label(Some(&predicted), None, &Truth::Class("b".into())).unwrap();
        assert_eq!(minute, 60_000);
        let (_, fix) = of_label(Some(&predicted), Some(&Truth::Class("b".into())), &Truth::Class("a".into())).unwrap();
        let mut total = first;
        total.merge(&fix);
        let data = total.into_window();
        assert_eq!((data.confusion.n(), data.confusion.metrics().accuracy.value), (1, 1.0));
        assert!(of_label(Some(&predicted), Some(&Truth::Class("a".into())), &Truth::Class("a".into())).is_none());
        assert!(of_label(None, None, &Truth::Class("a".into())).is_none(), "no prediction yet: its ingest counts it");
        // A client's absurd clock neither overflows nor panics.
        assert!(bucket(i64::MIN) < bucket(i64::MAX));
    }

    /// A minute of `classes` distinct predicted classes, each labelled: right for even ones.
    fn many_classes(first: usize, classes: usize) -> Rollup {
        let mut rollup = Rollup::default();
        for i in first..first + classes {
            let class = format!("c{i}");
            *rollup.outputs.entry(class.clone()).or_default() += 1;
            let truth = if i % 2 == 0 { class.clone() } else { format!("t{i}") };
            *rollup.labels.entry(truth).or_default().entry(class).or_default() += 1;
        }
        rollup
    }

    #[test]
    fn a_window_of_thousands_of_classes_reports_a_bounded_few_and_the_exact_accuracy() {
        let mut window = Rollup::default();
        for minute in 0..12 {
            window.merge(&many_classes(minute * 1000, 1000));
            assert!(window.classes().len() <= 2 * MERGE_CLASSES, "merging holds a bounded set of classes");
        }
        let data = window.clone().into_window();
        assert!(data.outputs.len() <= MAX_CLASSES && data.outputs.contains_key(OTHER), "{}", data.outputs.len());
        assert_eq!(data.outputs.values().sum::<u64>(), 12_000, "every prediction still counted");
        assert!(data.confusion.class_count() <= MAX_CLASSES);
        assert_eq!((data.confusion.n(), data.confusion.accuracy().value), (12_000, 0.5));
        // A body made of folded rollups reads back as it was written.
        let body = to_body(&window).unwrap();
        assert_eq!(merge_bodies([body.as_slice()]).unwrap(), window);
    }

    #[test]
    fn counts_from_clients_saturate() {
        let mut big = Rollup::default();
        big.outputs.insert("a".into(), u64::MAX);
        big.errors.insert("inference".into(), u64::MAX);
        big.traffic.insert(
            "cpu/edge".into(),
            TrafficSums { predictions: u64::MAX, latency_sum_us: u64::MAX, latency_max_us: 1 },
        );
        let mut total = big.clone();
        total.merge(&big);
        assert_eq!((total.outputs["a"], total.errors["inference"]), (u64::MAX, u64::MAX));
        assert_eq!(total.into_window().predictions(), u64::MAX);
    }
}
