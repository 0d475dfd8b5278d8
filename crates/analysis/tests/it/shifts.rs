//! Seeded data with known shifts: every shift is found, nothing else fires.

use analysis::drift::{Column, Policy, analyse};
use analysis::integrity::{self, Issue, Thresholds};
use analysis::window::Window;
use telemetry::{
    CategoryProfile, FeatureCounts, FeatureKind, FeatureProfile, FeatureSummary, FieldCount, NumberProfile, Profile,
};

use crate::Rng;

const CATEGORIES: [&str; 4] = ["red", "green", "blue", "grey"];

enum Data {
    Number(Vec<f64>),
    Category(Vec<&'static str>),
}

fn pick(rng: &mut Rng, weights: &[f64]) -> &'static str {
    let mut u = rng.uniform();
    for (c, w) in CATEGORIES.iter().zip(weights) {
        if u < *w {
            return c;
        }
        u -= w;
    }
    "grey"
}

/// 20 numeric and 5 categorical columns; `shifted` applies the five shifts.
fn columns(rows: usize, seed: u64, shifted: bool) -> Vec<(String, Data)> {
    let mut rng = Rng::new(seed);
    let mut out = Vec::new();
    for i in 0..20 {
        let values: Vec<f64> = (0..rows)
            .map(|_| {
                let z = rng.normal();
                match (shifted, i) {
                    (true, 0) => 10.0 + 2.0 * (z + 0.3),                  // mean shift of 0.3 std
                    (true, 1) => 10.0 + 2.0 * 1.5 * z,                    // variance change
                    (true, 2) if rng.uniform() < 0.1 => 10.0 + 2.0 * 4.0, // tail contamination
                    _ => 10.0 + 2.0 * z,
                }
            })
            .collect();
        out.push((format!("num_{i}"), Data::Number(values)));
    }
    for i in 0..5 {
        let base = [0.4, 0.3, 0.2, 0.1];
        let values: Vec<&'static str> = (0..rows)
            .map(|_| match (shifted, i) {
                (true, 0) => pick(&mut rng, &[0.1, 0.2, 0.3, 0.4]), // re-weighting
                (true, 1) if rng.uniform() < 0.2 => "purple",       // a new category
                _ => pick(&mut rng, &base),
            })
            .collect();
        out.push((format!("cat_{i}"), Data::Category(values)));
    }
    out
}

fn profile_of(columns: &[(String, Data)]) -> Vec<FeatureProfile> {
    columns
        .iter()
        .map(|(name, data)| FeatureProfile {
            name: name.clone(),
            missing_rate: 0.0,
            kind: match data {
                Data::Number(v) => FeatureKind::Number(NumberProfile::build(v, 10).unwrap()),
                Data::Category(v) => FeatureKind::Category(CategoryProfile::build(v.iter().copied(), 50)),
            },
        })
        .collect()
}

fn counts(profile: &FeatureProfile, data: &Data) -> Vec<u64> {
    match (&profile.kind, data) {
        (FeatureKind::Number(p), Data::Number(v)) => {
            let mut c = vec![0; p.counts.len()];
            v.iter().for_each(|&x| c[p.bin(x)] += 1);
            c
        }
        (FeatureKind::Category(p), Data::Category(v)) => {
            let mut c = vec![0; p.counts.len()];
            v.iter().for_each(|x| c[p.bin(x)] += 1);
            c
        }
        _ => unreachable!(),
    }
}

fn drifted(reference_rows: usize, current_rows: usize, shifted: bool, raw: bool) -> Vec<String> {
    let reference = columns(reference_rows, 1, false);
    let current = columns(current_rows, 2, shifted);
    let profiles = profile_of(&reference);
    let current_counts: Vec<Vec<u64>> = profiles.iter().zip(&current).map(|(p, (_, d))| counts(p, d)).collect();
    let input = profiles
        .iter()
        .zip(&current_counts)
        .zip(reference.iter().zip(&current))
        .map(|((profile, c), ((_, r), (_, d)))| Column {
            profile,
            current: c,
            raw: match (raw, r, d) {
                (true, Data::Number(r), Data::Number(d)) => Some((r.clone(), d.clone())),
                _ => None,
            },
        })
        .collect();
    let result = analyse(input, &Policy::default());
    for c in &result.columns {
        assert!(!c.explanation.is_empty(), "{} has no explanation", c.name);
    }
    result.columns.iter().filter(|c| c.drift).map(|c| c.name.clone()).collect()
}

