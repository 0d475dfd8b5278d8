//! Data-integrity findings: what changed in the shape of the data rather than its distribution.

use serde::Serialize;
use telemetry::{FeatureCounts, FeatureKind, Profile, Sample};

use crate::window::Window;

/// When a finding is raised.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Thresholds {
    /// Rise of the missing share over the reference's missing rate.
    pub missing_rate_increase: f64,
    pub type_mismatch_share: f64,
    pub out_of_range_share: f64,
    pub new_category_share: f64,
    /// A new field replaces a missing one when its values, counted in the missing field's bins,
    /// are this close to the reference (PSI).
    pub renamed_psi: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            missing_rate_increase: 0.05,
            type_mismatch_share: 0.0,
            out_of_range_share: 0.01,
            new_category_share: 0.01,
            renamed_psi: 0.1,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Issue {
    /// No row carried the field.
    MissingField,
    /// A missing field whose values now arrive under another name.
    RenamedField,
    /// A field the reference does not have.
    UnexpectedField,
    MissingRate,
    TypeMismatch,
    OutOfRange,
    NewCategories,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub feature: String,
    pub issue: Issue,
    /// Share of the window's rows affected.
    pub share: f64,
    pub count: u64,
    pub detail: String,
}

/// Integrity findings for a window against the profile. `renamed` says, for a missing field and a
/// new one, how close the new field's values are to the missing one's reference (PSI), when raw
/// values are at hand; without it a rename shows as a missing plus an unexpected field.
pub fn check(
    profile: &Profile,
    window: &Window,
    thresholds: &Thresholds,
    renamed: &dyn Fn(&str, &str) -> Option<f64>,
) -> Vec<Finding> {
    let mut findings = Vec::new();
    if window.rows == 0 {
        return findings;
    }
    let rows = window.rows as f64;
    let share = |n: u64| n as f64 / rows;
    let mut missing_fields = Vec::new();
    for feature in &profile.features {
        let empty = FeatureCounts {
            name: feature.name.clone(),
            bins: Vec::new(),
            missing: window.rows,
            type_mismatch: 0,
            unseen: 0,
            out_of_range: 0,
            samples: Vec::new(),
        };
        let counts = window.features.get(&feature.name).unwrap_or(&empty);
        let mut raise = |issue, count: u64, detail: String| {
            findings.push(Finding { feature: feature.name.clone(), issue, share: share(count), count, detail });
        };
        if counts.missing >= window.rows {
            missing_fields.push(feature.name.clone());
            continue;
        }
        let missing_share = share(counts.missing);
        if missing_share - feature.missing_rate > thresholds.missing_rate_increase {
            raise(
                Issue::MissingRate,
                counts.missing,
                format!(
                    "{:.1}% of rows miss it, against {:.1}% in the reference",
                    missing_share * 100.0,
                    feature.missing_rate * 100.0
                ),
            );
        }
        if share(counts.type_mismatch) > thresholds.type_mismatch_share {
            let expected = match feature.kind {
                FeatureKind::Number(_) => "a number",
                FeatureKind::Category(_) => "a category",
            };
            raise(
                Issue::TypeMismatch,
                counts.type_mismatch,
                format!("{} values were not {expected}", counts.type_mismatch),
            );
        }
        if let FeatureKind::Number(n) = &feature.kind
            && share(counts.out_of_range) > thresholds.out_of_range_share
        {
            raise(
                Issue::OutOfRange,
                counts.out_of_range,
                format!("{} values outside the reference range [{}, {}]", counts.out_of_range, n.min, n.max),
            );
        }
        if let FeatureKind::Category(dictionary) = &feature.kind
            && share(counts.unseen) > thresholds.new_category_share
        {
            // The sampled values that are new, most frequent first.
            let mut seen = std::collections::BTreeMap::<&str, u64>::new();
            for sample in &counts.samples {
                if let Sample::Category(c) = sample
                    && dictionary.bin(c) == dictionary.categories.len()
                {
                    *seen.entry(c.as_str()).or_default() += 1;
                }
            }
            let mut top: Vec<_> = seen.into_iter().collect();
            top.sort_by_key(|&(_, n)| std::cmp::Reverse(n));
            let examples: Vec<&str> = top.iter().take(5).map(|(c, _)| *c).collect();
            let detail = if examples.is_empty() {
                format!("{} values are categories the reference never saw", counts.unseen)
            } else {
                format!("{} values are categories the reference never saw, e.g. {examples:?}", counts.unseen)
            };
            raise(Issue::NewCategories, counts.unseen, detail);
        }
    }
    let mut unexpected: Vec<(&String, &u64)> = window.unexpected_fields.iter().collect();
    for missing in missing_fields {
        let best = unexpected
            .iter()
            .enumerate()
            .filter_map(|(i, (name, _))| renamed(&missing, name).map(|psi| (i, psi)))
            .filter(|(_, psi)| *psi <= thresholds.renamed_psi)
            .min_by(|a, b| a.1.total_cmp(&b.1));
        match best {
            Some((i, psi)) => {
                let (name, count) = unexpected.remove(i);
                findings.push(Finding {
                    feature: missing.clone(),
                    issue: Issue::RenamedField,
                    share: 1.0,
                    count: *count,
                    detail: format!("no row has `{missing}`, and the new field `{name}` has its distribution (PSI {psi:.3}): renamed?"),
                });
            }
            None => findings.push(Finding {
                feature: missing.clone(),
                issue: Issue::MissingField,
                share: 1.0,
                count: window.rows,
                detail: format!("no row has `{missing}`"),
            }),
        }
    }
    for (name, count) in unexpected {
        findings.push(Finding {
            feature: name.clone(),
            issue: Issue::UnexpectedField,
            share: share(*count),
            count: *count,
            detail: format!("`{name}` is not in the reference profile"),
        });
    }
    findings
}
