//! Drift per column and for the data set: which statistic decides, at what threshold, and why.
//!
//! Tests that only look at p-values fire on noise once samples are large (at 100k rows a KS test
//! at 0.05 flags unshifted columns), so the choice depends on the sample size:
//! - below `min_rows` current rows there is no verdict (`insufficient_data`);
//! - with at least `large_sample` rows on both sides, an effect size decides: Wasserstein-1 divided
//!   by the reference standard deviation for numbers, Jensen–Shannon distance (base 2) for
//!   categories, each against a threshold (0.1 by default, Evidently's defaults);
//! - in between, a test decides: Kolmogorov–Smirnov for numbers, chi-square for categories, with
//!   Benjamini–Hochberg control of the false discovery rate across all tested columns.
//!
//! Every column also reports PSI, Jensen–Shannon, Hellinger and chi-square, whatever decided, and an
//! `explanation` that says which statistic fired and why.

use serde::Serialize;
use telemetry::{FeatureKind, FeatureProfile};

use crate::distance::{self, ChiSquare};

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Policy {
    /// Fewer current rows than this: no verdict.
    pub min_rows: u64,
    /// At least this many rows on both sides: effect sizes decide, not p-values.
    pub large_sample: u64,
    /// Wasserstein-1 / reference std at or above which a number column drifted.
    pub number_threshold: f64,
    /// Jensen–Shannon distance at or above which a category column drifted.
    pub category_threshold: f64,
    /// False discovery rate for the p-value tests (Benjamini–Hochberg across columns).
    pub alpha: f64,
    /// Share of drifted columns at or above which the data set drifted.
    pub dataset_share: f64,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            min_rows: 100,
            large_sample: 1000,
            number_threshold: 0.1,
            category_threshold: 0.1,
            alpha: 0.05,
            dataset_share: 0.5,
        }
    }
}

/// One column to judge: its reference profile and the current counts over the profile's bins.
#[derive(Debug)]
pub struct Column<'a> {
    pub profile: &'a FeatureProfile,
    /// Counts over the profile's bins (present values only).
    pub current: &'a [u64],
    /// Raw values of both sides, when available (offline, or sampled): exact KS and Wasserstein.
    pub raw: Option<(Vec<f64>, Vec<f64>)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Statistic {
    WassersteinNormed,
    JensenShannon,
    KsPValue,
    ChiSquarePValue,
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Number,
    Category,
}

/// The verdict on one column, with every statistic computed for it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ColumnDrift {
    pub name: String,
    pub kind: Kind,
    /// The statistic that decided.
    pub statistic: Statistic,
    pub value: f64,
    pub threshold: f64,
    pub drift: bool,
    /// No verdict for lack of rows.
    pub insufficient_data: bool,
    pub reference_rows: u64,
    pub current_rows: u64,
    pub psi: f64,
    pub jensen_shannon: f64,
    pub hellinger: f64,
    pub chi_square: ChiSquare,
    /// Numbers: Wasserstein-1 / reference std (exact on raw values, else binned).
    pub wasserstein_normed: Option<f64>,
    /// Numbers: the KS statistic (exact on raw values, else the binned lower bound).
    pub ks_statistic: Option<f64>,
    /// Numbers, binned: how far the binned KS statistic may be below the exact one.
    pub ks_binning_bound: Option<f64>,
    pub p_value: Option<f64>,
    /// After Benjamini–Hochberg across the columns tested by p-value.
    pub adjusted_p_value: Option<f64>,
    pub explanation: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DatasetDrift {
    pub columns: Vec<ColumnDrift>,
    pub drifted_columns: usize,
    pub share: f64,
    pub dataset_drift: bool,
    pub policy: Policy,
}

/// Judges every column, then the data set.
pub fn analyse(columns: Vec<Column<'_>>, policy: &Policy) -> DatasetDrift {
    let mut results: Vec<ColumnDrift> = columns.into_iter().map(|c| measure(c, policy)).collect();
    // Benjamini–Hochberg over the columns a p-value decides.
    let tested: Vec<usize> = results
        .iter()
        .enumerate()
        .filter(|(_, r)| matches!(r.statistic, Statistic::KsPValue | Statistic::ChiSquarePValue))
        .map(|(i, _)| i)
        .collect();
    let p_values: Vec<f64> = tested.iter().map(|&i| results[i].p_value.unwrap_or(1.0)).collect();
    for (&i, adjusted) in tested.iter().zip(benjamini_hochberg(&p_values)) {
        let r = &mut results[i];
        r.adjusted_p_value = Some(adjusted);
        r.value = adjusted;
        r.drift = adjusted < policy.alpha;
        let test = if r.statistic == Statistic::KsPValue { "Kolmogorov–Smirnov" } else { "chi-square" };
        r.explanation = format!(
            "{test} p = {:.3e}, {} {:.3e} after Benjamini–Hochberg across {} tested columns, {} α = {} \
             ({} reference and {} current rows: below {} a test decides, so few rows do not read as drift)",
            r.p_value.unwrap_or(1.0),
            "adjusted to",
            adjusted,
            tested.len(),
            if r.drift { "below" } else { "not below" },
            policy.alpha,
            r.reference_rows,
            r.current_rows,
            policy.large_sample
        );
    }
    let judged = results.iter().filter(|r| !r.insufficient_data).count();
    let drifted_columns = results.iter().filter(|r| r.drift).count();
    let share = if judged == 0 { 0.0 } else { drifted_columns as f64 / judged as f64 };
    DatasetDrift {
        dataset_drift: judged > 0 && share >= policy.dataset_share,
        columns: results,
        drifted_columns,
        share,
        policy: *policy,
    }
}

