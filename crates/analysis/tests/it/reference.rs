use analysis::distance;
use analysis::performance::{Confusion, Regression, wilson};
use proptest::prelude::*;

fn reference() -> serde_json::Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/test_data/reference.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn close(actual: f64, expected: f64, what: &str) {
    let tolerance = 1e-9 * expected.abs().max(1e-12) + 1e-12;
    assert!((actual - expected).abs() <= tolerance.max(1e-11), "{what}: {actual} vs scipy/sklearn {expected}");
}

fn u64s(v: &serde_json::Value) -> Vec<u64> {
    v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap()).collect()
}

fn f64s(v: &serde_json::Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
}

#[test]
fn binned_statistics_equal_scipy() {
    for case in reference()["binned"].as_array().unwrap() {
        let (r, c) = (u64s(&case["reference"]), u64s(&case["current"]));
        close(distance::js_distance(&r, &c), case["js_distance_base2"].as_f64().unwrap(), "JS distance");
        let chi = distance::chi_square(&r, &c);
        close(chi.statistic, case["chi2_statistic"].as_f64().unwrap(), "chi-square statistic");
        assert_eq!(chi.dof, case["chi2_dof"].as_u64().unwrap());
        close(chi.p_value, case["chi2_p_value"].as_f64().unwrap(), "chi-square p-value");
    }
}

#[test]
fn raw_statistics_equal_scipy() {
    for case in reference()["raw"].as_array().unwrap() {
        let (mut r, mut c) = (f64s(&case["reference"]), f64s(&case["current"]));
        let ks = distance::ks_2samp(&mut r, &mut c);
        close(ks.statistic, case["ks_statistic"].as_f64().unwrap(), "KS statistic");
        // The Kolmogorov series is summed to ~1e-15; scipy's kstwobign agrees to about 1e-10.
        let expected = case["ks_p_value"].as_f64().unwrap();
        assert!((ks.p_value - expected).abs() < 1e-9, "KS p-value {} vs scipy {expected}", ks.p_value);
        close(distance::wasserstein(&mut r, &mut c, 1.0), case["wasserstein"].as_f64().unwrap(), "Wasserstein-1");
    }
}

#[test]
fn classification_metrics_equal_scikit_learn() {
    let case = &reference()["classification"];
    let mut confusion = Confusion::default();
    for (t, p) in case["truth"].as_array().unwrap().iter().zip(case["predicted"].as_array().unwrap()) {
        confusion.add(t.as_str().unwrap(), p.as_str().unwrap());
    }
    let m = confusion.metrics();
    close(m.accuracy.value, case["accuracy"].as_f64().unwrap(), "accuracy");
    for (ours, theirs) in m.classes.iter().zip(case["classes"].as_array().unwrap()) {
        assert_eq!(ours.label, theirs["label"].as_str().unwrap());
        close(ours.precision.value, theirs["precision"].as_f64().unwrap(), "precision");
        close(ours.recall.value, theirs["recall"].as_f64().unwrap(), "recall");
        close(ours.f1, theirs["f1"].as_f64().unwrap(), "f1");
        assert_eq!(ours.support, theirs["support"].as_u64().unwrap());
    }
    for (name, ours) in [("macro", m.macro_avg), ("micro", m.micro_avg), ("weighted", m.weighted_avg)] {
        let theirs = &case["averages"][name];
        close(ours.precision, theirs["precision"].as_f64().unwrap(), name);
        close(ours.recall, theirs["recall"].as_f64().unwrap(), name);
        close(ours.f1, theirs["f1"].as_f64().unwrap(), name);
    }
    assert_eq!(m.matrix.iter().flatten().flatten().sum::<u64>(), 300);
}

#[test]
fn regression_metrics_equal_scikit_learn() {
    let case = &reference()["regression"];
    let mut sums = Regression::default();
    for (t, p) in f64s(&case["truth"]).into_iter().zip(f64s(&case["predicted"])) {
        sums.add(t, p);
    }
    let m = sums.metrics();
    close(m.mae, case["mae"].as_f64().unwrap(), "MAE");
    close(m.rmse, case["rmse"].as_f64().unwrap(), "RMSE");
    assert!((m.r2 - case["r2"].as_f64().unwrap()).abs() < 1e-9, "R²");
}

#[test]
fn wilson_intervals_match_the_textbook_and_widen_on_few_labels() {
    // Newcombe (1998), case 1: 81 of 263 → 0.2553 to 0.3662.
    let e = wilson(81, 263);
    assert!((e.low - 0.2553).abs() < 5e-5 && (e.high - 0.3662).abs() < 5e-5, "{e:?}");
    let few = wilson(21, 30);
    let many = wilson(2100, 3000);
    assert!(few.high - few.low > 5.0 * (many.high - many.low));
    assert_eq!(wilson(0, 0).high, 1.0);
}

