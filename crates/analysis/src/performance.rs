//! Model performance from predictions joined with their labels: classification metrics with
//! confidence intervals, and regression errors. Both accumulate counts or sums, so they merge.
//!
//! Conventions follow scikit-learn: a class with no predictions has precision 0 (its
//! `zero_division=0`), micro averages pool the counts, macro averages weigh classes equally, weighted
//! averages weigh them by support. Intervals are Wilson score intervals at 95%, so that a change on
//! 30 labels is not read as certain.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// z for a two-sided 95% interval.
const Z95: f64 = 1.959_963_984_540_054;

/// A proportion with its Wilson interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Estimate {
    pub value: f64,
    pub low: f64,
    pub high: f64,
    /// The denominator: how many cases the proportion is over.
    pub n: u64,
}

/// The Wilson score interval for `successes` out of `n` (95%).
pub fn wilson(successes: u64, n: u64) -> Estimate {
    if n == 0 {
        return Estimate { value: 0.0, low: 0.0, high: 1.0, n };
    }
    let (k, n_f) = (successes as f64, n as f64);
    let p = k / n_f;
    let z2 = Z95 * Z95;
    let centre = (p + z2 / (2.0 * n_f)) / (1.0 + z2 / n_f);
    let half = Z95 * (p * (1.0 - p) / n_f + z2 / (4.0 * n_f * n_f)).sqrt() / (1.0 + z2 / n_f);
    Estimate { value: p, low: (centre - half).max(0.0), high: (centre + half).min(1.0), n }
}

/// The class every class beyond a bound is counted as ([`Confusion::fold`]); clients may not use
/// it as a class of their own (the wire schema refuses it), so it never mixes with a real class.
pub use telemetry::OTHER_CLASSES as OTHER;

/// Up to this many classes, [`ClassificationMetrics::matrix`] is given densely; beyond, it is
/// left out (its size grows with the square of the classes; the per-class metrics stay).
pub const MAX_MATRIX_CLASSES: usize = 256;

