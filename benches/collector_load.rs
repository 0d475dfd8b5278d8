//! Load generator for `sextant collect`: N concurrent clients on loopback post batches of
//! prediction records as fast as the collector accepts them.
//!
//! `cargo bench --bench collector_load -- [--database sqlite|postgres|URL] [--clients N]
//! [--seconds S] [--records R]` (or `cargo xtask bench-collect`, which runs both databases).
//!
//! Prints sustained accepted records/s, latency percentiles, 429s, the collector's peak memory
//! (VmHWM) and the ratio to the goal of 200,000 records/s; then checks that every acknowledged
//! record is stored (zero loss) by reading the collector's own counts back.

#![allow(clippy::unwrap_used)]

use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use telemetry::{
    Batch, Encoding, EngineKind, Format, ModelRef, Output, Prediction, Record, SCHEMA_VERSION, Source, SourceKind,
};
use tokio::io::{AsyncBufReadExt, BufReader};

const GOAL_RECORDS_PER_S: f64 = 200_000.0;
/// Stands for the batch id in the encoded template; every occurrence is replaced per batch.
const PLACEHOLDER: &str = "BATCH-ID-0000000000000000";

struct Args {
    database: String,
    clients: usize,
    seconds: u64,
    records: usize,
}

fn args() -> Args {
    let mut args = Args { database: "sqlite".into(), clients: 8, seconds: 10, records: 500 };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--database" => args.database = value(),
            "--clients" => args.clients = value().parse().unwrap(),
            "--seconds" => args.seconds = value().parse().unwrap(),
            "--records" => args.records = value().parse().unwrap(),
            "--bench" => {}
            other => panic!("unknown flag {other}"),
        }
    }
    args
}

/// A realistic batch: 32-hex prediction ids, a class and score, latency.
fn template(records: usize) -> Vec<u8> {
    let records = (0..records)
        .map(|i| {
            Record::Prediction(Prediction {
                id: format!("{PLACEHOLDER}{i:07}"),
                timestamp_ms: 1_764_000_000_000 + i as i64,
                latency_us: 150 + (i % 97) as u32,
                engine: EngineKind::Cpu,
                output: Output::Class { label: ["setosa", "versicolor", "virginica"][i % 3].into(), score: 0.91 },
            })
        })
        .collect();
    let batch = Batch {
        schema_version: SCHEMA_VERSION,
        batch_id: PLACEHOLDER.into(),
        session: "load".into(),
        source: Source { kind: SourceKind::Edge, node: "load-generator".into(), sdk_version: "0.1.0".into() },
        model: ModelRef { name: "load".into(), version: "1".into(), hash: "sha256:load".into() },
        dropped: 0,
        unconfirmed: 0,
        records,
    };
    telemetry::encode(&batch, Format { encoding: Encoding::MessagePack, gzip: false }).unwrap()
}

/// The template with every placeholder replaced by this batch's id (same length).
fn body_for(template: &[u8], positions: &[usize], seq: u64) -> Vec<u8> {
    let mut body = template.to_vec();
    let id = format!("{:0width$}", seq, width = PLACEHOLDER.len());
    for &p in positions {
        body[p..p + id.len()].copy_from_slice(id.as_bytes());
    }
    body
}