const SHIFTED: [&str; 5] = ["num_0", "num_1", "num_2", "cat_0", "cat_1"];

#[test]
fn at_100k_rows_every_shift_is_found_and_no_unshifted_column_fires() {
    assert_eq!(drifted(100_000, 100_000, false, true), Vec::<String>::new(), "exact statistics, no shift");
    assert_eq!(drifted(100_000, 100_000, true, true), SHIFTED, "exact statistics");
    // The collector only has bin counts: the same verdicts.
    assert_eq!(drifted(100_000, 100_000, false, false), Vec::<String>::new(), "binned, no shift");
    assert_eq!(drifted(100_000, 100_000, true, false), SHIFTED, "binned");
}

#[test]
fn small_samples_use_corrected_tests_and_few_rows_give_no_verdict() {
    assert_eq!(drifted(20_000, 400, false, true), Vec::<String>::new(), "400 unshifted rows");
    let found = drifted(20_000, 400, true, true);
    for column in ["num_1", "num_2", "cat_0", "cat_1"] {
        assert!(found.contains(&column.to_owned()), "{column} not found in {found:?}");
    }
    assert!(found.iter().all(|c| SHIFTED.contains(&c.as_str())), "{found:?}");
    // 50 rows: no verdict at all, shifted or not.
    assert!(drifted(20_000, 50, true, true).is_empty());
}

#[test]
fn integrity_finds_nan_noise_renames_new_categories_and_strangers() {
    let reference = columns(10_000, 1, false);
    let profile =
        Profile { baseline: None, profile_version: 1, rows: 10_000, features: profile_of(&reference), target: None };
    let rows = 1000u64;
    let mut summary = FeatureSummary { window_start_ms: 0, rows, features: Vec::new(), unexpected_fields: Vec::new() };
    for feature in &profile.features {
        let mut counts = FeatureCounts {
            name: feature.name.clone(),
            bins: vec![rows / 10; 10],
            missing: 0,
            type_mismatch: 0,
            unseen: 0,
            out_of_range: 0,
            samples: Vec::new(),
        };
        match feature.name.as_str() {
            "num_3" => counts.missing = 120, // NaN noise
            "num_4" => counts.type_mismatch = 7,
            "num_5" => counts.out_of_range = 40,
            "cat_2" => {
                counts.unseen = 90;
                counts.samples = vec![telemetry::Sample::Category("purple".into()); 3];
            }
            "num_6" => counts.missing = rows, // renamed to num_six
            "num_7" => counts.missing = rows, // gone
            _ => {}
        }
        summary.features.push(counts);
    }
    summary.unexpected_fields = vec![
        FieldCount { name: "num_six".into(), count: rows, samples: Vec::new() },
        FieldCount { name: "debug_flag".into(), count: 12, samples: Vec::new() },
    ];
    // Two hours merge into one window.
    let (mut hour1, mut hour2) = (Window::default(), Window::default());
    hour1.add(&summary);
    hour2.add(&summary);
    hour1.merge(&hour2);
    assert_eq!(hour1.rows, 2000);
    let renamed = |missing: &str, candidate: &str| (missing == "num_6" && candidate == "num_six").then_some(0.01);
    let findings = integrity::check(&profile, &hour1, &Thresholds::default(), &renamed);
    let found: Vec<(&str, Issue)> = findings.iter().map(|f| (f.feature.as_str(), f.issue)).collect();
    assert_eq!(
        found,
        [
            ("num_3", Issue::MissingRate),
            ("num_4", Issue::TypeMismatch),
            ("num_5", Issue::OutOfRange),
            ("cat_2", Issue::NewCategories),
            ("num_6", Issue::RenamedField),
            ("num_7", Issue::MissingField),
            ("debug_flag", Issue::UnexpectedField),
        ]
    );
    assert!(findings[3].detail.contains("purple"), "{}", findings[3].detail);
    assert!((findings[0].share - 0.12).abs() < 1e-12);
}
