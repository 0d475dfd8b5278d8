//! Histograms for people: a feature's reference and current counts over the profile's bins, with a
//! readable label per bin, ready to plot side by side.

use serde::Serialize;
use telemetry::{FeatureKind, FeatureProfile};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Histogram {
    pub name: String,
    /// One label per bin: `< 1.5`, `[1.5, 2.25)`, ..., `[8, 9]`, `> 9`; or the categories, then
    /// `(other)`.
    pub bins: Vec<String>,
    pub reference: Vec<u64>,
    pub current: Vec<u64>,
    /// The window before the current one, where there is one (empty otherwise).
    pub previous: Vec<u64>,
}

impl Histogram {
    pub fn new(feature: &FeatureProfile, current: Vec<u64>, previous: Vec<u64>) -> Histogram {
        Histogram {
            name: feature.name.clone(),
            bins: bin_labels(feature),
            reference: reference_counts(feature).to_vec(),
            current,
            previous,
        }
    }
}

/// The reference's counts per bin.
pub fn reference_counts(feature: &FeatureProfile) -> &[u64] {
    match &feature.kind {
        FeatureKind::Number(n) => &n.counts,
        FeatureKind::Category(c) => &c.counts,
    }
}

/// A label per bin of the feature's profile.
pub fn bin_labels(feature: &FeatureProfile) -> Vec<String> {
    match &feature.kind {
        FeatureKind::Number(n) => {
            let e = &n.edges;
            let Some((first, last)) = e.first().zip(e.last()) else { return vec!["all".into()] };
            std::iter::once(format!("< {}", short(*first)))
                .chain(e.windows(2).enumerate().map(|(i, pair)| {
                    let close = if i + 2 == e.len() { "]" } else { ")" };
                    format!("[{}, {}{close}", short(pair[0]), short(pair[1]))
                }))
                .chain(std::iter::once(format!("> {}", short(*last))))
                .collect()
        }
        FeatureKind::Category(c) => c.categories.iter().cloned().chain(std::iter::once("(other)".into())).collect(),
    }
}

/// A bin edge, short enough for an axis label: at most 4 decimals, no trailing zeros.
fn short(v: f64) -> String {
    let text = format!("{v:.4}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text.is_empty() || text == "-0" || text == "-" { "0".into() } else { text.to_owned() }
}

#[cfg(test)]
mod tests {
    use telemetry::{CategoryProfile, NumberProfile};

    use super::*;

    #[test]
    fn labels_match_the_bins() {
        let number = FeatureProfile {
            name: "x".into(),
            missing_rate: 0.0,
            kind: FeatureKind::Number(NumberProfile::build(&[0.0, 0.5, 1.25, 2.0], 2).unwrap()),
        };
        assert_eq!(bin_labels(&number), ["< 0", "[0, 0.875)", "[0.875, 2]", "> 2"]);
        assert_eq!(bin_labels(&number).len(), reference_counts(&number).len());
        let category = FeatureProfile {
            name: "c".into(),
            missing_rate: 0.0,
            kind: FeatureKind::Category(CategoryProfile::build(["a", "b", "a"], 5)),
        };
        let h = Histogram::new(&category, vec![1, 1, 0], Vec::new());
        assert_eq!((h.bins, h.reference), (vec!["a".to_owned(), "b".into(), "(other)".into()], vec![2, 1, 0]));
    }
}
