//! Monitoring through a real collector: windows, the drift / integrity / performance read API, and
//! the alert lifecycle (firing → deduplicated → resolved) delivered to a real webhook receiver on
//! loopback, on SQLite and on PostgreSQL.

use std::sync::{Arc, Mutex};

use telemetry::{CategoryProfile, FeatureKind, FeatureProfile, NumberProfile, Profile, Record, Summarizer, Value};

use super::*;

/// Deterministic pseudo-random numbers (SplitMix64), so seeded data is the same on every run.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Approximately normal (Irwin–Hall, 12 uniforms).
    fn normal(&mut self, mean: f64, std: f64) -> f64 {
        mean + std * ((0..12).map(|_| self.uniform()).sum::<f64>() - 6.0)
    }

    fn pick<'a>(&mut self, weighted: &[(&'a str, f64)]) -> &'a str {
        let mut u = self.uniform();
        for &(value, weight) in weighted {
            if u < weight {
                return value;
            }
            u -= weight;
        }
        weighted[weighted.len() - 1].0
    }
}

const COLORS: [(&str, f64); 3] = [("red", 0.5), ("white", 0.3), ("rose", 0.2)];
const SHIFTED_COLORS: [(&str, f64); 4] = [("red", 0.4), ("white", 0.3), ("rose", 0.1), ("orange", 0.2)];
const CLASSES: [&str; 3] = ["class_0", "class_1", "class_2"];

/// The reference profile: `alcohol` ~ N(13, 1), `acidity` ~ N(3, 0.5), `color`, and the target.
fn reference_profile() -> Profile {
    let mut rng = Rng(7);
    let rows = 5000;
    let alcohol: Vec<f64> = (0..rows).map(|_| rng.normal(13.0, 1.0)).collect();
    let acidity: Vec<f64> = (0..rows).map(|_| rng.normal(3.0, 0.5)).collect();
    let colors: Vec<&str> = (0..rows).map(|_| rng.pick(&COLORS)).collect();
    let classes: Vec<&str> = (0..rows).map(|i| CLASSES[i % 3]).collect();
    let number = |name: &str, values: &[f64]| FeatureProfile {
        name: name.into(),
        missing_rate: 0.0,
        kind: FeatureKind::Number(NumberProfile::build(values, 10).unwrap()),
    };
    Profile {
        baseline: None,
        profile_version: telemetry::PROFILE_VERSION,
        rows: rows as u64,
        features: vec![
            number("alcohol", &alcohol),
            number("acidity", &acidity),
            FeatureProfile {
                name: "color".into(),
                missing_rate: 0.0,
                kind: FeatureKind::Category(CategoryProfile::build(colors.iter().copied(), 20)),
            },
        ],
        target: Some(FeatureProfile {
            name: "class".into(),
            missing_rate: 0.0,
            kind: FeatureKind::Category(CategoryProfile::build(classes.iter().copied(), 20)),
        }),
    }
}

/// How the rows of a phase differ from the reference.
#[derive(Clone, Copy)]
struct Phase {
    seed: u64,
    rows: usize,
    /// Added to `alcohol`, in reference standard deviations.
    alcohol_shift: f64,
    /// `color` from SHIFTED_COLORS (a new category, re-weighted).
    new_colors: bool,
    /// `acidity` arrives as `acid`.
    renamed: bool,
}

const CLEAN: Phase = Phase { seed: 1, rows: 2000, alcohol_shift: 0.0, new_colors: false, renamed: false };

/// A feature summary of `phase`'s rows, counted against the profile the way a deployment does.
fn summary(profile: &Profile, phase: Phase, at_ms: i64) -> Record {
    let mut rng = Rng(phase.seed);
    let mut summarizer = Summarizer::new(profile, 500);
    for _ in 0..phase.rows {
        let alcohol = rng.normal(13.0 + phase.alcohol_shift, 1.0);
        let acidity = rng.normal(3.0, 0.5);
        let color = if phase.new_colors { rng.pick(&SHIFTED_COLORS) } else { rng.pick(&COLORS) };
        let acidity_name = if phase.renamed { "acid" } else { "acidity" };
        summarizer.observe(&[
            ("alcohol", Value::Number(alcohol)),
            (acidity_name, Value::Number(acidity)),
            ("color", Value::Text(color)),
        ]);
    }
    summarizer.take(at_ms)
}