/// Counts of (true class, predicted class), kept sparse: memory and time grow with the pairs seen,
/// never with the square of the classes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Confusion {
    counts: BTreeMap<String, BTreeMap<String, u64>>,
    /// Pairs of two different classes that were both folded into [`OTHER`]: wrong predictions,
    /// which `(OTHER, OTHER)` would count as right.
    #[serde(default)]
    folded_wrong: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassMetrics {
    pub label: String,
    pub precision: Estimate,
    pub recall: Estimate,
    pub f1: f64,
    /// True instances of the class.
    pub support: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Average {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassificationMetrics {
    pub n: u64,
    pub accuracy: Estimate,
    pub classes: Vec<ClassMetrics>,
    pub macro_avg: Average,
    pub micro_avg: Average,
    pub weighted_avg: Average,
    /// Every class, sorted.
    pub labels: Vec<String>,
    /// Rows: true class; columns: predicted class; both in `labels` order. `None` beyond
    /// [`MAX_MATRIX_CLASSES`] classes.
    pub matrix: Option<Vec<Vec<u64>>>,
}

fn f1(precision: f64, recall: f64) -> f64 {
    if precision + recall == 0.0 { 0.0 } else { 2.0 * precision * recall / (precision + recall) }
}

/// Per class: true positives, predictions, true instances.
#[derive(Default, Clone, Copy)]
struct ClassCounts {
    tp: u64,
    predicted: u64,
    support: u64,
}

impl Confusion {
    pub fn add(&mut self, truth: &str, predicted: &str) {
        self.add_n(truth, predicted, 1);
    }

    /// Counts come from clients: sums saturate rather than overflow.
    pub fn add_n(&mut self, truth: &str, predicted: &str, n: u64) {
        let count = self.counts.entry(truth.to_owned()).or_default().entry(predicted.to_owned()).or_default();
        *count = count.saturating_add(n);
    }

    /// Adds `n` wrong predictions between classes that were both folded into [`OTHER`] elsewhere
    /// (the collector folds its signed rollups before they become a `Confusion`).
    pub fn add_folded_wrong(&mut self, n: u64) {
        self.folded_wrong = self.folded_wrong.saturating_add(n);
    }

    pub fn merge(&mut self, other: &Confusion) {
        for (truth, row) in &other.counts {
            for (predicted, n) in row {
                self.add_n(truth, predicted, *n);
            }
        }
        self.add_folded_wrong(other.folded_wrong);
    }

    pub fn n(&self) -> u64 {
        self.counts.values().flat_map(|r| r.values()).fold(self.folded_wrong, |a, b| a.saturating_add(*b))
    }

    /// How many classes appear, as truth or prediction.
    pub fn class_count(&self) -> usize {
        self.per_class().len()
    }

    /// The accuracy alone, in time linear in the pairs (no per-class work).
    pub fn accuracy(&self) -> Estimate {
        let correct = self.counts.iter().filter_map(|(t, row)| row.get(t)).fold(0u64, |a, b| a.saturating_add(*b));
        wilson(correct, self.n())
    }

    /// Keeps the `max_classes - 1` classes seen most often (as truth or prediction; ties by name)
    /// and counts every other as [`OTHER`]. Accuracy is unchanged; per-class metrics of the kept
    /// classes are unchanged; the folded ones are summed into one.
    pub fn fold(&mut self, max_classes: usize) {
        let per_class = self.per_class();
        if per_class.len() <= max_classes {
            return;
        }
        let totals = per_class.iter().map(|(label, c)| (*label, c.predicted.saturating_add(c.support)));
        let kept: BTreeSet<String> = keep(totals, max_classes).into_iter().map(str::to_owned).collect();
        let (counts, wrong) = fold_pairs(std::mem::take(&mut self.counts), &kept);
        self.counts = counts;
        self.add_folded_wrong(wrong);
    }

    fn per_class(&self) -> BTreeMap<&str, ClassCounts> {
        let mut classes: BTreeMap<&str, ClassCounts> = BTreeMap::new();
        for (truth, row) in &self.counts {
            for (predicted, &n) in row {
                let t = classes.entry(truth).or_default();
                t.support = t.support.saturating_add(n);
                if truth == predicted {
                    t.tp = t.tp.saturating_add(n);
                }
                let p = classes.entry(predicted).or_default();
                p.predicted = p.predicted.saturating_add(n);
            }
        }
        if self.folded_wrong > 0 {
            let other = classes.entry(OTHER).or_default();
            other.support = other.support.saturating_add(self.folded_wrong);
            other.predicted = other.predicted.saturating_add(self.folded_wrong);
        }
        classes
    }

    pub fn metrics(&self) -> ClassificationMetrics {
        let per_class = self.per_class();
        let labels: Vec<String> = per_class.keys().map(|l| (*l).to_owned()).collect();
        let n = self.n();
        let classes: Vec<ClassMetrics> = per_class
            .iter()
            .map(|(label, c)| {
                let precision = wilson(c.tp, c.predicted);
                let recall = wilson(c.tp, c.support);
                ClassMetrics {
                    label: (*label).to_owned(),
                    f1: f1(precision.value, recall.value),
                    precision,
                    recall,
                    support: c.support,
                }
            })
            .collect();
        // Classes only ever predicted (support 0) count in macro averages, as in scikit-learn.
        let k = classes.len().max(1) as f64;
        let macro_avg = Average {
            precision: classes.iter().map(|c| c.precision.value).sum::<f64>() / k,
            recall: classes.iter().map(|c| c.recall.value).sum::<f64>() / k,
            f1: classes.iter().map(|c| c.f1).sum::<f64>() / k,
        };
        let total = n.max(1) as f64;
        let weighted_avg = Average {
            precision: classes.iter().map(|c| c.precision.value * c.support as f64).sum::<f64>() / total,
            recall: classes.iter().map(|c| c.recall.value * c.support as f64).sum::<f64>() / total,
            f1: classes.iter().map(|c| c.f1 * c.support as f64).sum::<f64>() / total,
        };
        let accuracy = self.accuracy();
        let micro = accuracy.value;
        let matrix = (labels.len() <= MAX_MATRIX_CLASSES).then(|| self.dense(&labels));
        ClassificationMetrics {
            n,
            accuracy,
            classes,
            macro_avg,
            micro_avg: Average { precision: micro, recall: micro, f1: micro },
            weighted_avg,
            labels,
            matrix,
        }
    }

    fn dense(&self, labels: &[String]) -> Vec<Vec<u64>> {
        let index: BTreeMap<&str, usize> = labels.iter().enumerate().map(|(i, l)| (l.as_str(), i)).collect();
        let mut matrix = vec![vec![0u64; labels.len()]; labels.len()];
        let mut put = |t: &str, p: &str, n: u64| {
            if let (Some(&i), Some(&j)) = (index.get(t), index.get(p)) {
                matrix[i][j] = matrix[i][j].saturating_add(n);
            }
        };
        for (truth, row) in &self.counts {
            for (predicted, &n) in row {
                put(truth, predicted, n);
            }
        }
        // Folded wrong pairs are (other, other) but not right: off the diagonal has no cell for
        // them, so the matrix leaves them out and says so through `n`.
        matrix
    }
}

/// A count that sums saturating (counts come from clients): `u64`, or `i64` where corrections
/// subtract.
pub trait Count: Copy + Default {
    fn plus(self, other: Self) -> Self;
}

impl Count for u64 {
    fn plus(self, other: u64) -> u64 {
        self.saturating_add(other)
    }
}

impl Count for i64 {
    fn plus(self, other: i64) -> i64 {
        self.saturating_add(other)
    }
}

/// Class counts with every class outside `kept` counted as [`OTHER`].
pub fn fold_counts<N: Count>(counts: BTreeMap<String, N>, kept: &BTreeSet<String>) -> BTreeMap<String, N> {
    let mut folded: BTreeMap<String, N> = BTreeMap::new();
    for (class, n) in counts {
        let class = if kept.contains(&class) { class } else { OTHER.to_owned() };
        let into = folded.entry(class).or_default();
        *into = into.plus(n);
    }
    folded
}

/// (true, predicted) pairs with every class outside `kept` counted as [`OTHER`], and the count
/// of pairs of two different folded classes, left out of the pairs: they are wrong, and
/// `(OTHER, OTHER)` would count them right.
pub fn fold_pairs<N: Count>(
    pairs: BTreeMap<String, BTreeMap<String, N>>,
    kept: &BTreeSet<String>,
) -> (BTreeMap<String, BTreeMap<String, N>>, N) {
    let (mut folded, mut wrong): (BTreeMap<String, BTreeMap<String, N>>, N) = (BTreeMap::new(), N::default());
    for (truth, row) in pairs {
        for (predicted, n) in row {
            let (t, p) = (kept.contains(&truth), kept.contains(&predicted));
            if !t && !p && truth != predicted {
                wrong = wrong.plus(n);
                continue;
            }
            let t = if t { truth.clone() } else { OTHER.to_owned() };
            let p = if p { predicted } else { OTHER.to_owned() };
            let into = folded.entry(t).or_default().entry(p).or_default();
            *into = into.plus(n);
        }
    }
    (folded, wrong)
}

/// The `max - 1` classes with the largest totals (ties by name), never [`OTHER`] itself: what a
/// bound keeps when it folds the rest into [`OTHER`].
pub fn keep<'a>(totals: impl IntoIterator<Item = (&'a str, u64)>, max: usize) -> BTreeSet<&'a str> {
    let mut ranked: Vec<(&str, u64)> = totals.into_iter().filter(|(label, _)| *label != OTHER).collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    ranked.into_iter().take(max.saturating_sub(1)).map(|(label, _)| label).collect()
}

