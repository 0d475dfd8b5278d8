//! `sextant validate` against scikit-learn: the metrics of the wine fixture and of a deliberately
//! worse challenger on the held-out wine rows equal scikit-learn's (tests/data/validate/make.py);
//! the challenger loses with significance; a regression's MAE / RMSE / R² equal scikit-learn's and a
//! small difference is not called a win; the gate refuses and the model card says why; bad CSVs are
//! named by row and column.

use serde_json::{Value, json};

use crate::{fixture, sextant};

fn data(name: &str) -> String {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/validate").join(name).display().to_string()
}

fn expected() -> Value {
    serde_json::from_str(&std::fs::read_to_string(data("expected.json")).unwrap()).unwrap()
}

fn close(actual: &Value, expected: &Value, what: &str) {
    let (a, e) = (actual.as_f64().unwrap(), expected.as_f64().unwrap());
    assert!((a - e).abs() <= 1e-12, "{what}: sextant {a}, scikit-learn {e}");
}

/// Every metric scikit-learn reports, for one model.
fn same_metrics(ours: &Value, theirs: &Value, who: &str) {
    close(&ours["accuracy"]["value"], &theirs["accuracy"], &format!("{who} accuracy"));
    for (average, key) in [("macro", "macro_avg"), ("weighted", "weighted_avg")] {
        for metric in ["precision", "recall", "f1"] {
            close(&ours[key][metric], &theirs[average][metric], &format!("{who} {average} {metric}"));
        }
    }
    let classes = ours["classes"].as_array().unwrap();
    assert_eq!(classes.len(), theirs["classes"].as_object().unwrap().len(), "{who}: classes");
    for class in classes {
        let label = class["label"].as_str().unwrap();
        let reference = &theirs["classes"][label];
        close(&class["precision"]["value"], &reference["precision"], &format!("{who} class {label} precision"));
        close(&class["recall"]["value"], &reference["recall"], &format!("{who} class {label} recall"));
        close(&class["f1"], &reference["f1"], &format!("{who} class {label} f1"));
        assert_eq!(class["support"], reference["support"], "{who} class {label} support");
    }
}