/// `n` predictions at `at_ms`, ids `{prefix}/{i}`, predicting class i % 3.
fn predictions(prefix: &str, n: usize, at_ms: i64) -> Vec<Record> {
    (0..n)
        .map(|i| {
            Record::Prediction(telemetry::Prediction {
                id: format!("{prefix}/{i}"),
                timestamp_ms: at_ms,
                latency_us: 1000 + (i % 7) as u32 * 100,
                engine: if i % 4 == 0 { EngineKind::Gpu } else { EngineKind::Cpu },
                output: Output::Class { label: CLASSES[i % 3].into(), score: 0.9 },
            })
        })
        .collect()
}

/// Labels for those predictions: the predicted class, except for the first `wrong` of them.
fn labels(prefix: &str, n: usize, wrong: usize) -> Vec<Record> {
    (0..n)
        .map(|i| {
            let truth = if i < wrong { CLASSES[(i + 1) % 3] } else { CLASSES[i % 3] };
            Record::Label(label(&format!("{prefix}/{i}"), truth))
        })
        .collect()
}

/// Model `wine` version 1 with a profile, a clean previous hour, and this hour: `alcohol` shifted
/// by 1.5 std, a new `color`, 300 predictions of which 60 are labelled wrong. Returns the profile
/// and the time the data is at.
pub async fn seed_drifted(s: &Served) -> (Profile, i64) {
    let profile = reference_profile();
    put_profile(s, "1", &profile).await;
    let now = now_ms();
    let hour = 3_600_000;
    let shifted = Phase { seed: 2, rows: 3000, alcohol_shift: 1.5, new_colors: true, renamed: false };
    send(s, "1", "previous", vec![summary(&profile, CLEAN, now - hour)]).await;
    let mut records = vec![summary(&profile, shifted, now)];
    records.extend(predictions("p", 300, now));
    records.extend(labels("p", 300, 60));
    send(s, "1", "current", records).await;
    (profile, now)
}

async fn send(s: &Served, version: &str, batch_id: &str, records: Vec<Record>) {
    let mut b = batch(batch_id, 0);
    b.model.version = version.into();
    b.records = records;
    let (status, reply) = post_batch(&s.http, &s.url, &s.keys.ingest, &b, MSGPACK).await;
    assert_eq!(status, 200, "{reply}");
}

async fn put_profile(s: &Served, version: &str, profile: &Profile) {
    let response = s
        .http
        .put(format!("{}/v1/models/wine/versions/{version}/profile", s.url))
        .bearer_auth(&s.keys.admin)
        .json(profile)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
}

