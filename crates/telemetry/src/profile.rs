//! Reference profiles, and the edge-side summariser that counts live rows against them.
//!
//! A profile is built once from training or validation data: per feature, quantile bin edges (for
//! numbers) or a category dictionary, with the reference counts, missing rate and moments. At the
//! edge, [`Summarizer`] counts rows over the same bins, so only counts leave the device.

use std::borrow::Borrow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::schema::{FeatureCounts, FeatureSummary, FieldCount, Record, Sample};

pub const PROFILE_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    pub profile_version: u32,
    pub rows: u64,
    pub features: Vec<FeatureProfile>,
    /// The target column's profile, when one was named: the reference for prediction and label drift.
    #[serde(default)]
    pub target: Option<FeatureProfile>,
    /// What the model scored on these rows when the profile was built: its promise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<Baseline>,
}

/// A model's scores on the profiled data (`sextant profile build --model`), which validation
/// compares a fresh data set's scores with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    /// The model's content hash, `sha256:` and the hex digest.
    pub model: String,
    /// Labelled rows scored.
    pub rows: u64,
    pub metrics: BaselineMetrics,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "task", rename_all = "snake_case")]
pub enum BaselineMetrics {
    Classification {
        accuracy: f64,
        macro_f1: f64,
    },
    Regression {
        mae: f64,
        rmse: f64,
        r2: f64,
        /// The standard deviation of the absolute errors: what a later MAE is tested against.
        abs_error_sd: f64,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureProfile {
    pub name: String,
    /// Share of rows with no value.
    pub missing_rate: f64,
    pub kind: FeatureKind,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeatureKind {
    Number(NumberProfile),
    Category(CategoryProfile),
}

/// Bins: underflow (< `edges[0]`), `[edges[i], edges[i+1])` for each pair (the last one closed),
/// overflow (> the last edge). `counts` has one entry per bin: `edges.len() + 1`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NumberProfile {
    pub edges: Vec<f64>,
    pub counts: Vec<u64>,
    pub mean: f64,
    pub std: f64,
    pub min: f64,
    pub max: f64,
}

/// One bin per dictionary entry, then "other". `counts` has `categories.len() + 1` entries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CategoryProfile {
    pub categories: Vec<String>,
    pub counts: Vec<u64>,
}

/// A value as a row carries it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    Number(f64),
    Text(&'a str),
    Missing,
}

impl Profile {
    /// Checks what deserializing cannot: counts that fit their bins, sorted finite edges, names
    /// present and unique, sizes within what a summary may carry ([`crate::RECORD_BOUNDS`]).
    /// Drift and summaries index bins by these shapes, so a profile from outside is checked
    /// before it is stored or used.
    pub fn validate(&self) -> Result<(), String> {
        if self.profile_version != PROFILE_VERSION {
            return Err(format!(
                "profile_version {} is not supported (this reads version {PROFILE_VERSION})",
                self.profile_version
            ));
        }
        let bounds = crate::RECORD_BOUNDS;
        if self.features.len() > bounds.features {
            return Err(format!("{} features, over the limit of {}", self.features.len(), bounds.features));
        }
        let mut names = std::collections::BTreeSet::new();
        for feature in &self.features {
            if !names.insert(feature.name.as_str()) {
                return Err(format!("feature {:?} is profiled twice", feature.name));
            }
            feature.validate().map_err(|e| format!("feature {:?}: {e}", feature.name))?;
        }
        if let Some(target) = &self.target {
            target.validate().map_err(|e| format!("target {:?}: {e}", target.name))?;
        }
        Ok(())
    }
}

impl FeatureProfile {
    fn validate(&self) -> Result<(), String> {
        let bounds = crate::RECORD_BOUNDS;
        if self.name.is_empty() || self.name.len() > bounds.text_bytes {
            return Err(format!("the name is {} bytes: 1 to {} expected", self.name.len(), bounds.text_bytes));
        }
        if !(0.0..=1.0).contains(&self.missing_rate) {
            return Err(format!("missing_rate {} is not a share in [0, 1]", self.missing_rate));
        }
        let (bins, counts) = match &self.kind {
            FeatureKind::Number(n) => {
                if n.edges.is_empty() || n.edges.iter().any(|e| !e.is_finite()) {
                    return Err("the edges must be one or more finite numbers".to_owned());
                }
                if n.edges.windows(2).any(|w| w[0] > w[1]) {
                    return Err("the edges are not sorted".to_owned());
                }
                if ![n.mean, n.std, n.min, n.max].iter().all(|v| v.is_finite()) || n.min > n.max {
                    return Err(format!(
                        "mean {}, std {}, min {}, max {}: finite numbers with min <= max expected",
                        n.mean, n.std, n.min, n.max
                    ));
                }
                (n.edges.len() + 1, n.counts.len())
            }
            FeatureKind::Category(c) => {
                if c.categories.iter().any(|name| name.is_empty() || name.len() > bounds.text_bytes) {
                    return Err(format!("a category is empty or over {} bytes", bounds.text_bytes));
                }
                (c.categories.len() + 1, c.counts.len())
            }
        };
        if bins > bounds.bins {
            return Err(format!("{bins} bins, over the limit of {}", bounds.bins));
        }
        if counts != bins {
            return Err(format!("{counts} counts for {bins} bins"));
        }
        Ok(())
    }
}

impl NumberProfile {
    /// Builds the profile of `values` (finite numbers) with up to `bins` quantile bins; the edges are
    /// numpy's default (linear) quantiles, duplicates removed. `None` for no values.
    pub fn build(values: &[f64], bins: usize) -> Option<NumberProfile> {
        let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
        if sorted.is_empty() {
            return None;
        }
        sorted.sort_unstable_by(f64::total_cmp);
        let bins = bins.max(1);
        let mut edges: Vec<f64> = (0..=bins).map(|i| quantile(&sorted, i as f64 / bins as f64)).collect();
        edges.dedup();
        if edges.len() == 1 {
            // A constant feature: [c, c] gives bins below, equal to, and above c.
            edges.push(edges[0]);
        }
        let n = sorted.len() as f64;
        let mean = sorted.iter().sum::<f64>() / n;
        let std = (sorted.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
        let mut profile = NumberProfile {
            counts: vec![0; edges.len() + 1],
            edges,
            mean,
            std,
            min: sorted[0],
            max: sorted[sorted.len() - 1],
        };
        for &v in &sorted {
            let bin = profile.bin(v);
            profile.counts[bin] += 1;
        }
        Some(profile)
    }

    /// `v`, or the edge it is within one f32 rounding of. Model inputs are mostly f32: an input
    /// equal to a reference value (an edge, the minimum or the maximum, all f64) is rarely
    /// bit-equal to it, and would otherwise land in the next bin or out of range.
    pub fn snap(&self, v: f64) -> f64 {
        let i = self.edges.partition_point(|&e| e < v);
        let near = [i.checked_sub(1).and_then(|j| self.edges.get(j)), self.edges.get(i)];
        near.into_iter().flatten().copied().find(|e| (v - e).abs() <= e.abs() * f64::from(f32::EPSILON)).unwrap_or(v)
    }

    /// The bin of `v`: 0 is underflow, `edges.len()` is overflow.
    pub fn bin(&self, v: f64) -> usize {
        let Some(&last) = self.edges.last() else { return 0 };
        if v > last {
            return self.edges.len();
        }
        if v == last {
            // The last bin is closed on the right.
            return self.edges.len() - 1;
        }
        // Edges before or at v: 0 means underflow.
        self.edges.partition_point(|&e| e <= v)
    }
}

/// numpy's default ("linear") quantile of sorted values.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let position = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (position.floor() as usize, position.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (position - lo as f64)
}

impl CategoryProfile {
    /// The `max_categories` most frequent values (ties by name), with the rest counted as "other".
    pub fn build<'a>(values: impl IntoIterator<Item = &'a str>, max_categories: usize) -> CategoryProfile {
        let mut frequency: BTreeMap<&str, u64> = BTreeMap::new();
        for v in values {
            *frequency.entry(v).or_insert(0) += 1;
        }
        let mut ranked: Vec<(&str, u64)> = frequency.into_iter().collect();
        ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        let kept = ranked.len().min(max_categories);
        let other = ranked[kept..].iter().map(|(_, n)| n).sum();
        let mut counts: Vec<u64> = ranked[..kept].iter().map(|(_, n)| *n).collect();
        counts.push(other);
        CategoryProfile { categories: ranked[..kept].iter().map(|(v, _)| (*v).to_owned()).collect(), counts }
    }

