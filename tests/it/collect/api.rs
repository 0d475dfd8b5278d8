//! The HTTP API of an in-process collector, on SQLite and on PostgreSQL.

use std::io::Write;

use telemetry::{Encoding, Format, Record};

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_round_trip_in_every_format_and_are_stored_once() {
    for db in databases("round_trip").await {
        let s = serve(&db, |_| {}).await;
        let formats = [
            Format { encoding: Encoding::Json, gzip: false },
            Format { encoding: Encoding::Json, gzip: true },
            Format { encoding: Encoding::MessagePack, gzip: false },
            Format { encoding: Encoding::MessagePack, gzip: true },
        ];
        for (i, format) in formats.into_iter().enumerate() {
            let mut b = batch(&format!("b{i}"), 20);
            b.records.push(Record::Label(label(&format!("b{i}/0001"), "class_1")));
            b.records.push(Record::Error(telemetry::ErrorRecord {
                timestamp_ms: now_ms(),
                kind: telemetry::ErrorKind::RejectedInput,
                message: "input 0: expected f32, got i64".into(),
            }));
            let (status, reply) = post_batch(&s.http, &s.url, &s.keys.ingest, &b, format).await;
            assert_eq!(status, 200, "{db:?} {format:?}: {reply}");
            assert_eq!(reply["status"], "stored");
            assert_eq!(reply["accepted"], 22);
            // The retry of a batch whose answer was lost: acknowledged, not stored again.
            let (status, reply) = post_batch(&s.http, &s.url, &s.keys.ingest, &b, format).await;
            assert_eq!((status, reply["status"].as_str()), (200, Some("duplicate")), "{db:?}");
        }
        assert_eq!(stored_batch_ids(&s.http, &s.url, &s.keys.read).await, ["b0", "b1", "b2", "b3"]);
        assert_eq!(stored_predictions(&s.http, &s.url, &s.keys.read).await, 80);

        // What went in comes out: outputs, the joined label, the error.
        let (status, page) =
            get_json(&s.http, &s.url, &s.keys.read, "/v1/models/wine/versions/1/predictions?limit=3").await;
        assert_eq!(status, 200);
        let items = page["items"].as_array().unwrap();
        assert_eq!(items.len(), 3);
        assert_eq!(items[1]["prediction_id"], "b0/0001");
        assert_eq!(items[1]["output"]["class"]["label"], "class_1");
        assert_eq!(items[1]["latency_us"], 181);
        assert_eq!(items[1]["truth"]["class"], "class_1");
        assert!(items[0]["truth"].is_null());
        let next = page["next_after"].as_i64().unwrap();
        let (_, rest) = get_json(
            &s.http,
            &s.url,
            &s.keys.read,
            &format!("/v1/models/wine/versions/1/predictions?after={next}&limit=1000"),
        )
        .await;
        assert_eq!(rest["items"].as_array().unwrap().len(), 77);
        assert!(rest["next_after"].is_null());
        let (_, errors) = get_json(&s.http, &s.url, &s.keys.read, "/v1/models/wine/versions/1/errors").await;
        assert_eq!(errors["items"].as_array().unwrap().len(), 4);
        assert_eq!(errors["items"][0]["kind"], "rejected_input");
    }
}