fn measure(column: Column<'_>, policy: &Policy) -> ColumnDrift {
    let Column { profile, current, raw } = column;
    let (kind, reference): (Kind, &[u64]) = match &profile.kind {
        FeatureKind::Number(n) => (Kind::Number, &n.counts),
        FeatureKind::Category(c) => (Kind::Category, &c.counts),
    };
    let reference_rows: u64 = reference.iter().sum();
    let current_rows: u64 = current.iter().sum();
    let mut result = ColumnDrift {
        name: profile.name.clone(),
        kind,
        statistic: Statistic::None,
        value: f64::NAN,
        threshold: f64::NAN,
        drift: false,
        insufficient_data: false,
        reference_rows,
        current_rows,
        psi: distance::psi(reference, current),
        jensen_shannon: distance::js_distance(reference, current),
        hellinger: distance::hellinger(reference, current),
        chi_square: distance::chi_square(reference, current),
        wasserstein_normed: None,
        ks_statistic: None,
        ks_binning_bound: None,
        p_value: None,
        adjusted_p_value: None,
        explanation: String::new(),
    };
    if let FeatureKind::Number(n) = &profile.kind {
        match raw {
            Some((mut r, mut c)) => {
                let ks = distance::ks_2samp(&mut r, &mut c);
                result.ks_statistic = Some(ks.statistic);
                result.p_value = Some(ks.p_value);
                result.wasserstein_normed = Some(distance::normalise(distance::wasserstein_sorted(&r, &c), n.std));
            }
            None => {
                let ks = distance::binned_ks(reference, current);
                result.ks_statistic = Some(ks.statistic);
                result.ks_binning_bound = Some(ks.bound);
                result.p_value = Some(ks.p_value);
                result.wasserstein_normed = Some(distance::binned_wasserstein(&n.edges, reference, current, n.std));
            }
        }
    } else {
        result.p_value = Some(result.chi_square.p_value);
    }
    if current_rows < policy.min_rows || reference_rows < policy.min_rows {
        result.insufficient_data = true;
        result.explanation = format!(
            "no verdict: {current_rows} current and {reference_rows} reference rows, fewer than the minimum of {}",
            policy.min_rows
        );
        return result;
    }
    let large = current_rows >= policy.large_sample && reference_rows >= policy.large_sample;
    match (kind, large) {
        (Kind::Number, true) => {
            let value = result.wasserstein_normed.unwrap_or(f64::NAN);
            decide_by_effect(&mut result, Statistic::WassersteinNormed, value, policy.number_threshold, policy);
        }
        (Kind::Category, true) => {
            let value = result.jensen_shannon;
            decide_by_effect(&mut result, Statistic::JensenShannon, value, policy.category_threshold, policy);
        }
        // Decided in `analyse`, after the multiple-testing correction.
        (Kind::Number, false) => {
            result.statistic = Statistic::KsPValue;
            result.threshold = policy.alpha;
        }
        (Kind::Category, false) => {
            result.statistic = Statistic::ChiSquarePValue;
            result.threshold = policy.alpha;
        }
    }
    result
}

fn decide_by_effect(result: &mut ColumnDrift, statistic: Statistic, value: f64, threshold: f64, policy: &Policy) {
    result.statistic = statistic;
    result.value = value;
    result.threshold = threshold;
    result.drift = value >= threshold;
    let name = match statistic {
        Statistic::WassersteinNormed => "Wasserstein-1 / reference std",
        _ => "Jensen–Shannon distance (base 2)",
    };
    result.explanation = format!(
        "{name} = {value:.4} {} {threshold} ({} reference and {} current rows: from {} rows on an effect size \
         decides, since p-values flag negligible differences at this size; p = {:.2e} for the record)",
        if result.drift { "≥" } else { "<" },
        result.reference_rows,
        result.current_rows,
        policy.large_sample,
        result.p_value.unwrap_or(f64::NAN),
    );
}

/// Benjamini–Hochberg adjusted p-values (the step-up procedure; monotone, capped at 1).
pub fn benjamini_hochberg(p_values: &[f64]) -> Vec<f64> {
    let m = p_values.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| p_values[a].total_cmp(&p_values[b]));
    let mut adjusted = vec![1.0; m];
    let mut running = 1.0f64;
    for (rank, &i) in order.iter().enumerate().rev() {
        running = running.min(p_values[i] * m as f64 / (rank + 1) as f64);
        adjusted[i] = running.min(1.0);
    }
    adjusted
}