    /// The bin of `v`: its dictionary position, or `categories.len()` ("other").
    pub fn bin(&self, v: &str) -> usize {
        self.categories.iter().position(|c| c == v).unwrap_or(self.categories.len())
    }
}

/// Counts one value of `feature`.
fn count(feature: &FeatureProfile, counts: &mut FeatureCounts, value: Value<'_>, sample_limit: usize) {
    let sample = counts.samples.len() < sample_limit;
    match (&feature.kind, value) {
        (_, Value::Missing) => counts.missing += 1,
        (FeatureKind::Number(_), Value::Number(v)) if v.is_nan() => counts.missing += 1,
        (FeatureKind::Number(profile), Value::Number(v)) => {
            let v = profile.snap(v);
            counts.bins[profile.bin(v)] += 1;
            if v < profile.min || v > profile.max {
                counts.out_of_range += 1;
            }
            if sample && v.is_finite() {
                counts.samples.push(Sample::Number(v));
            }
        }
        (FeatureKind::Number(_), Value::Text(_)) => counts.type_mismatch += 1,
        (FeatureKind::Category(profile), Value::Text(v)) => {
            let bin = profile.bin(v);
            counts.bins[bin] += 1;
            if bin == profile.categories.len() {
                counts.unseen += 1;
            }
            if sample {
                counts.samples.push(Sample::Category(v.to_owned()));
            }
        }
        (FeatureKind::Category(_), Value::Number(_)) => counts.type_mismatch += 1,
    }
}