/// `navigator.sendBeacon` sets no headers: the key and the encoding ride in the query, and the
/// body carries no Content-Type. Same idempotency as `/v1/batches`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beacons_carry_the_key_in_the_query_and_are_stored_once() {
    let s = serve(&Database::Sqlite(sqlite_path("beacon")), |_| {}).await;
    let beacon = async |query: &str, body: Vec<u8>| {
        let response = s.http.post(format!("{}/v1/beacon?{query}", s.url)).body(body).send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json::<serde_json::Value>().await.unwrap())
    };
    let b = batch("beacon-1", 5);
    let msgpack = telemetry::encode(&b, MSGPACK).unwrap();
    let key = &s.keys.ingest;
    let (status, reply) = beacon(&format!("key={key}&encoding=msgpack"), msgpack.clone()).await;
    assert_eq!((status, reply["status"].as_str()), (200, Some("stored")), "{reply}");
    let (status, reply) = beacon(&format!("key={key}"), msgpack.clone()).await;
    assert_eq!((status, reply["status"].as_str()), (200, Some("duplicate")), "msgpack is the default: {reply}");
    let json = telemetry::encode(&batch("beacon-2", 3), JSON).unwrap();
    let (status, reply) = beacon(&format!("key={key}&encoding=json"), json).await;
    assert_eq!((status, reply["accepted"].as_u64()), (200, Some(3)), "{reply}");

    let (status, reply) = beacon("encoding=msgpack", msgpack.clone()).await;
    assert_eq!((status, reply["error"]["code"].as_str()), (401, Some("missing_key")), "{reply}");
    let (status, reply) = beacon(&format!("key={}", s.keys.read), msgpack.clone()).await;
    assert_eq!((status, reply["error"]["code"].as_str()), (403, Some("wrong_role")), "{reply}");
    let (status, reply) = beacon(&format!("key={key}&encoding=xml"), msgpack).await;
    assert_eq!((status, reply["error"]["code"].as_str()), (415, Some("unsupported_content_type")), "{reply}");
    assert_eq!(stored_predictions(&s.http, &s.url, &s.keys.read).await, 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_records_are_named_and_the_valid_ones_stored() {
    for db in databases("partial").await {
        let s = serve(&db, |_| {}).await;
        let mut b = batch("partial", 5);
        if let Record::Prediction(p) = &mut b.records[1] {
            p.output = telemetry::Output::Value(f64::NAN);
        }
        if let Record::Prediction(p) = &mut b.records[3] {
            p.id.clear();
        }
        // JSON cannot carry NaN: MessagePack can, and a client must not be able to store it.
        let (status, reply) = post_batch(&s.http, &s.url, &s.keys.ingest, &b, MSGPACK).await;
        assert_eq!(status, 200, "{reply}");
        assert_eq!(reply["accepted"], 3);
        let rejected = reply["rejected"].as_array().unwrap();
        assert_eq!(rejected.len(), 2);
        assert_eq!(rejected[0]["index"], 1);
        assert!(rejected[0]["reason"].as_str().unwrap().contains("not finite"), "{reply}");
        assert_eq!(rejected[1]["index"], 3);
        assert!(rejected[1]["reason"].as_str().unwrap().contains("prediction id is empty"), "{reply}");
        assert_eq!(stored_predictions(&s.http, &s.url, &s.keys.read).await, 3);
        let metrics = s.http.get(format!("{}/metrics", s.url)).send().await.unwrap().text().await.unwrap();
        assert!(metrics.contains(r#"sextant_collector_rejected_records_total{reason="invalid"} 2"#), "{metrics}");
        assert!(metrics.contains(r#"sextant_collector_records_total{kind="prediction"} 3"#), "{metrics}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_bodies_get_a_4xx_and_store_nothing() {
    for db in databases("hostile").await {
        let s = serve(&db, |c| {
            c.max_body_bytes = 256 << 10;
            c.max_decoded_bytes = 1 << 20;
        })
        .await;
        let key = Some(s.keys.ingest.as_str());
        let good = telemetry::encode(&batch("t", 3), MSGPACK).unwrap();
        // Every truncation of a valid body.
        for len in 0..good.len() {
            let (status, _, reply) = post_body(&s.http, &s.url, key, MSGPACK, good[..len].to_vec()).await;
            assert_eq!(status, 400, "{db:?}: truncated to {len} bytes: {reply}");
            assert_eq!(reply["error"]["code"], "malformed_batch", "{reply}");
        }
        let cases: Vec<(&str, Format, Vec<u8>, u16, &str)> = vec![
            (
                "garbage",
                MSGPACK,
                (0..4096u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect(),
                400,
                "malformed_batch",
            ),
            ("deep nesting", JSON, "[".repeat(100_000).into_bytes(), 400, "malformed_batch"),
            ("deep nesting", MSGPACK, vec![0x91; 100_000], 400, "malformed_batch"),
            ("oversize", JSON, vec![b' '; 300 << 10], 413, "body_too_large"),
            (
                "gzip bomb",
                Format { encoding: Encoding::Json, gzip: true },
                gzip(&vec![b' '; 64 << 20]),
                413,
                "too_large",
            ),
            ("not gzip", Format { encoding: Encoding::Json, gzip: true }, b"{}".to_vec(), 400, "bad_gzip"),
            (
                "wrong version",
                JSON,
                serde_json::to_vec(&serde_json::json!({"schema_version": 99, "batch_id": "x", "records": []})).unwrap(),
                400,
                "unsupported_schema_version",
            ),
            ("empty batch id", JSON, telemetry::encode(&batch("", 1), JSON).unwrap(), 400, "malformed_batch"),
        ];
        for (what, format, body, expected, code) in cases {
            let (status, _, reply) = post_body(&s.http, &s.url, key, format, body).await;
            assert_eq!((status, reply["error"]["code"].as_str()), (expected, Some(code)), "{db:?} {what}: {reply}");
            assert!(!reply["error"]["message"].as_str().unwrap().is_empty());
        }
        let wrong_type = s
            .http
            .post(format!("{}/v1/batches", s.url))
            .bearer_auth(&s.keys.ingest)
            .header("content-type", "text/plain")
            .body(good.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(wrong_type.status(), 415);

        // Keys: none, unknown, and the wrong role.
        let (status, _, reply) = post_body(&s.http, &s.url, None, MSGPACK, good.clone()).await;
        assert_eq!((status, reply["error"]["code"].as_str()), (401, Some("missing_key")));
        let (status, _, _) = post_body(&s.http, &s.url, Some("sxt_not_a_key"), MSGPACK, good.clone()).await;
        assert_eq!(status, 401);
        let (status, _, reply) = post_body(&s.http, &s.url, Some(&s.keys.read), MSGPACK, good.clone()).await;
        assert_eq!((status, reply["error"]["code"].as_str()), (403, Some("wrong_role")));
        let (status, _) = get_json(&s.http, &s.url, &s.keys.ingest, "/v1/models").await;
        assert_eq!(status, 403);

        assert!(stored_batch_ids(&s.http, &s.url, &s.keys.read).await.is_empty(), "{db:?}: something was stored");
        // The admin key does everything, including ingest.
        let (status, _, _) = post_body(&s.http, &s.url, Some(&s.keys.admin), MSGPACK, good).await;
        assert_eq!(status, 200);
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn labels_profiles_and_losses() {
    for db in databases("labels").await {
        let s = serve(&db, |_| {}).await;
        let mut b = batch("with-losses", 4);
        b.dropped = 7;
        b.unconfirmed = 2;
        post_batch(&s.http, &s.url, &s.keys.ingest, &b, MSGPACK).await;
        // A later batch of the same session with smaller totals (sent out of order) lowers nothing.
        let mut older = batch("older", 1);
        older.dropped = 3;
        post_batch(&s.http, &s.url, &s.keys.ingest, &older, MSGPACK).await;

        // Labels from another client, one of them corrected later, one invalid.
        let upload = serde_json::json!({"labels": [
            label("with-losses/0000", "class_2"),
            label("with-losses/0001", "class_0"),
            label("with-losses/0000", "class_0"),
            {"prediction_id": "", "timestamp_ms": 1, "truth": {"class": "x"}},
        ]});
        let response = s
            .http
            .post(format!("{}/v1/labels", s.url))
            .bearer_auth(&s.keys.ingest)
            .header("content-type", "application/json")
            .body(upload.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let reply: serde_json::Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
        assert_eq!(reply["accepted"], 3);
        assert_eq!(reply["rejected"][0]["index"], 3);
        let (_, page) = get_json(&s.http, &s.url, &s.keys.read, "/v1/models/wine/versions/1/predictions").await;
        let truths: Vec<_> = page["items"].as_array().unwrap().iter().map(|p| p["truth"].clone()).collect();
        assert_eq!(truths[0]["class"], "class_0", "the later label wins: {page}");
        assert_eq!(truths[1]["class"], "class_0");
        assert!(truths[2].is_null());

        let (_, models) = get_json(&s.http, &s.url, &s.keys.read, "/v1/models").await;
        let m = &models["models"][0];
        assert_eq!((m["dropped"].as_i64(), m["unconfirmed"].as_i64()), (Some(7), Some(2)), "{models}");
        assert_eq!((m["batches"].as_i64(), m["sessions"].as_i64()), (Some(2), Some(1)));
        assert_eq!(m["has_profile"], false);

        // Profiles: admin uploads, deployments fetch with their ingest key.
        let profile_path = format!("{}/v1/models/wine/versions/1/profile", s.url);
        let (status, _) = get_json(&s.http, &s.url, &s.keys.ingest, "/v1/models/wine/versions/1/profile").await;
        assert_eq!(status, 404);
        let profile_file = sqlite_path("labels-profile").with_file_name("profile.json");
        let built = crate::sextant(&[
            "profile",
            "build",
            crate::test_data().join("datasets/wine.csv").to_str().unwrap(),
            "--target",
            "class",
            "--out",
            profile_file.to_str().unwrap(),
        ]);
        assert_eq!(built.code, 0, "{}", built.stderr);
        let body = std::fs::read(&profile_file).unwrap();
        let put = |key: &str| s.http.put(&profile_path).bearer_auth(key.to_owned()).body(body.clone()).send();
        assert_eq!(put(&s.keys.ingest).await.unwrap().status(), 403);
        assert_eq!(put(&s.keys.admin).await.unwrap().status(), 204);
        let bad = s.http.put(&profile_path).bearer_auth(&s.keys.admin).body("{\"not\": 1}").send().await.unwrap();
        assert_eq!(bad.status(), 400);
        let (status, fetched) = get_json(&s.http, &s.url, &s.keys.ingest, "/v1/models/wine/versions/1/profile").await;
        assert_eq!(status, 200);
        let original: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(fetched, original);
        let (status, _) = get_json(&s.http, &s.url, &s.keys.read, "/v1/models/wine/versions/1/profile").await;
        assert_eq!(status, 200, "dashboards read profiles with their read key");
        let metrics = s.http.get(format!("{}/metrics", s.url)).send().await.unwrap().text().await.unwrap();
        assert!(
            metrics.contains(r#"sextant_collector_refused_requests_total{reason="forbidden"} 1"#),
            "only the ingest-key PUT was forbidden: {metrics}"
        );
        let (_, models) = get_json(&s.http, &s.url, &s.keys.read, "/v1/models").await;
        assert_eq!(models["models"][0]["has_profile"], true);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saturated_collector_answers_429_with_retry_after() {
    let db = Database::Sqlite(sqlite_path("saturated"));
    let s = serve(&db, |c| {
        c.max_in_flight = 1;
        c.retry_after_s = 3;
    })
    .await;
    // A client that sends its headers and then stalls holds the one slot.
    let address = s.url.trim_start_matches("http://").to_owned();
    let mut stalled = tokio::net::TcpStream::connect(&address).await.unwrap();
    let head = format!(
        "POST /v1/batches HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{",
        s.keys.ingest
    );
    tokio::io::AsyncWriteExt::write_all(&mut stalled, head.as_bytes()).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let body = telemetry::encode(&batch("while-busy", 2), JSON).unwrap();
    let (status, retry_after, reply) = post_body(&s.http, &s.url, Some(&s.keys.ingest), JSON, body.clone()).await;
    assert_eq!((status, retry_after.as_deref()), (429, Some("3")), "{reply}");
    assert_eq!(reply["error"]["code"], "overloaded");
    drop(stalled);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let (status, _, reply) = post_body(&s.http, &s.url, Some(&s.keys.ingest), JSON, body).await;
    assert_eq!(status, 200, "the slot is free again once the stalled client leaves: {reply}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browsers_may_send_only_from_configured_origins() {
    let db = Database::Sqlite(sqlite_path("cors"));
    let s = serve(&db, |c| c.cors_origins = vec!["https://app.example.com".into()]).await;
    let preflight = |origin: &'static str| {
        s.http
            .request(reqwest::Method::OPTIONS, format!("{}/v1/batches", s.url))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "authorization,content-type")
            .send()
    };
    let allowed = preflight("https://app.example.com").await.unwrap();
    assert_eq!(allowed.headers().get("access-control-allow-origin").unwrap(), "https://app.example.com");
    let refused = preflight("https://evil.example.net").await.unwrap();
    assert!(refused.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_native_shipper_delivers_every_record_once() {
    for db in databases("shipper").await {
        let s = serve(&db, |_| {}).await;
        let config = telemetry::BatcherConfig { max_records: 100, ..Default::default() };
        let batcher = telemetry::Batcher::new(
            config,
            Source { kind: SourceKind::Native, node: "shipper-test".into(), sdk_version: "0.1.0".into() },
            model(),
            "shipper-session",
        );
        let shipper = telemetry_client::Shipper::spawn(
            batcher,
            telemetry_client::HttpTransport::new(&s.url, &s.keys.ingest).unwrap(),
        );
        for record in batch("shipped", 1050).records {
            shipper.push(record).unwrap();
        }
        let stats = shipper.close(std::time::Duration::from_secs(20)).await;
        assert_eq!((stats.batches_sealed, stats.batches_delivered), (11, 11), "{stats:?}");
        assert_eq!(stored_predictions(&s.http, &s.url, &s.keys.read).await, 1050, "{db:?}");
    }
}

/// The edge host's outage story: a collector that is down, a process that restarts (twice) while
/// it is, and then every record arrives once, from the spool, with the original batch ids.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spooled_telemetry_survives_an_outage_and_restarts() {
    let s = serve(&Database::Sqlite(sqlite_path("spool")), |_| {}).await;
    let spool = std::env::temp_dir().join(format!("sextant-spool-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&spool);
    let down = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let start = |session: &str, url: &str| {
        let batcher = telemetry::Batcher::new(
            telemetry::BatcherConfig { max_records: 100, ..Default::default() },
            Source { kind: SourceKind::Edge, node: "gw-1".into(), sdk_version: "0.1.0".into() },
            model(),
            session,
        );
        telemetry_client::Shipper::spawn_spooled(
            batcher,
            telemetry_client::HttpTransport::new(url, &s.keys.ingest).unwrap(),
            &spool,
        )
        .unwrap()
    };
    let spooled_files = || {
        std::fs::read_dir(&spool)
            .unwrap()
            .filter(|e| e.as_ref().unwrap().path().extension().unwrap() == "batch")
            .count()
    };

    let first = start("run-1", &down);
    for record in batch("spooled-1", 450).records {
        first.push(record).unwrap();
    }
    assert_eq!(first.close(std::time::Duration::from_millis(300)).await.batches_delivered, 0);
    assert_eq!(spooled_files(), 5, "four full batches and the sealed rest");

    // Restarted, still down: the spool is read back and grows.
    let second = start("run-2", &down);
    assert_eq!(second.spooled(), 5);
    for record in batch("spooled-2", 50).records {
        second.push(record).unwrap();
    }
    second.close(std::time::Duration::from_millis(300)).await;
    assert_eq!(spooled_files(), 6);

    // Restarted with the collector reachable: everything goes, once, and the spool empties.
    let third = start("run-3", &s.url);
    assert!(third.flush(std::time::Duration::from_secs(20)).await, "the spool drains");
    assert_eq!(third.spooled(), 0);
    assert_eq!(spooled_files(), 0);
    third.close(std::time::Duration::from_secs(1)).await;
    assert_eq!(stored_predictions(&s.http, &s.url, &s.keys.read).await, 500);
    let ids = stored_batch_ids(&s.http, &s.url, &s.keys.read).await;
    assert_eq!(ids.len(), 6, "{ids:?}");
    assert!(ids.iter().take(5).all(|id| id.starts_with("run-1-")) && ids[5] == "run-2-0", "in order: {ids:?}");
}

/// A spool past its bytes bound drops its oldest batches, keeps on disk exactly what it holds,
/// and the next batch tells the collector how many records were lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_spool_drops_its_oldest_batches_and_reports_them() {
    let s = serve(&Database::Sqlite(sqlite_path("spool-bound")), |_| {}).await;
    let spool = std::env::temp_dir().join(format!("sextant-spool-bound-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&spool);
    let down = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let one_batch = telemetry::encode(&batch("size", 100), MSGPACK).unwrap().len();
    let start = |session: &str, url: &str| {
        let config = telemetry::BatcherConfig {
            max_records: 100,
            max_outbox: usize::MAX,
            max_outbox_bytes: one_batch * 3,
            ..Default::default()
        };
        let source = Source { kind: SourceKind::Edge, node: "gw-1".into(), sdk_version: "0.1.0".into() };
        let batcher = telemetry::Batcher::new(config, source, model(), session);
        let transport = telemetry_client::HttpTransport::new(url, &s.keys.ingest).unwrap();
        telemetry_client::Shipper::spawn_spooled(batcher, transport, &spool).unwrap()
    };
    let spooled_bytes = || -> Vec<u64> {
        std::fs::read_dir(&spool)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().unwrap() == "batch")
            .map(|p| std::fs::metadata(p).unwrap().len())
            .collect()
    };

    let first = start("bounded-1", &down);
    for record in batch("bounded", 1000).records {
        first.push(record).unwrap();
    }
    let stats = first.close(std::time::Duration::from_millis(300)).await;
    let kept = spooled_bytes();
    assert_eq!((stats.batches_sealed, kept.len() as u64 + stats.batches_evicted), (10, 10), "{stats:?}");
    assert!((2..=3).contains(&kept.len()), "three batches' bytes hold two or three: {kept:?}");
    assert!(kept.iter().sum::<u64>() < (one_batch * 3 + 256 * kept.len()) as u64, "{kept:?}");

    let second = start("bounded-2", &s.url);
    assert!(second.flush(std::time::Duration::from_secs(20)).await, "the spool drains");
    second.close(std::time::Duration::from_secs(5)).await;
    let stored = stored_predictions(&s.http, &s.url, &s.keys.read).await;
    assert_eq!(stored, 100 * kept.len() as i64, "the batches kept arrive");
    let (_, models) = get_json(&s.http, &s.url, &s.keys.read, "/v1/models").await;
    let lost: i64 = models["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["dropped"].as_i64().unwrap() + m["unconfirmed"].as_i64().unwrap())
        .sum();
    // (A batch tried against the down collector before it was evicted counts as unconfirmed.)
    assert_eq!(lost, 1000 - stored, "every record is stored or counted, dropped or unconfirmed: {models}");
}
