//! The end-to-end test: `sextant demo` as a newcomer runs it — the real collector (SQLite), the
//! real edge host with the tabular guest, the web demo — with headless Chromium on the demo page
//! and on the dashboard. The clean phase fires no alert; the drift phase fires the expected ones,
//! naming the right features and metrics; every prediction and label sent is stored exactly once
//! (checked by a second collector process on the demo's database after the demo stopped).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc::UnboundedReceiver;

/// Seconds of clean traffic: long enough for several evaluations with a verdict (100 rows a
/// window) at 20 calls a second.
const CLEAN_S: &str = "30";
/// What the drift must fire: (rule, model, subject containing).
const EXPECTED: [(&str, &str, &str); 5] = [
    ("feature-drift", "wine", "alcohol"),
    ("accuracy", "wine", ""),
    ("data-integrity", "wine-web", "region"),
    ("data-integrity", "wine-web", "color_intensity"),
    ("accuracy", "wine-web", ""),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_catches_drift_a_broken_feed_and_a_concept_shift_and_stores_everything_once() {
    let browser = crate::browser_tools("demo.mjs", &[("pkg/sextant.js", "the browser package (cargo xtask web)")]);
    let guests = crate::guests::guests();
    // Empty: the demo uses an empty folder or one it made, nothing else.
    let dir = crate::cli::tempdir("demo-e2e");
    let artifacts = Path::new(env!("CARGO_TARGET_TMPDIR")).join("demo");
    let mut demo = tokio::process::Command::new(env!("CARGO_BIN_EXE_sextant"))
        .args(["demo", "--dir", dir.to_str().unwrap(), "--guests", guests.to_str().unwrap(), "--clean-s", CLEAN_S])
        .args(["--collector-listen", "127.0.0.1:0", "--edge-listen", "127.0.0.1:0", "--web-listen", "127.0.0.1:0"])
        .env("XDG_RUNTIME_DIR", std::env::temp_dir())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let (sender, mut lines) = tokio::sync::mpsc::unbounded_channel();
    let stdout = demo.stdout.take().unwrap();
    tokio::spawn(async move {
        let mut reader = BufReader::new(stdout).lines();
        while let Ok(Some(line)) = reader.next_line().await {
            eprintln!("demo | {line}");
            let _ = sender.send(line);
        }
    });
    let mut seen = Vec::new();
    until_line(&mut lines, &mut seen, "phase: clean", 600).await;
    let running: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("demo.json")).unwrap()).unwrap();
    let api = Api::new(running["collector"].as_str().unwrap(), running["read_key"].as_str().unwrap());

    // A real browser on the demo page, during the clean phase: digits classified and labelled.
    let samples = 5;
    let page = match &browser {
        Some((chromium, script)) => {
            let web = running["web"].as_str().expect("the demo serves the web page (pkg/ is built)");
            let result =
                node(script, chromium, &artifacts, &[("SEXTANT_PHASE", "page"), ("SEXTANT_URL", web)], samples).await;
            Some(
                result["digits"].as_array().unwrap().iter().map(|d| d.as_str().unwrap().to_owned()).collect::<Vec<_>>(),
            )
        }
        None => None,
    };

    // Clean: many windows judged (100 rows each), no alert.
    until_line(&mut lines, &mut seen, "phase: drift", 180).await;
    let alerts = api.alerts().await;
    assert!(alerts.is_empty(), "alerts fired on clean traffic: {alerts:#?}");
    assert!(!seen.iter().any(|l| l.contains("ALERT")), "the demo printed an alert before the drift");
    let stored = api.predictions_per_model().await;
    assert!(stored.get("wine").is_some_and(|&n| n >= 200), "too little clean traffic was judged: {stored:?}");

    // Drift: the expected alerts fire (whole-minute windows: within about two minutes).
    let started = Instant::now();
    let firing = loop {
        let firing: Vec<(String, String, String)> = api
            .alerts()
            .await
            .iter()
            .filter(|a| a["state"] == "firing")
            .map(|a| (text(&a["rule"]), text(&a["model"]), text(&a["subject"])))
            .collect();
        let missing: Vec<_> = EXPECTED
            .iter()
            .filter(|(rule, model, subject)| {
                !firing.iter().any(|(r, m, s)| r == rule && m == model && s.contains(subject))
            })
            .collect();
        if missing.is_empty() {
            break firing;
        }
        assert!(
            started.elapsed() < Duration::from_secs(200),
            "after 200 s of drift, still not firing: {missing:?}; firing: {firing:?}"
        );
        tokio::time::sleep(Duration::from_secs(5)).await;
    };
    eprintln!("firing after {} s of drift: {firing:#?}", started.elapsed().as_secs());
    // Drift at the edge is one feature's: no other feature is blamed.
    let blamed: BTreeSet<&str> =
        firing.iter().filter(|(r, m, _)| r == "feature-drift" && m == "wine").map(|(_, _, s)| s.as_str()).collect();
    assert!(blamed.iter().all(|s| s.contains("alcohol")), "feature drift blamed on {blamed:?}");
    assert!(!firing.iter().any(|(r, ..)| r == "error-rate"), "no call failed: {firing:?}");

    // The dashboard shows them.
    if let Some((chromium, script)) = &browser {
        let collector = running["collector"].as_str().unwrap();
        let env = [
            ("SEXTANT_PHASE", "dashboard"),
            ("SEXTANT_URL", collector),
            ("SEXTANT_KEY", running["read_key"].as_str().unwrap()),
            ("SEXTANT_MODELS", "wine,wine-web"),
        ];
        let result = node(script, chromium, &artifacts, &env, samples).await;
        let shown = |model: &str| -> Vec<String> {
            result["models"][model]["alerts"].as_array().unwrap().iter().map(text).collect()
        };
        for model in ["wine", "wine-web"] {
            let window = text(&result["models"][model]["window"]);
            assert!(window.contains("window 1m"), "the dashboard shows the demo's one-minute window: {window}");
        }
        for (rule, model, subject) in EXPECTED {
            assert!(
                shown(model).iter().any(|a| a.starts_with(&format!("{rule}|")) && a.contains(subject)),
                "the dashboard does not show {rule} on {model} ({subject}): {:?}",
                shown(model)
            );
        }
    }

    // Ctrl-C: everything stops cleanly, and the demo's own count agrees.
    let pid = demo.id().unwrap().to_string();
    assert!(std::process::Command::new("kill").args(["-INT", &pid]).status().unwrap().success());
    let status = tokio::time::timeout(Duration::from_secs(120), demo.wait()).await.expect("the demo stops").unwrap();
    while let Ok(line) = lines.try_recv() {
        seen.push(line);
    }
    assert!(status.success(), "the demo exited with {status}");
    assert!(seen.iter().any(|l| l.contains("exactly once")), "no tally in the demo's output");

    // Exactly once, checked independently: a new collector process on the demo's database.
    let sent: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("sent.json")).unwrap()).unwrap();
    let mut collector = tokio::process::Command::new(env!("CARGO_BIN_EXE_sextant"))
        .args(["collect", "--database", dir.join("demo.db").to_str().unwrap(), "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut out = BufReader::new(collector.stdout.take().unwrap()).lines();
    let line = out.next_line().await.unwrap().unwrap();
    let url = line
        .strip_prefix("collector listening on ")
        .and_then(|l| l.split(' ').next())
        .unwrap_or_else(|| panic!("{line}"));
    let api = Api::new(url, running["read_key"].as_str().unwrap());
    for model in ["wine", "wine-web"] {
        let stored = api.predictions(model).await;
        let sent = &sent["models"][model];
        let ids: Vec<&str> = sent["predictions"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
        // The page predicts 10 times a second: the clean phase alone sends 300. How long the
        // drift phase runs depends on how soon the alerts fire, so no more is asked.
        assert!(ids.len() > 250, "{model}: only {} predictions sent", ids.len());
        assert_eq!(stored.len(), ids.len(), "{model}: {} stored, {} sent", stored.len(), ids.len());
        for id in &ids {
            assert!(stored.contains_key(*id), "{model}: prediction {id} was sent and not stored");
        }
        let labels = sent["labels"].as_object().unwrap();
        assert!(
            labels.len() * 10 > ids.len() * 8,
            "{model}: about 90% labelled, got {} of {}",
            labels.len(),
            ids.len()
        );
        for (id, truth) in labels {
            assert_eq!(
                stored.get(id.as_str()).and_then(Option::as_deref),
                truth.as_str(),
                "{model}: the label of {id}"
            );
        }
    }
    if let Some(digits) = page {
        let stored = api.predictions("digits-mlp").await;
        assert_eq!(stored.len(), samples, "the page's predictions: {stored:?}");
        let mut truths: Vec<String> = stored.values().map(|t| t.clone().unwrap_or_default()).collect();
        let mut clicked = digits.clone();
        truths.sort();
        clicked.sort();
        assert_eq!(truths, clicked, "each page prediction carries the label the user gave");
    }
    collector.kill().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

fn text(value: &serde_json::Value) -> String {
    value.as_str().unwrap_or_default().to_owned()
}

/// Reads the demo's output until a line contains `needle`.
async fn until_line(lines: &mut UnboundedReceiver<String>, seen: &mut Vec<String>, needle: &str, seconds: u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(seconds);
    loop {
        let line = tokio::time::timeout_at(deadline, lines.recv())
            .await
            .unwrap_or_else(|_| panic!("no `{needle}` from the demo within {seconds} s"))
            .unwrap_or_else(|| panic!("the demo ended before `{needle}`"));
        let found = line.contains(needle);
        seen.push(line);
        if found {
            return;
        }
    }
}

/// One phase of `www/tests/demo.mjs`; its result object.
async fn node(
    script: &Path,
    chromium: &Path,
    artifacts: &Path,
    env: &[(&str, &str)],
    samples: usize,
) -> serde_json::Value {
    let (chromium, artifacts, samples) =
        (chromium.display().to_string(), artifacts.display().to_string(), samples.to_string());
    let mut env = env.to_vec();
    env.extend([
        ("SEXTANT_CHROMIUM", chromium.as_str()),
        ("SEXTANT_ARTIFACTS", &artifacts),
        ("SEXTANT_SAMPLES", &samples),
    ]);
    crate::browser_script(script, &env).await
}

/// The collector's read API.
struct Api {
    http: reqwest::Client,
    url: String,
    key: String,
}

impl Api {
    fn new(url: &str, key: &str) -> Api {
        Api { http: tls::client().unwrap(), url: url.to_owned(), key: key.to_owned() }
    }

    async fn get(&self, path: &str) -> serde_json::Value {
        let response = self.http.get(format!("{}{path}", self.url)).bearer_auth(&self.key).send().await.unwrap();
        assert!(response.status().is_success(), "GET {path}: {}", response.status());
        response.json().await.unwrap()
    }

    async fn alerts(&self) -> Vec<serde_json::Value> {
        self.get("/v1/alerts?limit=1000").await["alerts"].as_array().unwrap().clone()
    }

    async fn predictions_per_model(&self) -> BTreeMap<String, i64> {
        let models = self.get("/v1/models").await;
        models["models"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| (text(&m["name"]), m["predictions"].as_i64().unwrap()))
            .collect()
    }

    /// Every stored prediction of the model's version 1: id → the truth it was labelled with.
    async fn predictions(&self, model: &str) -> BTreeMap<String, Option<String>> {
        let mut stored = BTreeMap::new();
        let mut after = 0;
        loop {
            let page = self.get(&format!("/v1/models/{model}/versions/1/predictions?after={after}&limit=1000")).await;
            for item in page["items"].as_array().unwrap() {
                let truth = item["truth"]["class"].as_str().map(str::to_owned);
                let id = text(&item["prediction_id"]);
                assert!(stored.insert(id.clone(), truth).is_none(), "{model}: prediction {id} is stored twice");
            }
            match page["next_after"].as_i64() {
                Some(next) => after = next,
                None => return stored,
            }
        }
    }
}
