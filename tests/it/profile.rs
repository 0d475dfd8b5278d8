//! `sextant profile build` against numpy's quantiles, and bad CSVs.

use crate::{sextant, test_data};

fn build(csv: &std::path::Path, extra: &[&str]) -> crate::Run {
    let out = std::env::temp_dir().join(format!("sextant-profile-{}.json", std::process::id()));
    let mut args = vec!["profile", "build", csv.to_str().unwrap(), "--out", out.to_str().unwrap()];
    args.extend_from_slice(extra);
    let mut run = sextant(&args);
    if run.code == 0 {
        run.stdout = std::fs::read_to_string(out).unwrap();
    }
    run
}

#[test]
fn numeric_edges_match_numpy_and_the_target_is_a_class_profile() {
    let data = test_data().join("datasets");
    let run = build(&data.join("wine.csv"), &["--target", "class", "--bins", "10"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let profile: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let reference: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(data.join("wine_profile_edges.json")).unwrap()).unwrap();
    assert_eq!(profile["rows"], 178);
    let features = profile["features"].as_array().unwrap();
    assert_eq!(features.len(), 13);
    for feature in features {
        let name = feature["name"].as_str().unwrap();
        let ours = feature["kind"]["number"]["edges"].as_array().unwrap();
        let numpy = reference["edges"][name].as_array().unwrap();
        assert_eq!(ours.len(), numpy.len(), "{name}");
        for (a, b) in ours.iter().zip(numpy) {
            let (a, b) = (a.as_f64().unwrap(), b.as_f64().unwrap());
            assert!((a - b).abs() <= 1e-9 * b.abs().max(1.0), "{name}: {a} vs numpy {b}");
        }
        let counts: u64 =
            feature["kind"]["number"]["counts"].as_array().unwrap().iter().map(|c| c.as_u64().unwrap()).sum();
        assert_eq!(counts, 178, "{name}");
    }
    let target = &profile["target"]["kind"]["category"];
    assert_eq!(target["categories"], serde_json::json!(["1", "0", "2"]));
    assert_eq!(target["counts"], serde_json::json!([71, 59, 48, 0]));
}

#[test]
fn bad_csvs_name_the_row_or_column() {
    let dir = std::env::temp_dir().join(format!("sextant-csv-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cases = [
        ("ragged.csv", "a,b\n1,2\n3\n", vec![], "data row 2"),
        ("empty.csv", "a,b\n", vec![], "no data rows"),
        ("target.csv", "a,b\n1,2\n", vec!["--target", "label"], "target column `label` is not in the header"),
    ];
    for (name, text, extra, message) in cases {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        let run = build(&path, &extra);
        assert_ne!(run.code, 0, "{name}");
        assert!(run.stderr.contains(message), "{name}: expected `{message}` in {}", run.stderr);
    }
    let mixed = dir.join("mixed.csv");
    std::fs::write(&mixed, "size,color\n1.5,red\nNA,blue\n2.5,\n").unwrap();
    let run = build(&mixed, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let profile: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert!((profile["features"][0]["missing_rate"].as_f64().unwrap() - 1.0 / 3.0).abs() < 1e-12);
    assert_eq!(profile["features"][1]["kind"]["category"]["categories"], serde_json::json!(["blue", "red"]));
}
