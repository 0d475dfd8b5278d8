//! Monitoring reports on one window of a model version: drift against the reference profile and
//! against the previous window, data integrity, performance from joined labels, and traffic.
//!
//! Counting happens as batches arrive: each batch's contribution (feature counts, predicted
//! classes, label/prediction pairs, latency and errors by engine and source) is a [`rollup`] stored
//! per model and minute, and a window's [`WindowData`] is the merge of its minutes. The `analysis`
//! crate does the statistics. A window is read in time proportional to its minutes, never to its
//! records or the history.

pub mod rollup;
mod span;

use std::collections::BTreeMap;

use analysis::drift::{self, ColumnDrift, DatasetDrift, Policy};
use analysis::histogram::{Histogram, reference_counts};
use analysis::integrity::{self, Finding};
use analysis::performance::{ClassificationMetrics, Confusion, Regression, RegressionMetrics};
use analysis::window::Window;
use serde::Serialize;
use telemetry::{FeatureKind, FeatureProfile, Profile, Sample};

pub use span::{Span, Width};

/// What the database holds for one window of a model version.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WindowData {
    pub features: Window,
    /// Predicted class → predictions.
    pub outputs: BTreeMap<String, u64>,
    pub traffic: Vec<Traffic>,
    /// Error kind → errors.
    pub errors: BTreeMap<String, u64>,
    /// Labelled class predictions: (true class, predicted class) counts.
    pub confusion: Confusion,
    /// Labelled value predictions.
    pub regression: Regression,
}

/// Predictions and latency for one engine and source kind.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Traffic {
    pub engine: String,
    pub source: String,
    pub predictions: u64,
    pub latency_mean_ms: f64,
    pub latency_max_ms: f64,
}

impl WindowData {
    pub fn predictions(&self) -> u64 {
        self.traffic.iter().map(|t| t.predictions).sum()
    }

    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    /// Errors over attempts (predictions plus errors); 0 with no traffic.
    pub fn error_rate(&self) -> f64 {
        let attempts = self.predictions() + self.error_count();
        if attempts == 0 { 0.0 } else { self.error_count() as f64 / attempts as f64 }
    }