/// Counts rows against a profile at the edge; [`Summarizer::take`] turns the counts into a record.
///
/// `P` is how it holds the profile: `&Profile` for a pass over a file, an owning pointer
/// (`Rc<Profile>`, `Arc<Profile>`) for a summariser that lives as long as a client session.
#[derive(Debug)]
pub struct Summarizer<P: Borrow<Profile>> {
    profile: P,
    counts: Vec<FeatureCounts>,
    /// Fields the profile lacks: rows that had them, and sampled values.
    unexpected: BTreeMap<String, (u64, Vec<Sample>)>,
    rows: u64,
    /// Raw values kept per feature, when the model opted into sampling (0: none).
    sample_limit: usize,
    /// Rows of the last `add_rows`, counted missing until their column arrives.
    pending_missing: u64,
}

impl<P: Borrow<Profile>> Summarizer<P> {
    pub fn new(profile: P, sample_limit: usize) -> Summarizer<P> {
        let mut summarizer = Summarizer {
            profile,
            counts: Vec::new(),
            unexpected: BTreeMap::new(),
            rows: 0,
            sample_limit,
            pending_missing: 0,
        };
        summarizer.reset();
        summarizer
    }

    fn reset(&mut self) {
        self.rows = 0;
        self.unexpected.clear();
        self.counts = self
            .profile
            .borrow()
            .features
            .iter()
            .map(|f| FeatureCounts {
                name: f.name.clone(),
                bins: vec![
                    0;
                    match &f.kind {
                        FeatureKind::Number(n) => n.counts.len(),
                        FeatureKind::Category(c) => c.counts.len(),
                    }
                ],
                missing: 0,
                type_mismatch: 0,
                unseen: 0,
                out_of_range: 0,
                samples: Vec::new(),
            })
            .collect();
    }

    /// Counts one row, given as (field name, value) pairs. Profile features the row lacks count as
    /// missing; fields the profile lacks count as unexpected.
    pub fn observe(&mut self, row: &[(&str, Value<'_>)]) {
        self.rows += 1;
        for &(name, value) in row {
            if !self.profile.borrow().features.iter().any(|f| f.name == name) {
                self.count_unexpected(name, std::iter::once(value));
            }
        }
        for (feature, counts) in self.profile.borrow().features.iter().zip(&mut self.counts) {
            let value = row.iter().find(|(name, _)| *name == feature.name).map_or(Value::Missing, |(_, v)| *v);
            count(feature, counts, value, self.sample_limit);
        }
    }

    /// Counts a whole column for the feature `name` (rows given column by column, e.g. from a
    /// file): the same counting as [`Summarizer::observe`]. Call [`Summarizer::add_rows`] once per
    /// batch of rows; a feature no column is given for counts as missing in them.
    pub fn observe_column<'v>(&mut self, name: &str, values: impl IntoIterator<Item = Value<'v>>) {
        let features = &self.profile.borrow().features;
        match features.iter().position(|f| f.name == name) {
            Some(i) => {
                let (feature, counts) = (&features[i], &mut self.counts[i]);
                values.into_iter().for_each(|v| count(feature, counts, v, self.sample_limit));
                counts.missing = counts.missing.saturating_sub(self.pending_missing);
            }
            None => self.count_unexpected(name, values),
        }
    }

    fn count_unexpected<'v>(&mut self, name: &str, values: impl IntoIterator<Item = Value<'v>>) {
        let (count, samples) = self.unexpected.entry(name.to_owned()).or_default();
        for value in values {
            let sample = match value {
                Value::Missing => continue,
                Value::Number(v) if !v.is_finite() => None,
                Value::Number(v) => Some(Sample::Number(v)),
                Value::Text(t) => Some(Sample::Category(t.to_owned())),
            };
            *count += 1;
            if let Some(sample) = sample
                && samples.len() < self.sample_limit
            {
                samples.push(sample);
            }
        }
    }

