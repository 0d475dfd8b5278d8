//! Alert rules: which signal of a window, against which threshold, on how many samples, how severe.
//!
//! A rule yields one verdict per subject: the whole model (`""`) for dataset-level signals, a
//! feature for drift and integrity findings. `None` means "no verdict" (too few samples, no
//! profile): the alert state is left as it is, so a quiet window neither fires nor resolves.

use serde::{Deserialize, Serialize};

use crate::monitor::{DriftReport, IntegrityReport, Width, WindowData};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub name: String,
    pub metric: Metric,
    /// The level that fires: below it for accuracy, precision, recall and F1, above it otherwise.
    /// Drift and integrity rules use the analysis policy's thresholds when this is absent.
    #[serde(default)]
    pub threshold: Option<f64>,
    /// The tumbling window the rule looks at.
    #[serde(default = "default_window")]
    pub window: Width,
    /// Fewer samples than this in the window (rows, labelled predictions or attempts): no verdict.
    #[serde(default = "default_min_samples")]
    pub min_samples: u64,
    #[serde(default)]
    pub severity: Severity,
    /// Only this model; all models when absent.
    #[serde(default)]
    pub model: Option<String>,
}

fn default_window() -> Width {
    Width::HOUR
}

fn default_min_samples() -> u64 {
    100
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// The share of drifted features against the reference (threshold: the policy's share).
    DatasetDrift,
    /// One alert per drifted feature against the reference.
    FeatureDrift,
    /// The predicted classes against the profile's target column.
    PredictionDrift,
    /// One alert per integrity finding (missing, renamed or unexpected field, new categories, ...).
    Integrity,
    /// Fires when the whole 95% Wilson interval lies below the threshold.
    Accuracy,
    PrecisionMacro,
    RecallMacro,
    F1Macro,
    Mae,
    Rmse,
    ErrorRate,
    LatencyMeanMs,
}

impl Metric {
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::DatasetDrift => "dataset_drift",
            Metric::FeatureDrift => "feature_drift",
            Metric::PredictionDrift => "prediction_drift",
            Metric::Integrity => "integrity",
            Metric::Accuracy => "accuracy",
            Metric::PrecisionMacro => "precision_macro",
            Metric::RecallMacro => "recall_macro",
            Metric::F1Macro => "f1_macro",
            Metric::Mae => "mae",
            Metric::Rmse => "rmse",
            Metric::ErrorRate => "error_rate",
            Metric::LatencyMeanMs => "latency_mean_ms",
        }
    }

    /// Whether the rule needs the drift or integrity report (and so the profile).
    pub fn needs_profile(self) -> bool {
        matches!(self, Metric::DatasetDrift | Metric::FeatureDrift | Metric::PredictionDrift | Metric::Integrity)
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    #[default]
    Warning,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// A subject the rule fires on now.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Firing {
    pub subject: String,
    pub value: Option<f64>,
    pub threshold: Option<f64>,
    pub message: String,
}

/// Subjects one rule fires on for one model version in a pass. Subjects are named by clients
/// (fields, categories): beyond this, one alert, [`MORE_SUBJECTS`], stands for the rest, so no
/// client can raise thousands of alerts.
pub const MAX_SUBJECTS: usize = 20;
pub const MORE_SUBJECTS: &str = "(more)";

/// The first `MAX_SUBJECTS - 1` subjects by name (stable from pass to pass), and one for the rest.
fn bound_subjects(mut firing: Vec<Firing>) -> Vec<Firing> {
    if firing.len() <= MAX_SUBJECTS {
        return firing;
    }
    firing.sort_by(|a, b| a.subject.cmp(&b.subject));
    let rest = firing.split_off(MAX_SUBJECTS - 1);
    let named: Vec<&str> = rest.iter().take(5).map(|f| f.subject.as_str()).collect();
    firing.push(Firing {
        subject: MORE_SUBJECTS.to_owned(),
        value: rest[0].value,
        threshold: rest[0].threshold,
        message: format!("{} more subjects fire, e.g. {}", rest.len(), named.join(", ")),
    });
    firing
}

