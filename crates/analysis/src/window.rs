//! A window's feature counts: the sum of the `features` records that arrived in it.
//!
//! Adding a record or merging two windows only adds counts, so a day is the merge of its hours and
//! the collector updates a window per batch instead of rescanning history.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use telemetry::{FeatureCounts, FeatureSummary, Sample};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Window {
    pub rows: u64,
    pub features: BTreeMap<String, FeatureCounts>,
    /// Fields the rows carried that the profile does not know, with how many rows had them.
    pub unexpected_fields: BTreeMap<String, u64>,
    /// Sampled values of those fields (when the model opted into sampling), up to
    /// [`MAX_SAMPLES`] per field (as for features): enough to tell a renamed field from a new one.
    pub unexpected_samples: BTreeMap<String, Vec<Sample>>,
    /// Counts of names beyond [`MAX_FEATURES`] or [`MAX_UNEXPECTED_FIELDS`], left out.
    #[serde(default)]
    pub dropped_fields: u64,
}

/// Sampled values a window keeps per feature or unexpected field.
pub const MAX_SAMPLES: usize = 2_000;
/// Feature names a window keeps (names come from clients: each is a map entry kept for the
/// window's life). A profile's features are far fewer.
pub const MAX_FEATURES: usize = 1024;
/// Unexpected field names a window keeps.
pub const MAX_UNEXPECTED_FIELDS: usize = 256;

impl Window {
    /// Counts come from clients: sums saturate rather than overflow.
    pub fn add(&mut self, summary: &FeatureSummary) {
        self.rows = self.rows.saturating_add(summary.rows);
        for counts in &summary.features {
            self.add_counts(counts);
        }
        for field in &summary.unexpected_fields {
            self.add_unexpected(&field.name, field.count, &field.samples);
        }
    }

    pub fn merge(&mut self, other: &Window) {
        self.rows = self.rows.saturating_add(other.rows);
        for counts in other.features.values() {
            self.add_counts(counts);
        }
        for (name, count) in &other.unexpected_fields {
            let samples = other.unexpected_samples.get(name).map_or(&[][..], Vec::as_slice);
            self.add_unexpected(name, *count, samples);
        }
        self.dropped_fields = self.dropped_fields.saturating_add(other.dropped_fields);
    }

    fn add_unexpected(&mut self, name: &str, count: u64, samples: &[Sample]) {
        if self.unexpected_fields.len() >= MAX_UNEXPECTED_FIELDS && !self.unexpected_fields.contains_key(name) {
            self.dropped_fields = self.dropped_fields.saturating_add(1);
            return;
        }
        let into = self.unexpected_fields.entry(name.to_owned()).or_default();
        *into = into.saturating_add(count);
        if samples.is_empty() {
            return;
        }
        let kept = self.unexpected_samples.entry(name.to_owned()).or_default();
        let room = MAX_SAMPLES.saturating_sub(kept.len());
        kept.extend(samples.iter().take(room).cloned());
    }

    fn add_counts(&mut self, counts: &FeatureCounts) {
        let Some(into) = self.features.get_mut(&counts.name) else {
            if self.features.len() >= MAX_FEATURES {
                self.dropped_fields = self.dropped_fields.saturating_add(1);
                return;
            }
            let mut counts = counts.clone();
            counts.samples.truncate(MAX_SAMPLES);
            self.features.insert(counts.name.clone(), counts);
            return;
        };
        if into.bins.len() < counts.bins.len() {
            into.bins.resize(counts.bins.len(), 0);
        }
        for (a, b) in into.bins.iter_mut().zip(&counts.bins) {
            *a = a.saturating_add(*b);
        }
        into.missing = into.missing.saturating_add(counts.missing);
        into.type_mismatch = into.type_mismatch.saturating_add(counts.type_mismatch);
        into.unseen = into.unseen.saturating_add(counts.unseen);
        into.out_of_range = into.out_of_range.saturating_add(counts.out_of_range);
        let room = MAX_SAMPLES.saturating_sub(into.samples.len());
        into.samples.extend(counts.samples.iter().take(room).cloned());
    }
}
