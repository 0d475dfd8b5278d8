//! Hostile clients holding an ingest key (a browser app's is public), against real `sextant
//! collect` processes on each database: every attack is refused or bounded, the process stays up
//! within its memory, and an honest client is served throughout.

use std::time::{Duration, Instant};

use telemetry::{ClassScore, FeatureCounts, FeatureSummary};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::process::{Process, create_key, create_scoped_key, start};
use super::*;

/// A collector process with a key of each role.
struct Target {
    process: Process,
    keys: Keys,
    http: reqwest::Client,
    database: String,
}

async fn target(database: String) -> Target {
    let keys = Keys {
        ingest: create_key(&database, "ingest"),
        read: create_key(&database, "read"),
        admin: create_key(&database, "admin"),
    };
    let process = start(&database).await;
    Target { process, keys, http: tls::client().unwrap(), database }
}

impl Target {
    /// The process's peak resident memory so far, in MiB (Linux's `VmHWM`).
    fn peak_rss_mib(&self) -> u64 {
        let pid = self.process.child.id().expect("the collector is running");
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM in /proc/PID/status");
        kib / 1024
    }

    /// An honest client's batch of 50 predictions: stored, and how long it took.
    async fn honest(&self, id: &str) -> Duration {
        let started = Instant::now();
        let (status, reply) =
            post_batch(&self.http, &self.process.url, &self.keys.ingest, &batch(id, 50), MSGPACK).await;
        assert_eq!((status, reply["status"].as_str()), (200, Some("stored")), "{}: {reply}", self.database);
        started.elapsed()
    }
}

fn hostile(batch_id: &str, model: &str, records: Vec<Record>) -> Batch {
    Batch {
        batch_id: batch_id.into(),
        model: ModelRef { name: model.into(), ..super::model() },
        records,
        ..batch(batch_id, 0)
    }
}

/// A prediction record of an attacker's batch.
fn predicted(id: String, timestamp_ms: i64, output: Output) -> Record {
    Record::Prediction(Prediction { id, timestamp_ms, latency_us: 1, engine: EngineKind::Cpu, output })
}

const CLASSES: usize = 12_000;
const STALLED: usize = 300;