/// What a rule is judged on: one window's data and, for drift and integrity rules, its reports.
#[derive(Debug)]
pub struct Evidence<'a> {
    pub data: &'a WindowData,
    pub drift: Option<&'a DriftReport>,
    pub integrity: Option<&'a IntegrityReport>,
}

impl Rule {
    /// The rules a collector starts with when its configuration names none.
    pub fn defaults() -> Vec<Rule> {
        let rule = |name: &str, metric, severity, threshold| Rule {
            name: name.into(),
            metric,
            threshold,
            window: Width::HOUR,
            min_samples: 100,
            severity,
            model: None,
        };
        vec![
            rule("feature-drift", Metric::FeatureDrift, Severity::Warning, None),
            rule("prediction-drift", Metric::PredictionDrift, Severity::Warning, None),
            rule("data-integrity", Metric::Integrity, Severity::Warning, None),
            rule("error-rate", Metric::ErrorRate, Severity::Critical, Some(0.05)),
        ]
    }

    pub fn applies_to(&self, model: &str) -> bool {
        self.model.as_deref().is_none_or(|m| m == model)
    }

    /// Checks what serde cannot: a name, and a threshold where the metric has no default.
    pub fn validate(&self) -> Result<(), String> {
        if self.name.is_empty() || self.name.len() > 128 {
            return Err(format!("rule name {:?}: expected 1 to 128 bytes", self.name));
        }
        self.window.whole_minutes().map_err(|e| format!("rule {:?}: {e}", self.name))?;
        let needs_threshold = !self.metric.needs_profile();
        match self.threshold {
            None if needs_threshold => {
                Err(format!("rule {:?}: metric {} needs a threshold", self.name, self.metric.as_str()))
            }
            Some(t) if !t.is_finite() => Err(format!("rule {:?}: threshold {t} is not finite", self.name)),
            _ => Ok(()),
        }
    }

    /// The subjects firing now (at most [`MAX_SUBJECTS`]), or `None` for no verdict.
    pub fn evaluate(&self, evidence: &Evidence<'_>) -> Option<Vec<Firing>> {
        self.judge(evidence).map(bound_subjects)
    }