/// Evaluates the rules on the windows holding `at` (the data's time, so an hour turning over
/// mid-test changes nothing).
pub async fn evaluate(s: &Served, at: i64) -> serde_json::Value {
    let response =
        s.http.post(format!("{}/v1/alerts/evaluate?at={at}", s.url)).bearer_auth(&s.keys.admin).send().await.unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// A webhook receiver on loopback that refuses its first request (503) and records the rest.
async fn webhook_receiver() -> (String, Arc<Mutex<Vec<serde_json::Value>>>) {
    let received: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
    let refused_once = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let store = received.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |axum::Json(event): axum::Json<serde_json::Value>| {
            let (store, refused_once) = (store.clone(), refused_once.clone());
            async move {
                if !refused_once.swap(true, std::sync::atomic::Ordering::SeqCst) {
                    return axum::http::StatusCode::SERVICE_UNAVAILABLE;
                }
                store.lock().unwrap().push(event);
                axum::http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, received)
}

/// Waits (up to 20 s) until the receiver holds `n` events.
async fn wait_for_events(received: &Mutex<Vec<serde_json::Value>>, n: usize) -> Vec<serde_json::Value> {
    for _ in 0..200 {
        let events = received.lock().unwrap().clone();
        if events.len() >= n {
            return events;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the webhook received {:?}, expected {n} events", received.lock().unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_integrity_and_performance_are_read_per_window() {
    for db in databases("monitor_reads").await {
        let s = serve(&db, |_| {}).await;
        let (profile, now) = seed_drifted(&s).await;

        let (status, drift) =
            get_json(&s.http, &s.url, &s.keys.read, &format!("/v1/models/wine/drift?window=1h&at={now}")).await;
        assert_eq!(status, 200, "{db:?}: {drift}");
        assert_eq!((drift["version"].as_str(), drift["width"].as_str()), (Some("1"), Some("1h")));
        assert_eq!((drift["rows"].as_u64(), drift["previous_rows"].as_u64()), (Some(3000), Some(2000)));
        let verdicts = |report: &serde_json::Value| -> Vec<(String, bool)> {
            report["columns"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| (c["name"].as_str().unwrap().to_owned(), c["drift"].as_bool().unwrap()))
                .collect()
        };
        let expected = [("alcohol".to_owned(), true), ("acidity".to_owned(), false), ("color".to_owned(), true)];
        assert_eq!(verdicts(&drift["vs_reference"]), expected, "{db:?}: {drift}");
        assert_eq!(verdicts(&drift["vs_previous"]), expected, "the previous hour was clean");
        let alcohol = &drift["vs_reference"]["columns"][0];
        assert_eq!(alcohol["statistic"], "wasserstein_normed");
        assert!(alcohol["explanation"].as_str().unwrap().contains("Wasserstein-1 / reference std"), "{alcohol}");
        let histogram = &drift["histograms"][2];
        assert_eq!(histogram["bins"], serde_json::json!(["red", "white", "rose", "(other)"]));
        assert_eq!(histogram["current"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).sum::<u64>(), 3000);
        assert!(drift["prediction"]["drift"] == false, "predictions follow the target: {}", drift["prediction"]);

        // The same numbers the analysis gives on the rows directly.
        let (_, integrity) =
            get_json(&s.http, &s.url, &s.keys.read, &format!("/v1/models/wine/integrity?window=1h&at={now}")).await;
        let issues: Vec<(&str, &str)> = integrity["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| (f["feature"].as_str().unwrap(), f["issue"].as_str().unwrap()))
            .collect();
        assert_eq!(issues, [("alcohol", "out_of_range"), ("color", "new_categories")], "{integrity}");
        let detail = integrity["findings"][1]["detail"].as_str().unwrap();
        assert!(detail.ends_with(r#"e.g. ["orange"]"#), "only the new categories are named: {detail}");

        let (_, perf) = get_json(
            &s.http,
            &s.url,
            &s.keys.read,
            &format!("/v1/models/wine/performance?window=1h&windows=3&at={now}"),
        )
        .await;
        let series = perf["series"].as_array().unwrap();
        assert_eq!(series.len(), 3);
        assert_eq!(series[2], perf["current"]);
        let current = &perf["current"];
        assert_eq!((current["predictions"].as_u64(), current["labelled"].as_u64()), (Some(300), Some(300)));
        let accuracy = &current["classification"]["accuracy"];
        assert_eq!(accuracy["value"].as_f64(), Some(240.0 / 300.0), "{perf}");
        assert!(accuracy["low"].as_f64().unwrap() < 0.8 && accuracy["high"].as_f64().unwrap() > 0.8);
        let traffic = current["traffic"].as_array().unwrap();
        let by_engine: Vec<(&str, u64)> =
            traffic.iter().map(|t| (t["engine"].as_str().unwrap(), t["predictions"].as_u64().unwrap())).collect();
        assert_eq!(by_engine, [("cpu", 225), ("gpu", 75)], "{perf}");
        assert!(series[0]["classification"].is_null() && series[0]["predictions"] == 0);

        // A field arriving under a new name, with values like the missing one's: a rename.
        put_profile(&s, "2", &profile).await;
        let renamed = Phase { seed: 3, rows: 1000, alcohol_shift: 0.0, new_colors: false, renamed: true };
        send(&s, "2", "renamed", vec![summary(&profile, renamed, now)]).await;
        let (_, integrity) =
            get_json(&s.http, &s.url, &s.keys.read, &format!("/v1/models/wine/integrity?version=2&window=1h&at={now}"))
                .await;
        let finding = &integrity["findings"][0];
        assert_eq!((finding["feature"].as_str(), finding["issue"].as_str()), (Some("acidity"), Some("renamed_field")));
        assert!(finding["detail"].as_str().unwrap().contains("`acid`"), "{integrity}");

        // Bad questions get clear answers.
        let (status, e) = get_json(&s.http, &s.url, &s.keys.read, "/v1/models/wine/drift?window=5parsecs").await;
        assert_eq!((status, e["error"]["code"].as_str()), (400, Some("bad_window")), "{e}");
        let (status, e) = get_json(&s.http, &s.url, &s.keys.read, "/v1/models/nope/performance").await;
        assert_eq!((status, e["error"]["code"].as_str()), (404, Some("unknown_model")), "{e}");
        let (status, e) = get_json(&s.http, &s.url, &s.keys.read, "/v1/models/wine/drift?at=yesterday").await;
        assert_eq!((status, e["error"]["code"].as_str()), (400, Some("bad_query")), "{e}");
        assert!(e["error"]["message"].as_str().unwrap().contains("at"), "{e}");
        for at in [i64::MIN, i64::MAX] {
            let path = format!("/v1/models/wine/performance?window=366d&windows=500&at={at}");
            let (status, body) = get_json(&s.http, &s.url, &s.keys.read, &path).await;
            assert_eq!(status, 200, "an absurd time is clamped, not a crash: {body}");
            assert_eq!(body["series"].as_array().unwrap().len(), 1, "500 windows of 366 days are cut to a year");
        }
        let (status, _) = get_json(&s.http, &s.url, &s.keys.ingest, "/v1/models/wine/drift").await;
        assert_eq!(status, 403, "an ingest key cannot read");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_fire_once_reach_the_webhook_and_resolve() {
    for db in databases("alert_lifecycle").await {
        let (hook, received) = webhook_receiver().await;
        let s = serve(&db, |c| {
            c.monitoring.webhooks = vec![hook.clone()];
            c.monitoring.webhook_allow_private = true; // the receiver is on loopback
            // Evaluated on request here; the timer would race the test's phases.
            c.monitoring.evaluate_every = collector::monitor::Width::parse("1d").unwrap();
            let mut rules = collector::alerts::Rule::defaults();
            rules.push(
                serde_json::from_value(serde_json::json!({
                    "name": "accuracy", "metric": "accuracy", "threshold": 0.85, "min_samples": 200,
                    "severity": "critical"
                }))
                .unwrap(),
            );
            c.monitoring.rules = rules;
        })
        .await;
        let profile = reference_profile();
        put_profile(&s, "1", &profile).await;
        let now = now_ms();

        // Clean traffic: no alert.
        let mut records = vec![summary(&profile, CLEAN, now)];
        records.extend(predictions("clean", 400, now));
        records.extend(labels("clean", 400, 8));
        send(&s, "1", "clean", records).await;
        let outcome = evaluate(&s, now).await;
        assert_eq!((outcome["fired"].as_u64(), outcome["model_versions"].as_u64()), (Some(0), Some(1)), "{db:?}");
        let (_, alerts) = get_json(&s.http, &s.url, &s.keys.read, "/v1/alerts").await;
        assert_eq!(alerts["alerts"], serde_json::json!([]), "clean traffic fires nothing: {alerts}");

        // Drift and a concept shift: alcohol moves, and half the new predictions are wrong.
        let shifted = Phase { seed: 4, rows: 6000, alcohol_shift: 1.5, new_colors: false, renamed: false };
        let mut records = vec![summary(&profile, shifted, now)];
        records.extend(predictions("shift", 400, now));
        records.extend(labels("shift", 400, 200));
        send(&s, "1", "shifted", records).await;
        let outcome = evaluate(&s, now).await;
        let (_, firing) = get_json(&s.http, &s.url, &s.keys.read, "/v1/models/wine/alerts?state=firing").await;
        let mut fired: Vec<(String, String)> = firing["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| (a["rule"].as_str().unwrap().to_owned(), a["subject"].as_str().unwrap().to_owned()))
            .collect();
        fired.sort();
        let expected = [
            ("accuracy".to_owned(), String::new()),
            ("data-integrity".to_owned(), "alcohol:out_of_range".to_owned()),
            ("feature-drift".to_owned(), "alcohol".to_owned()),
        ];
        assert_eq!(fired, expected, "{db:?}: {firing}");
        assert_eq!(outcome["fired"].as_u64(), Some(3));
        // Evaluating again changes nothing: one alert per rule, model version and subject.
        let again = evaluate(&s, now).await;
        assert_eq!((again["fired"].as_u64(), again["resolved"].as_u64()), (Some(0), Some(0)), "{again}");

        // Each firing event reaches the webhook, the first after a retry (the receiver refused it).
        let events = wait_for_events(&received, 3).await;
        assert!(events.iter().all(|e| e["event"] == "firing"), "{events:?}");
        let accuracy_alert = events.iter().find(|e| e["alert"]["rule"] == "accuracy").unwrap();
        assert!(accuracy_alert["alert"]["message"].as_str().unwrap().contains("95% interval"), "{accuracy_alert}");
        let metrics = s.http.get(format!("{}/metrics", s.url)).send().await.unwrap().text().await.unwrap();
        assert!(
            metrics.contains(r#"sextant_collector_alerts_firing{model="wine",version="1",severity="critical"} 1"#),
            "{metrics}"
        );
        assert!(
            metrics.contains(r#"sextant_collector_model_drifted_features{model="wine",version="1"} 1"#),
            "{metrics}"
        );

        // The truth was mislabelled: corrected labels bring accuracy back, and the alert resolves.
        send(&s, "1", "corrected", labels("shift", 400, 0)).await;
        let outcome = evaluate(&s, now).await;
        assert_eq!(outcome["resolved"].as_u64(), Some(1), "{outcome}");
        let events = wait_for_events(&received, 4).await;
        let resolved: Vec<_> = events.iter().filter(|e| e["event"] == "resolved").collect();
        assert_eq!(resolved.len(), 1, "{events:?}");
        assert_eq!(resolved[0]["alert"]["rule"], "accuracy");
        assert!(resolved[0]["alert"]["resolved_ms"].is_i64());

        // The history keeps both episodes' states and every delivery's. A delivery is marked
        // delivered once the receiver's answer is back, a moment after the receiver saw it.
        let mut all = Vec::new();
        for _ in 0..100 {
            let (_, body) = get_json(&s.http, &s.url, &s.keys.read, "/v1/models/wine/alerts").await;
            all = body["alerts"].as_array().unwrap().clone();
            let deliveries = || all.iter().flat_map(|a| a["deliveries"].as_array().unwrap());
            if deliveries().count() == 4 && deliveries().all(|d| d["state"] == "delivered") {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert_eq!(all.len(), 3);
        let accuracy = all.iter().find(|a| a["rule"] == "accuracy").unwrap();
        assert_eq!(accuracy["state"], "resolved");
        let deliveries = accuracy["deliveries"].as_array().unwrap();
        assert_eq!(deliveries.len(), 2, "{accuracy}");
        assert!(deliveries.iter().all(|d| d["state"] == "delivered"), "{accuracy}");
        let attempts: i64 =
            all.iter().flat_map(|a| a["deliveries"].as_array().unwrap()).map(|d| d["attempts"].as_i64().unwrap()).sum();
        assert_eq!(attempts, 5, "4 deliveries, one of them retried once");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alert_rules_are_managed_through_the_api() {
    for db in databases("alert_rules").await {
        let s = serve(&db, |c| {
            c.monitoring.rules = Vec::new();
            // Evaluated on request here; the timer would race the test's steps.
            c.monitoring.evaluate_every = collector::monitor::Width::parse("1d").unwrap();
        })
        .await;
        let put = |name: &str, body: serde_json::Value, key: &str| {
            s.http.put(format!("{}/v1/alert-rules/{name}", s.url)).bearer_auth(key).json(&body).send()
        };
        let rule = serde_json::json!({ "metric": "f1_macro", "threshold": 0.7, "window": "5m", "model": "wine" });
        assert_eq!(put("f1", rule.clone(), &s.keys.read).await.unwrap().status(), 403);
        let response = put("f1", serde_json::json!({ "metric": "f1_macro" }), &s.keys.admin).await.unwrap();
        assert_eq!(response.status(), 400);
        let e: serde_json::Value = response.json().await.unwrap();
        assert!(e["error"]["message"].as_str().unwrap().contains("needs a threshold"), "{e}");
        let e: serde_json::Value =
            put("f1", serde_json::json!({ "metric": "f2" }), &s.keys.admin).await.unwrap().json().await.unwrap();
        assert!(e["error"]["message"].as_str().unwrap().contains("unknown variant `f2`"), "{e}");
        assert_eq!(put("f1", rule, &s.keys.admin).await.unwrap().status(), 200);
        let (_, rules) = get_json(&s.http, &s.url, &s.keys.read, "/v1/alert-rules").await;
        assert_eq!(rules["rules"][0]["name"], "f1");
        assert_eq!(rules["rules"][0]["window"], "5m");
        assert_eq!(rules["rules"][0]["severity"], "warning");
        // An alert of a rule that is then deleted resolves at the next evaluation.
        let now = now_ms();
        let rule = serde_json::json!({ "metric": "error_rate", "threshold": 0.1, "min_samples": 10 });
        assert_eq!(put("errors", rule, &s.keys.admin).await.unwrap().status(), 200);
        let failures = (0..20)
            .map(|_| {
                Record::Error(telemetry::ErrorRecord {
                    timestamp_ms: now,
                    kind: telemetry::ErrorKind::Inference,
                    message: "out of memory".into(),
                })
            })
            .collect();
        send(&s, "1", "failures", failures).await;
        assert_eq!(evaluate(&s, now).await["fired"], 1);
        let gone = s.http.delete(format!("{}/v1/alert-rules/errors", s.url)).bearer_auth(&s.keys.admin).send();
        assert_eq!(gone.await.unwrap().status(), 204);
        assert_eq!(evaluate(&s, now).await["resolved"], 1, "{db:?}");

        let delete = || s.http.delete(format!("{}/v1/alert-rules/f1", s.url)).bearer_auth(&s.keys.admin).send();
        assert_eq!(delete().await.unwrap().status(), 204);
        assert_eq!(delete().await.unwrap().status(), 404);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn labels_join_in_any_order_corrections_replace_and_compaction_changes_nothing() {
    for db in databases("rollups").await {
        let s = serve(&db, |c| c.monitoring.evaluate_every = collector::monitor::Width::parse("1d").unwrap()).await;
        let now = now_ms();
        let accuracy = async || {
            let path = format!("/v1/models/wine/performance?window=1h&windows=1&at={now}");
            let (status, perf) = get_json(&s.http, &s.url, &s.keys.read, &path).await;
            assert_eq!(status, 200, "{perf}");
            let c = &perf["current"]["classification"];
            (c["n"].as_u64().unwrap(), c["accuracy"]["value"].as_f64().unwrap())
        };
        let post_labels = async |model: Option<&str>, labels: Vec<telemetry::Label>| {
            let response = s
                .http
                .post(format!("{}/v1/labels", s.url))
                .bearer_auth(&s.keys.ingest)
                .json(&serde_json::json!({ "model": model, "labels": labels }))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
        };
        // Labels for x/0..4 come first (truth class_1, their model named: no prediction tells it
        // yet), then the predictions (class i % 3) with in-batch labels for x/5..9 that agree.
        post_labels(Some("wine"), (0..5).map(|i| label(&format!("x/{i}"), "class_1")).collect()).await;
        let mut records = predictions("x", 10, now);
        records.extend((5..10).map(|i| Record::Label(label(&format!("x/{i}"), CLASSES[i % 3]))));
        send(&s, "1", "x", records).await;
        assert_eq!(accuracy().await, (10, 0.7), "{db:?}: x/1 and x/4 right of the early five, all late five");
        // A correction replaces its label's pair; the same label again changes nothing (without a
        // model named, it is for the one model its prediction is stored under).
        post_labels(None, vec![label("x/0", "class_0")]).await;
        assert_eq!(accuracy().await, (10, 0.8));
        post_labels(Some("wine"), vec![label("x/0", "class_0")]).await;
        assert_eq!(accuracy().await, (10, 0.8));

        // More batches in the same minute, then compaction: one row per minute, same window.
        for b in 0..3 {
            send(&s, "1", &format!("more{b}"), predictions(&format!("m{b}"), 5, now)).await;
        }
        let store = collector::open(&db, 2).await.unwrap();
        let model_version = |_| ("wine".to_owned(), "1".to_owned());
        let (model, version) = model_version(());
        let span = collector::monitor::Width::HOUR.containing(now);
        let before = store.window(model.clone(), version.clone(), span).await.unwrap();
        let done = store.compact_rollups(0).await.unwrap();
        assert!(done.rows_merged >= 5, "{done:?}");
        assert_eq!(store.compact_rollups(done.last_id).await.unwrap().rows_merged, 0, "nothing new to merge");
        let after = store.window(model, version, span).await.unwrap();
        assert_eq!(before, after, "{db:?}");
        assert_eq!(after.predictions(), 25);
    }
}

/// A sender whose lease ran out (a paused process) and whose delivery another process claimed
/// since cannot overwrite that claimant's record: finishing is a compare-and-set on the lease.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_whose_lease_ran_out_is_recorded_by_its_new_claimant_only() {
    use collector::alerts::{Attempt, NewAlert};
    for database in databases("lease").await {
        let store = collector::open(&database, 2).await.unwrap();
        let alert = NewAlert {
            rule: "r".into(),
            model: "m".into(),
            version: "1".into(),
            subject: String::new(),
            metric: "accuracy".into(),
            severity: "critical".into(),
            value: Some(0.5),
            threshold: Some(0.9),
            message: "low".into(),
            window_start_ms: 0,
            started_ms: 1_000,
        };
        store.fire_alert(alert, vec!["http://127.0.0.1:9/hook".into()]).await.unwrap().unwrap();
        // Deliveries are queued due now, by the collector's clock.
        let at = now_ms() + 1_000;
        let first = store.claim_deliveries(at, 30_000, 16).await.unwrap();
        assert_eq!(first.len(), 1, "{database:?}");
        assert!(store.claim_deliveries(at + 1_000, 30_000, 16).await.unwrap().is_empty(), "leased");
        // The lease runs out; another process claims the delivery and sends it.
        let second = store.claim_deliveries(at + 30_001, 30_000, 16).await.unwrap();
        assert_eq!(second.len(), 1, "{database:?}");
        let late = Attempt::Retry { next_attempt_ms: at + 40_000, error: "timed out".into() };
        assert!(
            !store.finish_delivery(&first[0], late).await.unwrap(),
            "{database:?}: the stale claim changes nothing"
        );
        let delivered = Attempt::Delivered { at_ms: at + 30_500 };
        assert!(store.finish_delivery(&second[0], delivered).await.unwrap(), "{database:?}");
        let alerts = store.alerts(collector::alerts::AlertQuery { model: None, firing_only: false, limit: 10 }).await;
        let delivery = &alerts.unwrap()[0].deliveries[0];
        assert_eq!((delivery.state.as_str(), delivery.attempts), ("delivered", 1), "{database:?}: {delivery:?}");
    }
}

/// Gauges follow what is served: a model version superseded by a newer one and silent in the
/// window leaves `/metrics`; the newest version of each model stays, silent or not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn superseded_silent_versions_leave_the_scrape() {
    for db in databases("stale_series").await {
        let s = serve(&db, |_| {}).await;
        let now = now_ms();
        send(&s, "1", "old", predictions("old", 5, now - 3 * 3_600_000)).await;
        send(&s, "2", "new", predictions("new", 5, now)).await;
        let scrape = async || s.http.get(format!("{}/metrics", s.url)).send().await.unwrap().text().await.unwrap();
        let gauges_of = |scrape: &str, version: &str| {
            let label = format!("{{model=\"wine\",version=\"{version}\"}}");
            scrape.lines().filter(|l| l.starts_with("sextant_collector_model_") && l.contains(&label)).count()
        };
        evaluate(&s, now).await;
        let metrics = scrape().await;
        assert!(
            metrics.contains(r#"sextant_collector_model_window_predictions{model="wine",version="2"} 5"#),
            "{metrics}"
        );
        assert_eq!(gauges_of(&metrics, "1"), 0, "{db:?}: version 1 is superseded and silent: {metrics}");
        // Two hours on, the newest version is silent too: its gauges stay, at zero.
        evaluate(&s, now + 2 * 3_600_000).await;
        let metrics = scrape().await;
        assert!(
            metrics.contains(r#"sextant_collector_model_window_predictions{model="wine",version="2"} 0"#),
            "{metrics}"
        );
        assert_eq!(gauges_of(&metrics, "1"), 0, "{db:?}");
    }
}
