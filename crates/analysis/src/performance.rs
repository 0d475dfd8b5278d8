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

/// Counts of (true class, predicted class).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Confusion {
    counts: BTreeMap<String, BTreeMap<String, u64>>,
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
    /// Rows: true class; columns: predicted class; both in `labels` order.
    pub labels: Vec<String>,
    pub matrix: Vec<Vec<u64>>,
}

fn f1(precision: f64, recall: f64) -> f64 {
    if precision + recall == 0.0 { 0.0 } else { 2.0 * precision * recall / (precision + recall) }
}

impl Confusion {
    pub fn add(&mut self, truth: &str, predicted: &str) {
        self.add_n(truth, predicted, 1);
    }

    pub fn add_n(&mut self, truth: &str, predicted: &str, n: u64) {
        *self.counts.entry(truth.to_owned()).or_default().entry(predicted.to_owned()).or_default() += n;
    }

    pub fn merge(&mut self, other: &Confusion) {
        for (truth, row) in &other.counts {
            for (predicted, n) in row {
                self.add_n(truth, predicted, *n);
            }
        }
    }

    pub fn n(&self) -> u64 {
        self.counts.values().flat_map(|r| r.values()).sum()
    }

    pub fn metrics(&self) -> ClassificationMetrics {
        let labels: Vec<String> = self
            .counts
            .iter()
            .flat_map(|(t, row)| std::iter::once(t.clone()).chain(row.keys().cloned()))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let count = |t: &str, p: &str| self.counts.get(t).and_then(|r| r.get(p)).copied().unwrap_or(0);
        let matrix: Vec<Vec<u64>> = labels.iter().map(|t| labels.iter().map(|p| count(t, p)).collect()).collect();
        let n = self.n();
        let correct: u64 = (0..labels.len()).map(|i| matrix[i][i]).sum();
        let mut classes = Vec::with_capacity(labels.len());
        for (i, label) in labels.iter().enumerate() {
            let tp = matrix[i][i];
            let predicted: u64 = matrix.iter().map(|row| row[i]).sum();
            let support: u64 = matrix[i].iter().sum();
            let precision = wilson(tp, predicted);
            let recall = wilson(tp, support);
            classes.push(ClassMetrics {
                label: label.clone(),
                f1: f1(precision.value, recall.value),
                precision,
                recall,
                support,
            });
        }
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
        let accuracy = wilson(correct, n);
        let micro = accuracy.value;
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