    /// Adds `n` rows given column by column: every feature starts out missing in them, and
    /// [`Summarizer::observe_column`] takes back what its column has.
    pub fn add_rows(&mut self, n: u64) {
        self.rows += n;
        for counts in &mut self.counts {
            counts.missing += n;
        }
        self.pending_missing = n;
    }

    pub fn rows(&self) -> u64 {
        self.rows
    }

    pub fn profile(&self) -> &Profile {
        self.profile.borrow()
    }

    /// The counts since the last `take`, as a telemetry record; counting starts afresh.
    pub fn take(&mut self, window_start_ms: i64) -> Record {
        let summary = FeatureSummary {
            window_start_ms,
            rows: self.rows,
            features: std::mem::take(&mut self.counts),
            unexpected_fields: std::mem::take(&mut self.unexpected)
                .into_iter()
                .map(|(name, (count, samples))| FieldCount { name, count, samples })
                .collect(),
        };
        self.reset();
        Record::Features(summary)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// The bin by definition, scanning: underflow, [e_i, e_i+1) with the last closed, overflow.
    fn naive_bin(edges: &[f64], v: f64) -> usize {
        let k = edges.len() - 1;
        if v < edges[0] {
            return 0;
        }
        if v > edges[k] {
            return k + 1;
        }
        (1..=k).find(|&i| v < edges[i] || (i == k && v <= edges[k])).unwrap_or(k)
    }

    #[test]
    fn quantiles_match_numpy() {
        // np.quantile([1, 2, 3, 4, 10], [0, .25, .5, .75, 1]) == [1, 2, 3, 4, 10]
        let p = NumberProfile::build(&[4.0, 1.0, 10.0, 3.0, 2.0], 4).unwrap();
        assert_eq!(p.edges, [1.0, 2.0, 3.0, 4.0, 10.0]);
        assert_eq!(p.counts, [0, 1, 1, 1, 2, 0]);
        // np.quantile([0, 1], [0, 1/3, 2/3, 1])
        let p = NumberProfile::build(&[0.0, 1.0], 3).unwrap();
        assert_eq!(p.edges, [0.0, 1.0 / 3.0, 2.0 / 3.0, 1.0]);
        assert_eq!((p.mean, p.std, p.min, p.max), (0.5, 0.5, 0.0, 1.0));
    }

    #[test]
    fn constant_features_keep_an_equal_bin() {
        let p = NumberProfile::build(&[7.0; 5], 10).unwrap();
        assert_eq!(p.edges, [7.0, 7.0]);
        assert_eq!(p.counts, [0, 5, 0]);
        assert_eq!((p.bin(6.0), p.bin(7.0), p.bin(8.0)), (0, 1, 2));
    }

    #[test]
    fn categories_keep_the_most_frequent() {
        let p = CategoryProfile::build(["b", "a", "b", "c", "a", "b", "d"], 2);
        assert_eq!(p.categories, ["b", "a"]);
        assert_eq!(p.counts, [3, 2, 2]);
        assert_eq!((p.bin("a"), p.bin("zzz")), (1, 2));
    }

    #[test]
    fn summarizer_counts_integrity_problems() {
        let profile = Profile {
            baseline: None,
            profile_version: PROFILE_VERSION,
            rows: 3,
            features: vec![
                FeatureProfile {
                    name: "age".into(),
                    missing_rate: 0.0,
                    kind: FeatureKind::Number(NumberProfile::build(&[20.0, 30.0, 40.0], 2).unwrap()),
                },
                FeatureProfile {
                    name: "color".into(),
                    missing_rate: 0.0,
                    kind: FeatureKind::Category(CategoryProfile::build(["red", "blue", "red"], 10)),
                },
            ],
            target: None,
        };
        let mut s = Summarizer::new(&profile, 2);
        s.observe(&[("age", Value::Number(25.0)), ("color", Value::Text("red"))]);
        s.observe(&[("age", Value::Number(99.0)), ("color", Value::Text("green"))]);
        s.observe(&[("age", Value::Text("old")), ("colour", Value::Text("red"))]);
        s.observe(&[("age", Value::Number(f64::NAN)), ("color", Value::Missing)]);
        let Record::Features(summary) = s.take(1_000) else { panic!() };
        assert_eq!(summary.rows, 4);
        let [age, color] = &summary.features[..] else { panic!() };
        assert_eq!(age.bins, [0, 1, 0, 1]); // 25 in [20, 30); 99 overflows
        assert_eq!((age.missing, age.type_mismatch, age.out_of_range), (1, 1, 1));
        assert_eq!(age.samples, [Sample::Number(25.0), Sample::Number(99.0)]);
        assert_eq!(color.bins, [1, 0, 1]); // red; green is "other"
        assert_eq!((color.missing, color.unseen), (2, 1), "renamed `colour` leaves `color` missing");
        // The new field's values are sampled too: they tell a rename from a new field.
        let colour = FieldCount { name: "colour".into(), count: 1, samples: vec![Sample::Category("red".into())] };
        assert_eq!(summary.unexpected_fields, [colour]);
        assert_eq!(s.rows(), 0, "take starts a new window");

        // The same rows column by column count the same.
        let mut c = Summarizer::new(&profile, 2);
        c.add_rows(4);
        let age = [Value::Number(25.0), Value::Number(99.0), Value::Text("old"), Value::Number(f64::NAN)];
        c.observe_column("age", age);
        c.observe_column("color", [Value::Text("red"), Value::Text("green"), Value::Missing, Value::Missing]);
        c.observe_column("colour", [Value::Missing, Value::Missing, Value::Text("red"), Value::Missing]);
        assert_eq!(c.take(1_000), Record::Features(summary));
    }

    proptest! {
        #[test]
        fn bins_agree_with_the_definition(
            values in prop::collection::vec(-1e3f64..1e3, 1..300),
            probes in prop::collection::vec(-2e3f64..2e3, 1..50),
            bins in 1usize..20,
        ) {
            let p = NumberProfile::build(&values, bins).unwrap();
            prop_assert!(p.edges.windows(2).all(|w| w[0] <= w[1]));
            prop_assert_eq!(p.counts.iter().sum::<u64>(), values.len() as u64);
            prop_assert_eq!(p.counts[0] + p.counts[p.counts.len() - 1], 0, "reference data never under/overflows");
            for v in values.iter().chain(&probes) {
                prop_assert_eq!(p.bin(*v), naive_bin(&p.edges, *v), "value {}", v);
            }
        }
    }

    #[test]
    fn an_f32_input_equal_to_a_reference_value_counts_as_that_value() {
        let values = [0.98, 1.5, 2.0, 2.75, 3.88];
        let profile = NumberProfile::build(&values, 4).unwrap();
        let feature =
            FeatureProfile { name: "x".into(), missing_rate: 0.0, kind: FeatureKind::Number(profile.clone()) };
        let mut counts = FeatureCounts {
            name: "x".into(),
            bins: vec![0; profile.counts.len()],
            missing: 0,
            type_mismatch: 0,
            unseen: 0,
            out_of_range: 0,
            samples: Vec::new(),
        };
        for v in values {
            count(&feature, &mut counts, Value::Number(f64::from(v as f32)), 0);
        }
        assert_eq!(counts.out_of_range, 0, "3.88f32 is 3.88, not above the maximum");
        assert_eq!(counts.bins, profile.counts, "the same bins as the f64 reference values");
        assert_eq!(profile.snap(3.881), 3.881, "a value really above stays above");
        count(&feature, &mut counts, Value::Number(3.881), 0);
        assert_eq!(counts.out_of_range, 1);
    }
}