    fn judge(&self, evidence: &Evidence<'_>) -> Option<Vec<Firing>> {
        let data = evidence.data;
        let enough = |n: u64| n >= self.min_samples;
        let whole = |value: f64, threshold: f64, message: String| Firing {
            subject: String::new(),
            value: Some(value),
            threshold: Some(threshold),
            message,
        };
        let metric = self.metric.as_str();
        match self.metric {
            Metric::DatasetDrift => {
                let drift = evidence.drift?.vs_reference.as_ref()?;
                if !enough(evidence.drift?.rows) {
                    return None;
                }
                let threshold = self.threshold.unwrap_or(drift.policy.dataset_share);
                Some(
                    (drift.share >= threshold)
                        .then(|| {
                            let names: Vec<&str> =
                                drift.columns.iter().filter(|c| c.drift).map(|c| c.name.as_str()).collect();
                            whole(
                                drift.share,
                                threshold,
                                format!(
                                    "{} of {} features drifted ({}), at or above the share {threshold}",
                                    drift.drifted_columns,
                                    drift.columns.len(),
                                    names.join(", ")
                                ),
                            )
                        })
                        .into_iter()
                        .collect(),
                )
            }
            Metric::FeatureDrift => {
                let report = evidence.drift?;
                let drift = report.vs_reference.as_ref()?;
                if !enough(report.rows) {
                    return None;
                }
                Some(
                    drift
                        .columns
                        .iter()
                        .filter(|c| c.drift && self.threshold.is_none_or(|t| c.value >= t))
                        .map(|c| Firing {
                            subject: c.name.clone(),
                            value: Some(c.value),
                            threshold: Some(c.threshold),
                            message: format!("`{}` drifted: {}", c.name, c.explanation),
                        })
                        .collect(),
                )
            }
            Metric::PredictionDrift => {
                let column = evidence.drift?.prediction.as_ref()?;
                if column.insufficient_data || !enough(column.current_rows) {
                    return None;
                }
                Some(
                    column
                        .drift
                        .then(|| Firing {
                            subject: String::new(),
                            value: Some(column.value),
                            threshold: Some(column.threshold),
                            message: format!("the predicted classes drifted: {}", column.explanation),
                        })
                        .into_iter()
                        .collect(),
                )
            }
            Metric::Integrity => {
                let report = evidence.integrity?;
                if !enough(report.rows) {
                    return None;
                }
                Some(
                    report
                        .findings
                        .iter()
                        .filter(|f| self.threshold.is_none_or(|t| f.share >= t))
                        .map(|f| Firing {
                            subject: format!("{}:{}", f.feature, serde_plain(&f.issue)),
                            value: Some(f.share),
                            threshold: self.threshold,
                            message: format!("`{}`: {}", f.feature, f.detail),
                        })
                        .collect(),
                )
            }
            Metric::Accuracy | Metric::PrecisionMacro | Metric::RecallMacro | Metric::F1Macro => {
                let threshold = self.threshold?;
                if !enough(data.confusion.n()) {
                    return None;
                }
                let m = data.confusion.metrics();
                let (value, certain_below, detail) = match self.metric {
                    Metric::Accuracy => (
                        m.accuracy.value,
                        m.accuracy.high < threshold,
                        format!(
                            "95% interval [{:.3}, {:.3}] on {} labels",
                            m.accuracy.low, m.accuracy.high, m.accuracy.n
                        ),
                    ),
                    Metric::PrecisionMacro => (m.macro_avg.precision, m.macro_avg.precision < threshold, String::new()),
                    Metric::RecallMacro => (m.macro_avg.recall, m.macro_avg.recall < threshold, String::new()),
                    _ => (m.macro_avg.f1, m.macro_avg.f1 < threshold, String::new()),
                };
                let detail = if detail.is_empty() { format!("on {} labels", m.n) } else { detail };
                Some(
                    certain_below
                        .then(|| whole(value, threshold, format!("{metric} {value:.3} below {threshold} ({detail})")))
                        .into_iter()
                        .collect(),
                )
            }
            Metric::Mae | Metric::Rmse => {
                let threshold = self.threshold?;
                if !enough(data.regression.n) {
                    return None;
                }
                let m = data.regression.metrics();
                let value = if self.metric == Metric::Mae { m.mae } else { m.rmse };
                Some(above(value, threshold, || {
                    whole(value, threshold, format!("{metric} {value:.4} above {threshold} (on {} labels)", m.n))
                }))
            }
            Metric::ErrorRate => {
                let threshold = self.threshold?;
                let attempts = data.predictions() + data.error_count();
                if !enough(attempts) {
                    return None;
                }
                let value = data.error_rate();
                Some(above(value, threshold, || {
                    whole(
                        value,
                        threshold,
                        format!("{} of {attempts} inferences failed ({:.1}%)", data.error_count(), value * 100.0),
                    )
                }))
            }
            Metric::LatencyMeanMs => {
                let threshold = self.threshold?;
                if !enough(data.predictions()) {
                    return None;
                }
                let value = data.latency_mean_ms();
                Some(above(value, threshold, || {
                    whole(value, threshold, format!("mean latency {value:.2} ms above {threshold} ms"))
                }))
            }
        }
    }
}

fn above(value: f64, threshold: f64, fire: impl FnOnce() -> Firing) -> Vec<Firing> {
    if value > threshold { vec![fire()] } else { Vec::new() }
}

/// A unit enum variant's serde name (`missing_field`).
fn serde_plain<T: Serialize>(value: &T) -> String {
    serde_json::to_value(value).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_of_subjects_raise_a_bounded_few_alerts() {
        let firing =
            |subject: String| Firing { subject, value: Some(1.0), threshold: Some(0.5), message: String::new() };
        let few: Vec<Firing> = (0..MAX_SUBJECTS).map(|i| firing(format!("f{i:02}"))).collect();
        assert_eq!(bound_subjects(few.clone()), few);
        let many = bound_subjects((0..5000).rev().map(|i| firing(format!("f{i:04}"))).collect());
        assert_eq!(many.len(), MAX_SUBJECTS);
        assert_eq!(many[0].subject, "f0000", "the same subjects pass after pass");
        let more = many.last().unwrap();
        assert_eq!(more.subject, MORE_SUBJECTS);
        assert!(more.message.starts_with("4981 more subjects fire, e.g. f0019, f0020"), "{}", more.message);
    }
}