    pub fn latency_mean_ms(&self) -> f64 {
        let n = self.predictions();
        if n == 0 {
            return 0.0;
        }
        self.traffic.iter().map(|t| t.latency_mean_ms * t.predictions as f64).sum::<f64>() / n as f64
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DriftReport {
    pub window: Span,
    pub previous_window: Span,
    pub rows: u64,
    pub previous_rows: u64,
    /// Against the reference profile; `None` until a profile is uploaded.
    pub vs_reference: Option<DatasetDrift>,
    /// Against the previous window (its counts take the reference's place).
    pub vs_previous: Option<DatasetDrift>,
    /// The predicted classes against the profile's target column.
    pub prediction: Option<ColumnDrift>,
    pub histograms: Vec<Histogram>,
    /// Features whose counts do not fit the profile's bins (summarised against another profile).
    pub skipped: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IntegrityReport {
    pub window: Span,
    pub rows: u64,
    pub findings: Vec<Finding>,
    pub errors: BTreeMap<String, u64>,
    pub error_rate: f64,
}

/// One window's performance and traffic.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WindowPerformance {
    pub window: Span,
    pub predictions: u64,
    pub labelled: u64,
    pub errors: u64,
    pub error_rate: f64,
    pub latency_mean_ms: f64,
    pub classification: Option<ClassificationMetrics>,
    pub regression: Option<RegressionMetrics>,
    pub traffic: Vec<Traffic>,
}

impl WindowPerformance {
    pub fn new(window: Span, data: &WindowData) -> WindowPerformance {
        let classified = data.confusion.n();
        WindowPerformance {
            window,
            predictions: data.predictions(),
            labelled: classified + data.regression.n,
            errors: data.error_count(),
            error_rate: data.error_rate(),
            latency_mean_ms: data.latency_mean_ms(),
            classification: (classified > 0).then(|| data.confusion.metrics()),
            regression: (data.regression.n > 0).then(|| data.regression.metrics()),
            traffic: data.traffic.clone(),
        }
    }
}

/// The stored reference profile of a model version, parsed and checked; a body that does not
/// parse or whose shapes do not fit (stored before profiles were checked) is `StoreError::Corrupt`.
pub async fn stored_profile(
    store: &dyn crate::store::Store,
    model: &str,
    version: &str,
) -> Result<Option<Profile>, crate::StoreError> {
    let body = store.profile(model.to_owned(), version.to_owned()).await?;
    let corrupt = |message| crate::StoreError::Corrupt { what: "profile", message };
    let Some(body) = body else { return Ok(None) };
    let profile: Profile = serde_json::from_str(&body).map_err(|e| corrupt(e.to_string()))?;
    profile.validate().map_err(corrupt)?;
    Ok(Some(profile))
}

/// Drift of `current` against the profile and against `previous`.
pub fn drift(
    profile: Option<&Profile>,
    window: Span,
    current: &WindowData,
    previous: &WindowData,
    policy: &Policy,
) -> DriftReport {
    let mut report = DriftReport {
        window,
        previous_window: window.previous(),
        rows: current.features.rows,
        previous_rows: previous.features.rows,
        vs_reference: None,
        vs_previous: None,
        prediction: None,
        histograms: Vec::new(),
        skipped: Vec::new(),
    };
    let Some(profile) = profile else { return report };
    let mut comparable = Vec::new();
    for feature in &profile.features {
        let reference = reference_counts(feature);
        let current_bins = bins_of(&current.features, feature);
        let previous_bins = bins_of(&previous.features, feature);
        if current_bins.len() != reference.len() || previous_bins.len() != reference.len() {
            report.skipped.push(format!(
                "{}: counted over {} bins, the profile has {} (summarised against another profile?)",
                feature.name,
                current_bins.len().max(previous_bins.len()),
                reference.len()
            ));
            continue;
        }
        report.histograms.push(Histogram::new(feature, current_bins.clone(), previous_bins.clone()));
        comparable.push((feature, current_bins, previous_bins));
    }
    let vs_reference =
        comparable.iter().map(|(feature, current, _)| drift::Column { profile: feature, current, raw: None }).collect();
    report.vs_reference = Some(drift::analyse(vs_reference, policy));
    // The previous window as the reference: same bins, its counts; the reference's spread still
    // normalises Wasserstein distances.
    let as_reference: Vec<FeatureProfile> =
        comparable.iter().map(|(feature, _, previous)| with_counts(feature, previous.clone())).collect();
    let vs_previous = as_reference
        .iter()
        .zip(&comparable)
        .map(|(reference, (_, current, _))| drift::Column { profile: reference, current, raw: None })
        .collect();
    report.vs_previous = Some(drift::analyse(vs_previous, policy));
    if let Some(target) = &profile.target
        && let FeatureKind::Category(dictionary) = &target.kind
    {
        let mut counts = vec![0u64; dictionary.counts.len()];
        for (label, n) in &current.outputs {
            counts[dictionary.bin(label)] += n;
        }
        let column = drift::Column { profile: target, current: &counts, raw: None };
        report.prediction = drift::analyse(vec![column], policy).columns.pop();
    }
    report
}

/// Integrity findings for the window. A field missing from every row is matched against new fields
/// by their sampled values (when the model opted into sampling), to tell a rename from a loss.
pub fn integrity(profile: Option<&Profile>, window: Span, data: &WindowData) -> IntegrityReport {
    let findings = match profile {
        Some(profile) => {
            let renamed = |missing: &str, candidate: &str| renamed_psi(profile, &data.features, missing, candidate);
            integrity::check(profile, &data.features, &integrity::Thresholds::default(), &renamed)
        }
        None => Vec::new(),
    };
    IntegrityReport {
        window,
        rows: data.features.rows,
        findings,
        errors: data.errors.clone(),
        error_rate: data.error_rate(),
    }
}

/// PSI between the missing feature's reference and the candidate field's sampled values counted in
/// the missing feature's bins; `None` without samples.
fn renamed_psi(profile: &Profile, window: &Window, missing: &str, candidate: &str) -> Option<f64> {
    let feature = profile.features.iter().find(|f| f.name == missing)?;
    let samples = window.unexpected_samples.get(candidate)?;
    if samples.is_empty() {
        return None;
    }
    let reference = reference_counts(feature);
    let mut counts = vec![0u64; reference.len()];
    for sample in samples {
        let bin = match (&feature.kind, sample) {
            (FeatureKind::Number(n), Sample::Number(v)) => n.bin(*v),
            (FeatureKind::Category(c), Sample::Category(v)) => c.bin(v),
            _ => return None,
        };
        counts[bin] += 1;
    }
    Some(analysis::distance::psi(reference, &counts))
}

fn bins_of(window: &Window, feature: &FeatureProfile) -> Vec<u64> {
    match window.features.get(&feature.name) {
        Some(counts) => counts.bins.clone(),
        None => vec![0; reference_counts(feature).len()],
    }
}

fn with_counts(feature: &FeatureProfile, counts: Vec<u64>) -> FeatureProfile {
    let mut copy = feature.clone();
    match &mut copy.kind {
        FeatureKind::Number(n) => n.counts = counts,
        FeatureKind::Category(c) => c.counts = counts,
    }
    copy
}

#[cfg(test)]
mod tests {
    use telemetry::{FeatureCounts, FeatureSummary, NumberProfile};

    use super::*;

    fn profile() -> Profile {
        let values: Vec<f64> = (0..1000).map(|i| f64::from(i % 100)).collect();
        let kind = FeatureKind::Number(NumberProfile::build(&values, 4).unwrap());
        Profile {
            baseline: None,
            profile_version: telemetry::PROFILE_VERSION,
            rows: 1000,
            features: vec![FeatureProfile { name: "x".into(), missing_rate: 0.0, kind }],
            target: None,
        }
    }

    fn data(bins: Vec<u64>) -> WindowData {
        let mut data = WindowData::default();
        data.features.add(&FeatureSummary {
            window_start_ms: 0,
            rows: bins.iter().sum(),
            features: vec![FeatureCounts {
                name: "x".into(),
                bins,
                missing: 0,
                type_mismatch: 0,
                unseen: 0,
                out_of_range: 0,
                samples: Vec::new(),
            }],
            unexpected_fields: Vec::new(),
        });
        data
    }

    #[test]
    fn drift_against_the_reference_and_the_previous_window() {
        let profile = profile();
        let reference = match &profile.features[0].kind {
            FeatureKind::Number(n) => n.counts.clone(),
            FeatureKind::Category(_) => unreachable!(),
        };
        let same = data(reference.clone());
        let mut shifted_bins = vec![0; reference.len()];
        *shifted_bins.last_mut().unwrap() = 1000;
        let shifted = data(shifted_bins);
        let span = Width::HOUR.containing(0);
        let report = drift(Some(&profile), span, &shifted, &same, &Policy::default());
        assert!(report.vs_reference.as_ref().unwrap().columns[0].drift, "{report:?}");
        assert!(report.vs_previous.as_ref().unwrap().columns[0].drift);
        assert_eq!(report.histograms[0].bins.len(), reference.len());
        assert_eq!(report.histograms[0].bins[0], "< 0");
        let calm = drift(Some(&profile), span, &same, &same, &Policy::default());
        assert!(!calm.vs_reference.unwrap().columns[0].drift);
        let wrong = drift(Some(&profile), span, &data(vec![1, 2]), &same, &Policy::default());
        assert_eq!(wrong.skipped.len(), 1, "{wrong:?}");
        assert!(drift(None, span, &same, &same, &Policy::default()).vs_reference.is_none());
    }
}
