//! From one inference to telemetry: the output summary of each row, and which feature of the
//! reference profile each input value is. Every client (browser, edge host, native) records runs
//! the same way through these.
//!
//! Tensors reach this module as plain values (`f64` per element, row-major) so that it does not
//! depend on the runtime: a "row" is one index of the leading (batch) axis.

use std::borrow::Borrow;

use crate::profile::{Profile, Summarizer, Value};
use crate::schema::Output;

/// One tensor of a run, flattened: `rows` × `width` values.
#[derive(Debug, Clone, Copy)]
pub struct Flat<'a> {
    pub name: &'a str,
    pub values: &'a [f64],
    /// Elements per row: the product of the non-batch dims (1 for a `[N]` tensor).
    pub width: usize,
    /// Whether the element type is an integer (a class index, not a score).
    pub integral: bool,
}

impl Flat<'_> {
    pub fn rows(&self) -> usize {
        self.values.len().checked_div(self.width).unwrap_or(0)
    }
}

/// Rows and per-row width of a tensor shape: the leading axis is the batch (a scalar is one row).
pub fn rows_and_width(shape: &[usize]) -> (usize, usize) {
    match shape {
        [] => (1, 1),
        [rows, rest @ ..] => (*rows, rest.iter().product()),
    }
}

/// The summary of each row of a model output: a row of several scores is the class with the
/// highest (named by `classes` where given, else by its index); a single integer is a class index;
/// a single float is a regression value.
pub fn summarize_outputs(output: Flat<'_>, classes: Option<&[String]>) -> Vec<Output> {
    let class_name = |i: usize| classes.and_then(|c| c.get(i)).cloned().unwrap_or_else(|| i.to_string());
    if output.width == 0 {
        return Vec::new();
    }
    output
        .values
        .chunks_exact(output.width)
        .map(|row| match row {
            [v] if output.integral && *v >= 0.0 => Output::Class { label: class_name(*v as usize), score: 1.0 },
            [v] if output.integral => Output::Class { label: v.to_string(), score: 1.0 },
            [v] => Output::Value(*v),
            scores => {
                let (best, score) = scores
                    .iter()
                    .copied()
                    .enumerate()
                    .fold((0, f64::NEG_INFINITY), |(bi, bv), (i, v)| if v > bv { (i, v) } else { (bi, bv) });
                Output::Class { label: class_name(best), score: score as f32 }
            }
        })
        .collect()
}

/// Where the features of a reference profile are in a model's inputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeatureMap {
    /// Each feature is an input of its name, one value per row (tabular models).
    ByName,
    /// The features are, in order, the elements of each row of one input (a feature vector or an
    /// image): `width` of them.
    Columns { input: String, width: usize },
}

impl FeatureMap {
    /// Matches a profile to a model's inputs, given as (name, per-row width); `None` when neither
    /// every feature names a one-value input nor one input has a row as wide as the profile.
    pub fn new(profile: &Profile, inputs: &[(&str, usize)]) -> Option<FeatureMap> {
        if profile.features.is_empty() {
            return None;
        }
        let by_name =
            profile.features.iter().all(|f| inputs.iter().any(|(name, width)| *name == f.name && *width == 1));
        if by_name {
            return Some(FeatureMap::ByName);
        }
        let width = profile.features.len();
        inputs
            .iter()
            .find(|(_, w)| *w == width)
            .map(|(name, _)| FeatureMap::Columns { input: (*name).to_owned(), width })
    }

    /// Counts the rows of one run's inputs into `summarizer`.
    pub fn observe<P: Borrow<Profile>>(&self, summarizer: &mut Summarizer<P>, inputs: &[Flat<'_>]) {
        match self {
            FeatureMap::ByName => {
                let Some(rows) = inputs.first().map(Flat::rows) else { return };
                summarizer.add_rows(rows as u64);
                let names: Vec<String> = summarizer.profile().features.iter().map(|f| f.name.clone()).collect();
                for input in inputs.iter().filter(|i| i.width == 1 && names.iter().any(|n| n == i.name)) {
                    summarizer.observe_column(input.name, input.values.iter().map(|&v| Value::Number(v)));
                }
            }
            FeatureMap::Columns { input, width } => {
                let Some(input) = inputs.iter().find(|i| i.name == input && i.width == *width) else { return };
                summarizer.add_rows(input.rows() as u64);
                let names: Vec<String> = summarizer.profile().features.iter().map(|f| f.name.clone()).collect();
                for (column, name) in names.iter().enumerate() {
                    let values = input.values.iter().skip(column).step_by(*width).map(|&v| Value::Number(v));
                    summarizer.observe_column(name, values);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::{FeatureKind, FeatureProfile, NumberProfile};
    use crate::schema::Record;

    fn flat<'a>(name: &'a str, values: &'a [f64], width: usize, integral: bool) -> Flat<'a> {
        Flat { name, values, width, integral }
    }

    #[test]
    fn outputs_are_classes_or_values() {
        let classes = ["cat".to_owned(), "dog".to_owned()];
        let scores = [0.2, 0.8, 0.9, 0.1];
        assert_eq!(
            summarize_outputs(flat("p", &scores, 2, false), Some(&classes)),
            [Output::Class { label: "dog".into(), score: 0.8 }, Output::Class { label: "cat".into(), score: 0.9 }]
        );
        assert_eq!(
            summarize_outputs(flat("label", &[3.0], 1, true), None),
            [Output::Class { label: "3".into(), score: 1.0 }]
        );
        assert_eq!(
            summarize_outputs(flat("y", &[1.5, -2.0], 1, false), None),
            [Output::Value(1.5), Output::Value(-2.0)]
        );
        assert_eq!(rows_and_width(&[4, 1, 8, 8]), (4, 64));
        assert_eq!(rows_and_width(&[]), (1, 1));
    }

    fn profile(names: &[&str]) -> Profile {
        let values: Vec<f64> = (0..100).map(f64::from).collect();
        Profile {
            profile_version: crate::PROFILE_VERSION,
            rows: 100,
            features: names
                .iter()
                .map(|n| FeatureProfile {
                    name: (*n).to_owned(),
                    missing_rate: 0.0,
                    kind: FeatureKind::Number(NumberProfile::build(&values, 4).unwrap()),
                })
                .collect(),
            target: None,
        }
    }

    #[test]
    fn features_map_by_name_or_by_column() {
        let p = profile(&["a", "b"]);
        assert_eq!(FeatureMap::new(&p, &[("a", 1), ("b", 1), ("c", 3)]), Some(FeatureMap::ByName));
        assert_eq!(FeatureMap::new(&p, &[("x", 2)]), Some(FeatureMap::Columns { input: "x".into(), width: 2 }));
        assert_eq!(FeatureMap::new(&p, &[("x", 3)]), None);

        let map = FeatureMap::new(&p, &[("x", 2)]).unwrap();
        let mut summarizer = Summarizer::new(&p, 0);
        // Two rows: (0, 500) and (50, 60); 500 is out of the reference range.
        map.observe(&mut summarizer, &[flat("x", &[0.0, 500.0, 50.0, 60.0], 2, false)]);
        let Record::Features(summary) = summarizer.take(0) else { panic!("a features record") };
        assert_eq!(summary.rows, 2);
        assert_eq!(summary.features[1].out_of_range, 1);
        assert_eq!(summary.features[0].missing, 0);
        assert_eq!(summary.features.iter().map(|f| f.bins.iter().sum::<u64>()).collect::<Vec<_>>(), [2, 2]);
    }
}