#[test]
fn metrics_equal_scikit_learns_and_a_worse_challenger_loses() {
    let model = fixture("wine_tabular/model.onnx").display().to_string();
    let run = sextant(&[
        "validate",
        &model,
        &data("wine_holdout.csv"),
        "--target",
        "class",
        "--against",
        &data("wine_worse.onnx"),
        "--batch",
        "16",
        "--json",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    let expected = expected();
    assert_eq!(report["rows"], expected["rows"]);
    same_metrics(&report["model"]["metrics"], &expected["champion"], "model");
    same_metrics(&report["challengers"][0]["metrics"], &expected["challenger"], "challenger");
    let comparison = &report["comparisons"][0];
    assert_eq!(comparison["test"], "exact McNemar");
    assert_eq!(comparison["model_better"], expected["mcnemar"]["only_champion_right"]);
    assert_eq!(comparison["challenger_better"], expected["mcnemar"]["only_challenger_right"]);
    let (p, reference) = (comparison["p_value"].as_f64().unwrap(), expected["mcnemar"]["p_value"].as_f64().unwrap());
    assert!((p - reference).abs() <= 1e-12 * reference.max(1e-300), "McNemar p: {p} vs {reference}");
    assert_eq!(comparison["verdict"], "challenger worse");
    assert!(report["model"]["resources"]["batch1_p50_ms"].as_f64().unwrap() > 0.0);
    assert_eq!(report["model"]["sha256"].as_str().unwrap().len(), 64);
}

#[test]
fn regression_metrics_equal_scikit_learns_and_a_small_difference_is_not_a_win() {
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(data("expected_regression.json")).unwrap()).unwrap();
    let (model, holdout, worse) = (data("diabetes.onnx"), data("diabetes_holdout.csv"), data("diabetes_worse.onnx"));
    let run = sextant(&["validate", &model, &holdout, "--target", "target", "--against", &worse, "--json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["rows"], expected["rows"]);
    for (ours, theirs) in [(&report["model"], &expected["model"]), (&report["challengers"][0], &expected["challenger"])]
    {
        assert_eq!(ours["metrics"]["task"], "regression");
        for metric in ["mae", "rmse", "r2"] {
            let (a, e) = (ours["metrics"][metric].as_f64().unwrap(), theirs[metric].as_f64().unwrap());
            assert!((a - e).abs() <= 1e-9 * e.abs().max(1.0), "{metric}: sextant {a}, scikit-learn {e}");
        }
    }
    let comparison = &report["comparisons"][0];
    assert_eq!(comparison["test"], "exact sign test on absolute errors");
    assert_eq!(comparison["model_better"], expected["sign_test"]["model_closer"]);
    assert_eq!(comparison["challenger_better"], expected["sign_test"]["challenger_closer"]);
    let (p, reference) = (comparison["p_value"].as_f64().unwrap(), expected["sign_test"]["p_value"].as_f64().unwrap());
    assert!((p - reference).abs() <= 1e-12, "sign test p: {p} vs {reference}");
    assert_eq!(comparison["verdict"], "no significant difference");

    let run = sextant(&["validate", &model, &holdout, "--target", "target", "--fail-under", "r2=0.5"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("validation failed: r2 is 0.3929, under 0.5"), "{}", run.stderr);
    let run = sextant(&["validate", &model, &holdout, "--target", "target", "--fail-under", "accuracy=0.5"]);
    assert_ne!(run.code, 0);
    assert!(run.stderr.contains("`accuracy` does not apply to a regression model"), "{}", run.stderr);
}

#[test]
fn a_validation_set_unlike_the_reference_profile_is_flagged() {
    let dir = crate::cli::tempdir("validate-drift");
    let profile = dir.join("profile.json").display().to_string();
    let wine = crate::test_data().join("datasets/wine.csv").display().to_string();
    let built = sextant(&["profile", "build", &wine, "--target", "class", "--out", &profile]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    let model = fixture("wine_tabular/model.onnx").display().to_string();
    let validate = |csv: &str| {
        let run = sextant(&["validate", &model, csv, "--target", "class", "--profile", &profile, "--json"]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        serde_json::from_str::<Value>(&run.stdout).unwrap()["drift"].clone()
    };
    // The 54 holdout rows are too few for a verdict (the policy wants 100), and say so.
    let drift = validate(&data("wine_holdout.csv"));
    assert!(drift["columns"].as_array().unwrap().iter().all(|c| c["insufficient_data"] == true), "{drift}");
    // All 178 rows: like the reference; with alcohol 3 units up: flagged, and alcohol named.
    let drift = validate(&wine);
    assert_eq!((drift["dataset_drift"].clone(), drift["drifted_columns"].clone()), (json!(false), json!(0)), "{drift}");
    let holdout = std::fs::read_to_string(&wine).unwrap();
    let shifted: String = holdout
        .lines()
        .enumerate()
        .map(|(i, line)| match (i, line.split_once(',')) {
            (0, _) | (_, None) => format!("{line}\n"),
            (_, Some((alcohol, rest))) => format!("{},{rest}\n", alcohol.parse::<f64>().unwrap() + 3.0),
        })
        .collect();
    let file = dir.join("shifted.csv");
    std::fs::write(&file, shifted).unwrap();
    let drift = validate(&file.display().to_string());
    let alcohol = drift["columns"].as_array().unwrap().iter().find(|c| c["name"] == "alcohol").unwrap().clone();
    assert_eq!(alcohol["drift"], true, "{drift}");
    let others =
        drift["columns"].as_array().unwrap().iter().filter(|c| c["name"] != "alcohol" && c["drift"] == true).count();
    assert_eq!(others, 0, "only alcohol moved: {drift}");
}

#[test]
fn the_gate_refuses_a_model_under_its_floor_and_the_card_says_why() {
    let dir = crate::cli::tempdir("validate-gate");
    let card = dir.join("card.md");
    let args = |floor: &str| {
        let card = card.display().to_string();
        let run = sextant(&[
            "validate",
            &data("wine_worse.onnx"),
            &data("wine_holdout.csv"),
            "--target",
            "class",
            "--fail-under",
            floor,
            "--report",
            &card,
        ]);
        (run, std::fs::read_to_string(&card).unwrap())
    };
    let (run, text) = args("accuracy=0.9");
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("validation failed: accuracy is 0.6296, under 0.9"), "{}", run.stderr);
    assert!(text.contains("| gate | **failed**: accuracy is 0.6296, under 0.9 |"), "{text}");
    assert!(text.contains("wine_holdout.csv` (54 rows, sha256 `"), "{text}");
    let (run, text) = args("macro_f1=0.4");
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(text.contains("| gate | passed |"), "{text}");
    let run = sextant(&[
        "validate",
        &data("wine_worse.onnx"),
        &data("wine_holdout.csv"),
        "--target",
        "class",
        "--fail-under",
        "auc=0.5",
    ]);
    assert_ne!(run.code, 0);
    assert!(run.stderr.contains("unknown metric `auc`"), "{}", run.stderr);
}

#[test]
fn bad_csvs_are_named_by_row_and_column() {
    let dir = crate::cli::tempdir("validate-bad");
    let holdout = std::fs::read_to_string(data("wine_holdout.csv")).unwrap();
    let model = fixture("wine_tabular/model.onnx").display().to_string();
    let check = |name: &str, text: String, extra: &[&str], message: &str| {
        let file = dir.join(name);
        std::fs::write(&file, text).unwrap();
        let file = file.display().to_string();
        let mut args = vec!["validate", model.as_str(), file.as_str(), "--target", "class"];
        args.extend(extra);
        let run = sextant(&args);
        assert_ne!(run.code, 0, "{name}");
        assert!(run.stderr.contains(message), "{name}: {}", run.stderr);
    };
    let lines: Vec<&str> = holdout.lines().collect();
    // A column dropped: the model's width no longer matches; named explicitly, the column is missing.
    let edit = |line: usize, f: &dyn Fn(&mut Vec<&str>)| -> String {
        lines
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let mut cells: Vec<&str> = l.split(',').collect();
                if i == line || line == usize::MAX {
                    f(&mut cells);
                }
                cells.join(",") + "\n"
            })
            .collect()
    };
    let dropped = edit(usize::MAX, &|cells| {
        cells.remove(10);
    });
    check("dropped.csv", dropped.clone(), &[], "takes 13 features a row; the data gives 12 columns");
    check("named.csv", dropped, &["--columns", "alcohol,hue"], "no column `hue`");
    let typed = edit(3, &|cells| cells[2] = "abc");
    check("typed.csv", typed, &[], "data row 3, column `ash`: expected a number, found \"abc\"");
    let mut ragged = lines.iter().map(|l| format!("{l}\n")).collect::<Vec<_>>();
    ragged[5] = "1,2,3\n".to_owned();
    check("ragged.csv", ragged.concat(), &[], "while reading data row 5");
    check("untargeted.csv", holdout.replacen(",class", ",label", 1), &[], "no target column `class`");
}

#[test]
fn a_model_worse_than_its_promise_or_than_the_current_one_is_refused() {
    let dir = crate::cli::tempdir("validate-promise");
    let (model, wine) =
        (fixture("wine_tabular/model.onnx").display().to_string(), crate::test_data().join("datasets/wine.csv"));
    let (wine, profile) = (wine.display().to_string(), dir.join("wine.json").display().to_string());
    // The profile carries what the model scored on its reference data: its promise.
    let run = sextant(&["profile", "build", &wine, "--target", "class", "--model", &model, "--out", &profile]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("baseline of sha256:"), "{}", run.stdout);
    let baseline = &serde_json::from_str::<Value>(&std::fs::read_to_string(&profile).unwrap()).unwrap()["baseline"];
    let direct = sextant(&["validate", &model, &wine, "--target", "class", "--json"]);
    let direct: Value = serde_json::from_str(&direct.stdout).unwrap();
    assert_eq!(baseline["metrics"]["task"], "classification");
    assert_eq!(baseline["metrics"]["accuracy"], direct["model"]["metrics"]["accuracy"]["value"]);
    assert_eq!(baseline["model"].as_str().unwrap(), format!("sha256:{}", direct["model"]["sha256"].as_str().unwrap()));
    assert_eq!(baseline["rows"], 178);

    // The model keeps its promise on the held-out rows.
    let holdout = data("wine_holdout.csv");
    let validate = |candidate: &str, extra: &[&str]| {
        let mut args = vec!["validate", candidate, &holdout, "--target", "class", "--fail-if-worse"];
        args.extend_from_slice(extra);
        sextant(&args)
    };
    let run = validate(&model, &["--profile", &profile, "--json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let promise = &serde_json::from_str::<Value>(&run.stdout).unwrap()["promise"];
    assert_eq!(
        (promise["same_model"].as_bool(), promise["verdict"].as_str()),
        (Some(true), Some("as promised (no significant difference)"))
    );

    // A worse model held to that profile is refused, and so is one worse than the model in production.
    let worse = data("wine_worse.onnx");
    let card = dir.join("card.md").display().to_string();
    let run = validate(&worse, &["--profile", &profile, "--report", &card]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("accuracy 0.6296 is significantly worse than the promised "), "{}", run.stderr);
    let text = std::fs::read_to_string(&card).unwrap();
    assert!(text.contains("**worse than promised** (the baseline was measured on another model file)"), "{text}");
    // The same card as one HTML page.
    let html = dir.join("card.html").display().to_string();
    assert_eq!(validate(&worse, &["--profile", &profile, "--report", &html]).code, 1);
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.starts_with("<!doctype html>") && page.contains("<title>Model card: "), "{page}");
    assert!(page.contains("<table>") && page.contains("<strong>worse than promised</strong>"), "{page}");
    let run = validate(&worse, &["--against", &model]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("validation failed: worse than `") && run.stderr.contains("better on 0 rows, worse on 20"),
        "{}",
        run.stderr
    );
    let run = validate(&model, &["--against", &worse]);
    assert_eq!(run.code, 0, "the better model passes: {}", run.stderr);

    // Error ceilings for regressions.
    let (diabetes, holdout) = (data("diabetes.onnx"), data("diabetes_holdout.csv"));
    let gate = |flag: &str, limit: &str| sextant(&["validate", &diabetes, &holdout, "--target", "target", flag, limit]);
    let run = gate("--fail-over", "mae=40");
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("validation failed: mae is 4") && run.stderr.contains(", over 40"), "{}", run.stderr);
    assert_eq!(gate("--fail-over", "rmse=100").code, 0);
    let run = gate("--fail-under", "mae=40");
    assert_ne!(run.code, 0);
    assert!(run.stderr.contains("`mae` belongs in --fail-over"), "{}", run.stderr);
    let _ = std::fs::remove_dir_all(&dir);
}