async fn attacks(database: String) {
    let t = target(database).await;
    let (url, db) = (t.process.url.clone(), t.database.clone());
    let mut honest = vec![t.honest("honest-0").await];

    // 1. Cardinality: 12,000 predicted classes, each labelled with its own true class (half right).
    // A dense confusion matrix of them is 1.15 GB per read; before the bound the evaluator's pass
    // and every performance read built one.
    let now = now_ms();
    let mut records = Vec::new();
    for i in 0..CLASSES {
        let id = format!("v{i}");
        records.push(predicted(id.clone(), now, Output::Class { label: format!("c{i}"), score: 0.9 }));
        let truth = if i % 2 == 0 { format!("c{i}") } else { format!("t{i}") };
        records.push(Record::Label(Label { prediction_id: id, timestamp_ms: now, truth: Truth::Class(truth) }));
    }
    let (status, reply) =
        post_batch(&t.http, &url, &t.keys.ingest, &hostile("classes", "victim", records), MSGPACK).await;
    assert_eq!((status, reply["accepted"].as_u64()), (200, Some(2 * CLASSES as u64)), "{db}: {reply}");
    honest.push(t.honest("honest-1").await);
    let evaluated =
        t.http.post(format!("{url}/v1/alerts/evaluate?at={now}")).bearer_auth(&t.keys.admin).send().await.unwrap();
    assert_eq!(evaluated.status(), 200, "{db}: the evaluator's pass completes");
    for _ in 0..3 {
        let path = format!("/v1/models/victim/performance?window=1h&windows=1&at={now}");
        let (status, body) = get_json(&t.http, &url, &t.keys.read, &path).await;
        assert_eq!(status, 200, "{db}: {body}");
        let classification = &body["current"]["classification"];
        let classes = classification["classes"].as_array().unwrap();
        assert!(classes.len() <= 256, "{db}: {} classes reported", classes.len());
        assert!(classes.iter().any(|c| c["label"] == telemetry::OTHER_CLASSES), "{db}: the rest are counted as one");
        assert_eq!(classification["n"], CLASSES as u64, "{db}: every label counts");
        assert_eq!(classification["accuracy"]["value"], 0.5, "{db}: accuracy is exact");
        honest.push(t.honest(&format!("honest-read-{}", honest.len())).await);
    }

    // 2. Loss totals at u64::MAX from two sessions: sums stay readable.
    for session in ["s1", "s2"] {
        let mut b = hostile(&format!("loss-{session}"), "victim", Vec::new());
        (b.session, b.dropped, b.unconfirmed) = (session.into(), u64::MAX, u64::MAX);
        let (status, reply) = post_batch(&t.http, &url, &t.keys.ingest, &b, JSON).await;
        assert_eq!(status, 200, "{db}: {reply}");
    }
    let (status, models) = get_json(&t.http, &url, &t.keys.read, "/v1/models").await;
    assert_eq!(status, 200, "{db}: {models}");
    let victim = models["models"].as_array().unwrap().iter().find(|m| m["name"] == "victim").unwrap();
    assert_eq!(victim["dropped"], 2u64 << 40, "{db}: each session's total saturates at 2^40");

    // 3. One batch fanning out over a thousand minutes: the first 60 are taken, the rest named.
    let spread = (0..1000).map(|i| predicted(format!("m{i}"), now - i * 60_000, Output::Value(1.0))).collect();
    let (status, reply) = post_batch(&t.http, &url, &t.keys.ingest, &hostile("minutes", "victim", spread), JSON).await;
    assert_eq!((status, reply["accepted"].as_u64()), (200, Some(60)), "{db}: {reply}");
    let rejected = reply["rejected"].as_array().unwrap();
    assert_eq!(rejected.len(), 940);
    assert!(rejected[0]["reason"].as_str().unwrap().contains("may span 60 distinct minutes"), "{reply}");

    // Times far from the collector's clock: a year back (backfilled windows), a day ahead
    // (next week's alerts planted today).
    let times = [now - 365 * 86_400_000, now + 86_400_000]
        .into_iter()
        .enumerate()
        .map(|(i, timestamp_ms)| predicted(format!("time{i}"), timestamp_ms, Output::Value(1.0)))
        .collect();
    let (status, reply) = post_batch(&t.http, &url, &t.keys.ingest, &hostile("times", "victim", times), JSON).await;
    assert_eq!((status, reply["accepted"].as_u64()), (200, Some(0)), "{db}: {reply}");
    for rejected in reply["rejected"].as_array().unwrap() {
        let reason = rejected["reason"].as_str().unwrap();
        assert!(reason.contains("outside what the collector accepts: from 7d before"), "{reason}");
    }

    // 4. Names that would forge Prometheus lines or break URLs; the reserved class; nested counts.
    let forged = hostile("forged", "victim\"} 1\nsextant_forged{x=\"", vec![]);
    let (status, reply) = post_batch(&t.http, &url, &t.keys.ingest, &forged, JSON).await;
    assert_eq!(status, 400, "{db}: {reply}");
    assert!(reply["error"]["message"].as_str().unwrap().contains("has characters other than"), "{reply}");
    let reserved = vec![
        predicted(
            "o".into(),
            now,
            Output::TopK(vec![ClassScore { label: telemetry::OTHER_CLASSES.into(), score: 1.0 }]),
        ),
        Record::Features(FeatureSummary {
            window_start_ms: now,
            rows: 1,
            features: (0..5000)
                .map(|i| FeatureCounts {
                    name: format!("f{i}"),
                    bins: vec![1],
                    missing: 0,
                    type_mismatch: 0,
                    unseen: 0,
                    out_of_range: 0,
                    samples: Vec::new(),
                })
                .collect(),
            unexpected_fields: Vec::new(),
        }),
    ];
    let (status, reply) =
        post_batch(&t.http, &url, &t.keys.ingest, &hostile("nested", "victim", reserved), MSGPACK).await;
    assert_eq!((status, reply["accepted"].as_u64()), (200, Some(0)), "{db}: {reply}");
    let reasons: Vec<&str> =
        reply["rejected"].as_array().unwrap().iter().map(|r| r["reason"].as_str().unwrap()).collect();
    assert!(reasons[0].contains("reserved") && reasons[1].contains("5000 features in a summary"), "{reasons:?}");

    // 5. Too many records: refused whole, naming the limit, before the records are decoded.
    let flood =
        hostile("flood", "victim", (0..100_001).map(|i| predicted(format!("f{i}"), now, Output::Value(0.0))).collect());
    let (status, reply) = post_batch(&t.http, &url, &t.keys.ingest, &flood, MSGPACK).await;
    assert_eq!(status, 413, "{db}: {reply}");
    assert!(reply["error"]["message"].as_str().unwrap().contains("over the limit of 100000"), "{reply}");

    // 6. A profile whose counts do not fit its bins: every drift read indexed past them.
    let profile = serde_json::json!({"profile_version": 1, "rows": 10, "features": [
        {"name": "x", "missing_rate": 0.0, "kind": {"category": {"categories": ["a"], "counts": [1]}}}]});
    let put = t
        .http
        .put(format!("{url}/v1/models/victim/versions/1/profile"))
        .bearer_auth(&t.keys.admin)
        .json(&profile)
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 400, "{db}");
    let refusal: serde_json::Value = put.json().await.unwrap();
    assert!(refusal["error"]["message"].as_str().unwrap().contains("1 counts for 2 bins"), "{refusal}");
    let (status, body) = get_json(&t.http, &url, &t.keys.read, &format!("/v1/models/victim/drift?at={now}")).await;
    assert_eq!(status, 200, "{db}: {body}");

    // 7. A public app's key, scoped to its own models, writing another model's batches and
    // labelling another model's predictions (`v0…` are `victim`'s, from attack 1).
    let app = create_scoped_key(&t.database, "shop-*");
    let (status, reply) = post_batch(&t.http, &url, &app, &hostile("scoped-victim", "victim", Vec::new()), JSON).await;
    assert_eq!((status, reply["error"]["code"].as_str()), (403, Some("model_not_allowed")), "{db}: {reply}");
    let message = reply["error"]["message"].as_str().unwrap();
    assert!(message.contains("may write models shop-*; this batch is for model \"victim\""), "{message}");
    let own = vec![predicted("shop-p1".into(), now, Output::Class { label: "buy".into(), score: 0.8 })];
    let (status, reply) = post_batch(&t.http, &url, &app, &hostile("scoped-own", "shop-cart", own), JSON).await;
    assert_eq!((status, reply["status"].as_str()), (200, Some("stored")), "{db}: {reply}");
    let label = |id: &str| serde_json::json!({"prediction_id": id, "timestamp_ms": now, "truth": {"class": "fake"}});
    let labels = serde_json::json!({"labels": [label("v0"), label("shop-p1"), label("never-sent")]});
    let response = t.http.post(format!("{url}/v1/labels")).bearer_auth(&app).json(&labels).send().await.unwrap();
    assert_eq!(response.status(), 200, "{db}");
    let reply: serde_json::Value = response.json().await.unwrap();
    assert_eq!(reply["accepted"], 1, "{db}: only the app's own prediction is labelled: {reply}");
    let reasons: Vec<&str> =
        reply["rejected"].as_array().unwrap().iter().map(|r| r["reason"].as_str().unwrap()).collect();
    assert!(reasons[0].contains("is of model \"victim\"; this key may write models shop-*"), "{reasons:?}");
    assert!(reasons[1].contains("is not stored (yet)"), "{reasons:?}");
    let victim_truth = async || {
        let (_, page) = get_json(&t.http, &url, &t.keys.read, "/v1/models/victim/versions/1/predictions?limit=1").await;
        page["items"][0]["truth"]["class"].as_str().map(str::to_owned)
    };
    assert_eq!(victim_truth().await.as_deref(), Some("c0"), "{db}: the victim's label stands");
    // Labels are each model's. Naming the victim's model is refused whole; naming its own, the
    // app's label for `v0` is shop-cart's (ahead of any such prediction), not the victim's.
    let labels_for = |key: &str, upload: serde_json::Value| {
        t.http.post(format!("{url}/v1/labels")).bearer_auth(key).json(&upload).send()
    };
    let response = labels_for(&app, serde_json::json!({"model": "victim", "labels": [label("v0")]})).await.unwrap();
    assert_eq!(response.status(), 403, "{db}");
    let reply: serde_json::Value = response.json().await.unwrap();
    assert_eq!(reply["error"]["code"], "model_not_allowed", "{db}: {reply}");
    let response = labels_for(&app, serde_json::json!({"model": "shop-cart", "labels": [label("v0")]})).await.unwrap();
    let reply: serde_json::Value = response.json().await.unwrap();
    assert_eq!(reply["accepted"], 1, "{db}: {reply}");
    assert_eq!(victim_truth().await.as_deref(), Some("c0"), "{db}: a label of another model with the same id");
    // shop-cart's own `v0` takes the app's label when it comes.
    let own = vec![predicted("v0".into(), now, Output::Class { label: "buy".into(), score: 0.8 })];
    let (status, reply) = post_batch(&t.http, &url, &app, &hostile("scoped-v0", "shop-cart", own), JSON).await;
    assert_eq!((status, reply["status"].as_str()), (200, Some("stored")), "{db}: {reply}");
    let (_, cart) = get_json(&t.http, &url, &t.keys.read, "/v1/models/shop-cart/versions/1/predictions").await;
    let truths: Vec<_> =
        cart["items"].as_array().unwrap().iter().map(|p| (&p["prediction_id"], &p["truth"]["class"])).collect();
    assert!(truths.contains(&(&"v0".into(), &"fake".into())), "{db}: {cart}");
    // `v0` is now stored under two models: a label that names neither is refused.
    let response = labels_for(&t.keys.ingest, serde_json::json!({"labels": [label("v0")]})).await.unwrap();
    let reply: serde_json::Value = response.json().await.unwrap();
    assert_eq!(reply["accepted"], 0, "{db}: {reply}");
    let reason = reply["rejected"][0]["reason"].as_str().unwrap();
    assert!(reason.contains("is stored under models shop-cart, victim: name the one labelled"), "{reason}");
    // Batch ids and sessions are each model version's: the app claiming the id the honest
    // client sends next, in its session with huge loss totals, changes nothing of the honest one's.
    let mut claim = hostile("honest-claimed", "shop-cart", Vec::new());
    (claim.session, claim.dropped) = (batch("x", 0).session, 1 << 30);
    let (status, reply) = post_batch(&t.http, &url, &app, &claim, JSON).await;
    assert_eq!((status, reply["status"].as_str()), (200, Some("stored")), "{db}: {reply}");
    honest.push(t.honest("honest-claimed").await);
    let (_, models) = get_json(&t.http, &url, &t.keys.read, "/v1/models").await;
    let wine = models["models"].as_array().unwrap().iter().find(|m| m["name"] == "wine").unwrap();
    assert_eq!(wine["dropped"], 0, "{db}: the honest session's totals are its own: {models}");
    // An ingest key is scoped unless every model is asked for.
    let unscoped =
        crate::sextant(&["collect", "keys", "create", "--database", &t.database, "--role", "ingest", "--name", "x"]);
    assert_ne!(unscoped.code, 0);
    assert!(unscoped.stderr.contains("`--models NAME[,NAME|PREFIX*…]`, or `--all-models`"), "{}", unscoped.stderr);

    // 9 (before 8, which takes time). Model versions without end from one key: each is walked by
    // every evaluator pass and gauge. The app registered shop-cart already; 255 more, then 403.
    let mut registered = 1;
    let refusal = loop {
        let b = hostile(&format!("versions-{registered}"), "shop-cart", Vec::new());
        let b = Batch { model: ModelRef { version: format!("v{registered}"), ..b.model.clone() }, ..b };
        let (status, reply) = post_batch(&t.http, &url, &app, &b, JSON).await;
        if status != 200 {
            break (status, reply);
        }
        registered += 1;
        assert!(registered <= 256, "{db}: no bound on model versions");
    };
    assert_eq!((registered, refusal.0, refusal.1["error"]["code"].as_str()), (256, 403, Some("model_limit")), "{db}");
    let message = refusal.1["error"]["message"].as_str().unwrap();
    assert!(message.contains("has registered 256 model versions") && message.contains("\"v256\" is new"), "{message}");
    let known = hostile("versions-known", "shop-cart", Vec::new());
    let (status, _) = post_batch(&t.http, &url, &app, &known, JSON).await;
    assert_eq!(status, 200, "{db}: its registered versions are still served");
    honest.push(t.honest("honest-beside-versions").await);

    // 8. Slowloris: connections that never finish their headers, held open to take every
    // connection (and file descriptor) the collector has. Honest clients are served beside them,
    // and the collector closes them at its header timeout (10 s).
    let mut stalled = Vec::new();
    for _ in 0..STALLED {
        let mut s = tokio::net::TcpStream::connect(url.trim_start_matches("http://")).await.unwrap();
        s.write_all(b"POST /v1/batches HTTP/1.1\r\nhost: x\r\nx-slow: ").await.unwrap();
        stalled.push(s);
    }
    let held = Instant::now();
    honest.push(t.honest("honest-beside-stalled").await);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    for s in &mut stalled {
        let mut chunk = [0u8; 256];
        loop {
            let read = tokio::time::timeout_at(deadline, s.read(&mut chunk)).await;
            match read.expect("the collector closes stalled connections") {
                Ok(0) | Err(_) => break,
                Ok(_) => {} // a 408 first
            }
        }
    }
    let after = held.elapsed();
    assert!(after >= Duration::from_secs(9), "{db}: held until the header timeout, not {after:?}");

    // 10. A read flood: 300 reads of a year of daily windows at once, from a read key (a
    // dashboard left open to the world). Each holds one of `max_reads_in_flight` slots while it
    // is answered; the rest wait a moment, then get 503; uploads have slots of their own.
    let path = format!("/v1/models/victim/performance?window=1d&windows=366&at={now}");
    let mut reads = tokio::task::JoinSet::new();
    for _ in 0..STALLED {
        let (http, url, key, path) = (t.http.clone(), url.clone(), t.keys.read.clone(), path.clone());
        reads.spawn(async move {
            // A connection past the accept backlog may be reset: the flood's loss, not a failure.
            let response = http.get(format!("{url}{path}")).bearer_auth(&key).send().await.ok()?;
            let status = response.status().as_u16();
            Some((status, response.json::<serde_json::Value>().await.unwrap_or_default()))
        });
    }
    honest.push(t.honest("honest-beside-reads").await);
    let (mut answered, mut busy, mut reset) = (0, 0, 0);
    while let Some(read) = reads.join_next().await {
        match read.unwrap() {
            Some((200, _)) => answered += 1,
            Some((503, body)) if body["error"]["code"] == "reads_busy" => busy += 1,
            Some((status, body)) => panic!("{db}: a flooded read answered {status}: {body}"),
            None => reset += 1,
        }
    }
    eprintln!("{db}: read flood: {answered} answered, {busy} refused as busy, {reset} connections reset");
    assert!(answered >= 16, "{db}: reads are served through a flood ({answered})");

    honest.push(t.honest("honest-last").await);
    let (status, _) = get_json(&t.http, &url, &t.keys.read, "/v1/models").await;
    assert_eq!(status, 200, "{db}: still serving");
    let peak = t.peak_rss_mib();
    honest.sort();
    eprintln!(
        "{db}: attacks survived; peak RSS {peak} MiB; honest batch latency max {:?} over {} sends",
        honest.last().unwrap(),
        honest.len()
    );
    assert!(peak < 512, "{db}: the collector peaked at {peak} MiB");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_batches_are_bounded_on_sqlite() {
    attacks(sqlite_path("attacks").display().to_string()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_batches_are_bounded_on_postgres() {
    if let Some(url) = postgres_database("attacks").await {
        attacks(url).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_upload_gives_its_slot_back() {
    let db = Database::Sqlite(sqlite_path("stalled"));
    let s = serve(&db, |c| (c.max_in_flight, c.body_timeout_s) = (1, 1)).await;
    // A client that sends its headers and a few bytes of its body, then nothing.
    let mut stalled = tokio::net::TcpStream::connect(s.url.trim_start_matches("http://")).await.unwrap();
    let head = format!(
        "POST /v1/batches HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {}\r\ncontent-type: application/json\r\n\
         content-length: 1000\r\n\r\n{{\"schema",
        s.keys.ingest
    );
    stalled.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        let mut chunk = [0u8; 4096];
        while !String::from_utf8_lossy(&answer).contains("arrive within") {
            match stalled.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("did not arrive within 1 s"), "{answer}");
    // Its slot is free again: the one slot serves an honest client.
    let (status, reply) = post_batch(&s.http, &s.url, &s.keys.ingest, &batch("after-stall", 5), JSON).await;
    assert_eq!(status, 200, "{reply}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_can_be_kept_to_read_keys() {
    let db = Database::Sqlite(sqlite_path("metrics_key"));
    let s = serve(&db, |c| c.metrics_need_key = true).await;
    let scrape = |key: Option<&str>| {
        let request = s.http.get(format!("{}/metrics", s.url));
        match key {
            Some(key) => request.bearer_auth(key),
            None => request,
        }
        .send()
    };
    assert_eq!(scrape(None).await.unwrap().status(), 401);
    assert_eq!(scrape(Some(&s.keys.ingest)).await.unwrap().status(), 403, "a public ingest key cannot scrape");
    let scraped = scrape(Some(&s.keys.read)).await.unwrap();
    assert_eq!(scraped.status(), 200);
    assert!(scraped.text().await.unwrap().contains("sextant_collector_"));
}