async fn postgres_scratch() -> String {
    let admin =
        std::env::var("SEXTANT_TEST_POSTGRES").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let (client, connection) = tokio_postgres::connect(&admin, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    client.batch_execute("DROP DATABASE IF EXISTS sextant_bench WITH (FORCE)").await.unwrap();
    client.batch_execute("CREATE DATABASE sextant_bench").await.unwrap();
    format!("{}/sextant_bench", admin.rsplit_once('/').unwrap().0)
}

fn peak_rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

#[tokio::main]
async fn main() {
    let args = args();
    let exe = env!("CARGO_BIN_EXE_sextant");
    let database = match args.database.as_str() {
        "sqlite" => {
            let dir = std::env::temp_dir().join(format!("sextant-load-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            dir.join("load.db").display().to_string()
        }
        "postgres" => postgres_scratch().await,
        url => url.to_owned(),
    };
    let key = std::process::Command::new(exe)
        .args(["collect", "keys", "create", "--role", "admin", "--name", "load", "--database", &database])
        .output()
        .unwrap();
    assert!(key.status.success(), "{}", String::from_utf8_lossy(&key.stderr));
    let key = String::from_utf8(key.stdout).unwrap().trim().to_owned();
    let mut collector = tokio::process::Command::new(exe)
        .args(["collect", "--listen", "127.0.0.1:0", "--database", &database])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let pid = collector.id().unwrap();
    let mut lines = BufReader::new(collector.stdout.take().unwrap()).lines();
    let url = loop {
        let line = lines.next_line().await.unwrap().expect("collector exited");
        if let Some(rest) = line.strip_prefix("collector listening on ") {
            break rest.split_whitespace().next().unwrap().to_owned();
        }
    };

    let template = Arc::new(template(args.records));
    let positions: Arc<Vec<usize>> = Arc::new(
        template
            .windows(PLACEHOLDER.len())
            .enumerate()
            .filter(|(_, w)| *w == PLACEHOLDER.as_bytes())
            .map(|(i, _)| i)
            .collect(),
    );
    assert_eq!(positions.len(), args.records + 1);
    println!(
        "collector load: {} ({}), {} clients, batches of {} prediction records ({} bytes MessagePack), {} s",
        args.database,
        url,
        args.clients,
        args.records,
        template.len(),
        args.seconds
    );

    let http = tls::client().unwrap();
    let next_seq = Arc::new(AtomicU64::new(0));
    let accepted_batches = Arc::new(AtomicU64::new(0));
    let throttled = Arc::new(AtomicU64::new(0));
    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let warmup = Duration::from_secs(1);
    let clients: Vec<_> = (0..args.clients)
        .map(|_| {
            let (http, url, key) = (http.clone(), url.clone(), key.clone());
            let (template, positions, next_seq) = (template.clone(), positions.clone(), next_seq.clone());
            let (accepted_batches, throttled, measuring, stop) =
                (accepted_batches.clone(), throttled.clone(), measuring.clone(), stop.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut measured_batches = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let seq = next_seq.fetch_add(1, Ordering::Relaxed);
                    let body = body_for(&template, &positions, seq);
                    loop {
                        let started = Instant::now();
                        let response = http
                            .post(format!("{url}/v1/batches"))
                            .bearer_auth(&key)
                            .header("content-type", "application/msgpack")
                            .body(body.clone())
                            .send()
                            .await
                            .unwrap();
                        let status = response.status();
                        let _ = response.bytes().await;
                        if status == 200 {
                            accepted_batches.fetch_add(1, Ordering::Relaxed);
                            if measuring.load(Ordering::Relaxed) {
                                latencies.push(started.elapsed());
                                measured_batches += 1;
                            }
                            break;
                        }
                        assert!(status == 429 || status == 503, "unexpected {status}");
                        throttled.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
                (latencies, measured_batches)
            })
        })
        .collect();
    tokio::time::sleep(warmup).await;
    measuring.store(true, Ordering::Relaxed);
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(args.seconds)).await;
    measuring.store(false, Ordering::Relaxed);
    let elapsed = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    let mut measured = 0;
    for client in clients {
        let (l, m) = client.await.unwrap();
        latencies.extend(l);
        measured += m;
    }
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 - 1.0) * p).round() as usize].as_secs_f64() * 1e3;
    let rate = (measured * args.records as u64) as f64 / elapsed;
    println!("  accepted:  {rate:>10.0} records/s ({:.0} batches/s)", measured as f64 / elapsed);
    println!("  latency:   p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms", pct(0.5), pct(0.99), pct(1.0));
    println!("  throttled: {} answers 429/503 (retried)", throttled.load(Ordering::Relaxed));
    match peak_rss_mib(pid) {
        Some(mib) => println!("  collector peak memory (VmHWM): {mib:.1} MiB"),
        None => println!("  collector peak memory: not available on this OS"),
    }
    println!("  ratio to the 200k records/s goal: {:.2}", rate / GOAL_RECORDS_PER_S);

    // Zero loss: every acknowledged batch is stored, with all its records.
    let acked = accepted_batches.load(Ordering::Relaxed);
    let models: serde_json::Value = serde_json::from_str(
        &http.get(format!("{url}/v1/models")).bearer_auth(&key).send().await.unwrap().text().await.unwrap(),
    )
    .unwrap();
    let stored_batches = models["models"][0]["batches"].as_u64().unwrap();
    let stored_records = models["models"][0]["predictions"].as_u64().unwrap();
    println!(
        "  stored: {stored_batches} batches, {stored_records} records; acknowledged {acked} batches ({} records)",
        acked * args.records as u64
    );
    assert_eq!(stored_batches, acked, "loss or duplication");
    assert_eq!(stored_records, acked * args.records as u64, "loss or duplication");
    println!("  zero loss: every acknowledged record is stored exactly once");

    // Monitoring reads on the window that holds everything just stored (the worst case: one hour
    // with every record), as the dashboard and the alert evaluator make them.
    let model = models["models"][0]["name"].as_str().unwrap().to_owned();
    let at = 1_764_000_000_000i64;
    for (what, path) in [
        ("performance (1 window)", format!("/v1/models/{model}/performance?window=1h&windows=1&at={at}")),
        ("drift (current + previous)", format!("/v1/models/{model}/drift?window=1h&at={at}")),
        ("alert evaluation (all rules)", format!("/v1/alerts/evaluate?at={at}")),
    ] {
        let started = Instant::now();
        let request = if what.starts_with("alert") {
            http.post(format!("{url}{path}"))
        } else {
            http.get(format!("{url}{path}"))
        };
        let response = request.bearer_auth(&key).send().await.unwrap();
        assert!(response.status().is_success(), "{path}: {}", response.text().await.unwrap());
        println!(
            "  read {what}: {:.1} ms over {stored_records} predictions in the window",
            started.elapsed().as_secs_f64() * 1e3
        );
    }
    collector.start_kill().unwrap();
}