#[test]
fn benjamini_hochberg_matches_a_worked_example() {
    // p-values and adjusted values as R's p.adjust(method = "BH") gives them.
    let p = [0.01, 0.04, 0.03, 0.005, 0.2];
    let adjusted = analysis::drift::benjamini_hochberg(&p);
    let expected = [0.025, 0.05, 0.05, 0.025, 0.2];
    for (a, e) in adjusted.iter().zip(expected) {
        assert!((a - e).abs() < 1e-12, "{adjusted:?}");
    }
}

/// PSI and Hellinger written out the slow way.
fn naive_psi(r: &[u64], c: &[u64]) -> f64 {
    let (sr, sc) = (r.iter().sum::<u64>() as f64, c.iter().sum::<u64>() as f64);
    let mut total = 0.0;
    for i in 0..r.len() {
        let p = if sr > 0.0 { r[i] as f64 / sr } else { 0.0 };
        let q = if sc > 0.0 { c[i] as f64 / sc } else { 0.0 };
        let (p, q) = (if p < 1e-4 { 1e-4 } else { p }, if q < 1e-4 { 1e-4 } else { q });
        total += (q - p) * (q.ln() - p.ln());
    }
    total
}

fn naive_hellinger(r: &[u64], c: &[u64]) -> f64 {
    let (sr, sc) = (r.iter().sum::<u64>() as f64, c.iter().sum::<u64>() as f64);
    let squared: f64 = r.iter().zip(c).map(|(&a, &b)| ((a as f64 / sr).sqrt() - (b as f64 / sc).sqrt()).powi(2)).sum();
    (squared / 2.0).sqrt()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn binned_distances_agree_with_naive_forms_and_stay_in_range(
        pairs in prop::collection::vec((0u64..1000, 0u64..1000), 2..30)
    ) {
        let (mut r, mut c): (Vec<u64>, Vec<u64>) = pairs.into_iter().unzip();
        r[0] += 1;
        c[0] += 1;
        prop_assert!((distance::psi(&r, &c) - naive_psi(&r, &c)).abs() < 1e-9);
        prop_assert!((distance::hellinger(&r, &c) - naive_hellinger(&r, &c)).abs() < 1e-9);
        let js = distance::js_distance(&r, &c);
        prop_assert!((0.0..=1.0).contains(&js));
        prop_assert!((js - distance::js_distance(&c, &r)).abs() < 1e-12, "JS is symmetric");
        prop_assert!(distance::js_distance(&r, &r) < 1e-7);
        let p = distance::chi_square(&r, &c).p_value;
        prop_assert!((0.0..=1.0).contains(&p));
    }

    #[test]
    fn binned_ks_brackets_the_exact_statistic(
        seed in 1u64..u64::MAX, shift in -1.0f64..1.0, bins in 2usize..30
    ) {
        let mut rng = crate::Rng::new(seed);
        let mut a: Vec<f64> = (0..500).map(|_| rng.normal()).collect();
        let mut b: Vec<f64> = (0..400).map(|_| rng.normal() + shift).collect();
        let profile = telemetry::NumberProfile::build(&a, bins).unwrap();
        let mut current = vec![0u64; profile.counts.len()];
        for &v in &b {
            current[profile.bin(v)] += 1;
        }
        let binned = distance::binned_ks(&profile.counts, &current);
        let exact = distance::ks_2samp(&mut a, &mut b).statistic;
        prop_assert!(binned.statistic <= exact + 1e-12, "binned {} > exact {exact}", binned.statistic);
        prop_assert!(exact <= binned.statistic + binned.bound + 1e-12, "exact {exact} beyond the bound {binned:?}");
    }

    #[test]
    fn merged_confusions_equal_one_built_from_everything(
        pairs in prop::collection::vec((0u8..4, 0u8..4), 0..200), split in 0usize..200
    ) {
        let split = split.min(pairs.len());
        let (mut all, mut first, mut second) = (Confusion::default(), Confusion::default(), Confusion::default());
        for (i, (t, p)) in pairs.iter().enumerate() {
            let (t, p) = (t.to_string(), p.to_string());
            all.add(&t, &p);
            if i < split { first.add(&t, &p) } else { second.add(&t, &p) }
        }
        first.merge(&second);
        prop_assert_eq!(first.metrics(), all.metrics());
    }

    #[test]
    fn folding_keeps_accuracy_and_counts(
        pairs in prop::collection::vec((0u8..12, 0u8..12), 0..300), max in 1usize..12
    ) {
        let mut confusion = Confusion::default();
        for (t, p) in &pairs {
            confusion.add(&t.to_string(), &p.to_string());
        }
        let before = confusion.metrics();
        confusion.fold(max);
        let after = confusion.metrics();
        prop_assert_eq!((after.n, after.accuracy), (before.n, before.accuracy));
        prop_assert!(after.classes.len() <= max);
        prop_assert_eq!(
            after.classes.iter().map(|c| c.support).sum::<u64>(),
            before.classes.iter().map(|c| c.support).sum::<u64>()
        );
    }
}
