//! `sextant drift` on CSV files with known shifts.

use std::fmt::Write;

use crate::{json, sextant};

/// Seeded uniform numbers (xorshift64*).
struct Rng(u64);

impl Rng {
    fn uniform(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }
    fn normal(&mut self) -> f64 {
        let (u, v) = (self.uniform().max(1e-300), self.uniform());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
}

/// age, income, score, tenure, plan, region, label, predicted. `current` shifts income (mean),
/// plan (a new category), renames tenure to tenure_months, puts NaN into score, and makes the
/// predictions worse.
fn csv(rows: usize, seed: u64, current: bool) -> String {
    let mut rng = Rng(seed);
    let tenure = if current { "tenure_months" } else { "tenure" };
    let mut out = format!("age,income,score,{tenure},plan,region,label,predicted\n");
    for _ in 0..rows {
        let age = 40.0 + 12.0 * rng.normal();
        let income = 50_000.0 + 15_000.0 * (rng.normal() + if current { 0.8 } else { 0.0 });
        let score = if current && rng.uniform() < 0.2 { "NaN".to_owned() } else { format!("{:.4}", rng.uniform()) };
        let tenure = (rng.uniform() * 120.0).floor();
        let plan = match rng.uniform() {
            u if current && u < 0.25 => "enterprise",
            u if u < 0.5 => "basic",
            u if u < 0.8 => "plus",
            _ => "pro",
        };
        let region = ["north", "south", "east", "west"][(rng.uniform() * 4.0) as usize % 4];
        let label = (rng.uniform() < 0.4) as u8;
        let correct = rng.uniform() < if current { 0.7 } else { 0.9 };
        let predicted = if correct { label } else { 1 - label };
        writeln!(out, "{age:.2},{income:.2},{score},{tenure},{plan},{region},{label},{predicted}").unwrap();
    }
    out
}

fn write(dir: &std::path::Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

#[test]
fn drift_finds_the_shifts_renames_and_performance_drop() {
    let dir = crate::cli::tempdir("drift");
    let reference = write(&dir, "reference.csv", &csv(20_000, 7, false));
    let current = write(&dir, "current.csv", &csv(20_000, 8, true));
    let html = dir.join("report.html");
    let run = sextant(&[
        "drift",
        &reference,
        &current,
        "--target",
        "label",
        "--prediction",
        "predicted",
        "--json",
        "--html",
        html.to_str().unwrap(),
    ]);
    let report = json(&run);
    let columns = report["columns"].as_array().unwrap();
    let drifted: Vec<&str> =
        columns.iter().filter(|c| c["drift"] == true).map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(drifted, ["income", "plan"], "{:#}", report["columns"]);
    for c in columns {
        for field in ["name", "kind", "statistic", "value", "threshold", "drift"] {
            assert!(!c[field].is_null(), "column {} lacks `{field}`", c["name"]);
        }
    }
    let income = columns.iter().find(|c| c["name"] == "income").unwrap();
    assert_eq!(income["statistic"], "wasserstein_normed");
    assert!((income["value"].as_f64().unwrap() - 0.8).abs() < 0.1, "{income}");
    assert_eq!(report["dataset_drift"], false, "2 of 5 columns is under the 50% share");

    let issues: Vec<(&str, &str)> = report["integrity"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["feature"].as_str().unwrap(), f["issue"].as_str().unwrap()))
        .collect();
    assert!(issues.contains(&("score", "missing_rate")), "{issues:?}");
    assert!(issues.contains(&("plan", "new_categories")), "{issues:?}");
    assert!(issues.contains(&("tenure", "renamed_field")), "{issues:?}");
    let performance = &report["performance"]["classification"];
    let (before, after) = (&performance["reference"]["accuracy"], &performance["current"]["accuracy"]);
    assert!((before["value"].as_f64().unwrap() - 0.9).abs() < 0.02, "{before}");
    assert!((after["value"].as_f64().unwrap() - 0.7).abs() < 0.02, "{after}");
    assert!(after["high"].as_f64().unwrap() < before["low"].as_f64().unwrap(), "the drop is beyond the intervals");

    // The HTML report carries the same JSON (one self-contained page) and a histogram per column.
    let page = std::fs::read_to_string(&html).unwrap();
    let start = page.find(r#"<script id="report" type="application/json">"#).unwrap();
    let data = &page[start..];
    let data = &data[data.find('>').unwrap() + 1..data.find("</script>").unwrap()];
    let embedded: serde_json::Value = serde_json::from_str(data).unwrap();
    assert_eq!(embedded["columns"], report["columns"]);
    let histograms = report["histograms"].as_array().unwrap();
    assert_eq!(histograms.len(), columns.len());
    let plan = histograms.iter().find(|h| h["name"] == "plan").unwrap();
    assert_eq!(plan["bins"], serde_json::json!(["basic", "plus", "pro", "(other)"]), "{plan}");
    assert!(!page.contains("src=\"") && page.contains("uPlot"), "nothing to fetch: scripts are inline");

    // The human form names the same things, and --fail-on-drift follows the data-set verdict.
    let human = sextant(&["drift", &reference, &current]);
    assert_eq!(human.code, 0, "{}", human.stderr);
    assert!(human.stdout.contains("income") && human.stdout.contains("DRIFT"), "{}", human.stdout);
    let same = sextant(&["drift", &reference, &reference, "--fail-on-drift", "--json"]);
    assert_eq!(json(&same)["columns"].as_array().unwrap().iter().filter(|c| c["drift"] == true).count(), 0);
}

#[test]
fn drift_on_small_files_uses_corrected_tests() {
    let dir = crate::cli::tempdir("drift-small");
    let reference = write(&dir, "reference.csv", &csv(5_000, 11, false));
    let current = write(&dir, "current.csv", &csv(300, 12, false));
    let report = json(&sextant(&["drift", &reference, &current, "--json"]));
    for c in report["columns"].as_array().unwrap() {
        assert!(["ks_p_value", "chi_square_p_value"].contains(&c["statistic"].as_str().unwrap()), "{c}");
        assert_eq!(c["drift"], false, "{c}");
        assert!(c["explanation"].as_str().unwrap().contains("Benjamini–Hochberg"), "{c}");
    }
}

#[test]
fn drift_gives_clear_errors_for_bad_files() {
    let dir = crate::cli::tempdir("drift-bad");
    let good = write(&dir, "good.csv", &csv(200, 1, false));
    let ragged = write(&dir, "ragged.csv", "a,b\n1,2\n3\n");
    let run = sextant(&["drift", &good, &ragged]);
    assert!(run.code != 0 && run.stderr.contains("data row 2"), "{}", run.stderr);
    let run = sextant(&["drift", &good, &good, "--target", "nope", "--prediction", "predicted"]);
    assert!(run.code != 0 && run.stderr.contains("column `nope` is not in"), "{}", run.stderr);
    let text = write(&dir, "text.csv", &csv(200, 2, false).replacen(",0.", ",zero.", 5));
    let report = json(&sextant(&["drift", &good, &text, "--json"]));
    let mismatch = report["integrity"].as_array().unwrap().iter().find(|f| f["issue"] == "type_mismatch").unwrap();
    assert!(mismatch["detail"].as_str().unwrap().contains("column `score`"), "{mismatch}");
    let twice = write(&dir, "twice.csv", "a,b,a\n1,2,3\n");
    let run = sextant(&["drift", &good, &twice]);
    assert!(run.code != 0 && run.stderr.contains("column `a` appears twice"), "{}", run.stderr);
    let empty = write(&dir, "empty.csv", "a,b\n");
    let run = sextant(&["drift", &good, &empty]);
    assert!(run.code != 0 && run.stderr.contains("no data rows"), "{}", run.stderr);
}