/// Sums for regression errors.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Regression {
    pub n: u64,
    pub sum_abs_error: f64,
    pub sum_squared_error: f64,
    pub sum_truth: f64,
    pub sum_truth_squared: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RegressionMetrics {
    pub n: u64,
    pub mae: f64,
    pub rmse: f64,
    pub r2: f64,
}

impl Regression {
    pub fn add(&mut self, truth: f64, predicted: f64) {
        let e = predicted - truth;
        self.n += 1;
        self.sum_abs_error += e.abs();
        self.sum_squared_error += e * e;
        self.sum_truth += truth;
        self.sum_truth_squared += truth * truth;
    }

    pub fn merge(&mut self, other: &Regression) {
        self.n += other.n;
        self.sum_abs_error += other.sum_abs_error;
        self.sum_squared_error += other.sum_squared_error;
        self.sum_truth += other.sum_truth;
        self.sum_truth_squared += other.sum_truth_squared;
    }

    pub fn metrics(&self) -> RegressionMetrics {
        let n = self.n.max(1) as f64;
        let total = self.sum_truth_squared - self.sum_truth * self.sum_truth / n;
        RegressionMetrics {
            n: self.n,
            mae: self.sum_abs_error / n,
            rmse: (self.sum_squared_error / n).sqrt(),
            r2: if total > 0.0 { 1.0 - self.sum_squared_error / total } else { f64::NAN },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_of_classes_cost_their_pairs_not_their_square() {
        // 12,000 classes, half of the 12,000 labels right: a dense matrix would be 1.15 GB.
        let mut confusion = Confusion::default();
        for i in 0..12_000 {
            let truth = format!("t{i}");
            confusion.add(&truth, if i % 2 == 0 { &truth } else { "t0" });
        }
        let m = confusion.metrics();
        assert_eq!((m.n, m.classes.len(), m.matrix.is_none()), (12_000, 12_000, true));
        assert_eq!(m.accuracy.value, 0.5);
        assert_eq!(confusion.accuracy(), m.accuracy);
        confusion.fold(256);
        let folded = confusion.metrics();
        assert_eq!((folded.n, folded.classes.len(), folded.accuracy), (12_000, 256, m.accuracy));
        assert_eq!(folded.labels.iter().filter(|l| *l == OTHER).count(), 1);
        let matrix = folded.matrix.expect("256 classes are given densely");
        assert_eq!(matrix.len(), 256);
    }

    #[test]
    fn folding_keeps_the_classes_seen_most_and_never_makes_a_wrong_pair_right() {
        let mut confusion = Confusion::default();
        for (t, p, n) in [("a", "a", 50), ("a", "b", 10), ("b", "b", 30), ("x", "y", 3), ("y", "y", 2), ("z", "x", 1)] {
            confusion.add_n(t, p, n);
        }
        let before = confusion.metrics();
        confusion.fold(3);
        let after = confusion.metrics();
        assert_eq!(after.labels, [OTHER, "a", "b"]);
        assert_eq!((after.n, after.accuracy), (before.n, before.accuracy), "x→y and z→x stay wrong, y→y right");
        for kept in ["a", "b"] {
            let of = |m: &ClassificationMetrics| m.classes.iter().find(|c| c.label == kept).cloned();
            assert_eq!(of(&after), of(&before), "{kept}'s metrics are unchanged");
        }
        let other = &after.classes[0];
        assert_eq!((other.support, other.precision.n, other.recall.value), (6, 6, 2.0 / 6.0));
        // Folding again, or merging folded counts, changes nothing further.
        let mut again = confusion.clone();
        again.fold(3);
        assert_eq!(again, confusion);
    }
}
