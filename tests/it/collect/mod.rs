//! The collector against real databases: SQLite files and the PostgreSQL server on this machine.
//!
//! PostgreSQL tests use `SEXTANT_TEST_POSTGRES` (default `postgres://postgres@127.0.0.1:5432/test`)
//! to create a scratch database per test. Without a server they skip loudly, unless
//! `SEXTANT_REQUIRE_POSTGRES` is set (CI sets it), in which case they fail.

mod api;
mod attacks;
pub mod monitoring;
mod process;

use collector::{Collector, Config, Database, Role, Scope, Token};
use std::path::PathBuf;
use telemetry::{
    Batch, EngineKind, Format, Label, ModelRef, Output, Prediction, Record, SCHEMA_VERSION, Source, SourceKind, Truth,
};

/// A fresh, empty database of each kind this machine has, named after the test.
pub async fn databases(test: &str) -> Vec<Database> {
    let mut out = vec![Database::Sqlite(sqlite_path(test))];
    if let Some(url) = postgres_database(test).await {
        out.push(Database::Postgres(url));
    }
    out
}

pub fn sqlite_path(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sextant-collect-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("telemetry.db")
}

/// Creates (or recreates) the scratch database `sextant_it_{test}`; None if there is no server.
pub async fn postgres_database(test: &str) -> Option<String> {
    let admin =
        std::env::var("SEXTANT_TEST_POSTGRES").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let client = match tokio_postgres::connect(&admin, tokio_postgres::NoTls).await {
        Ok((client, connection)) => {
            tokio::spawn(connection);
            client
        }
        Err(e) => {
            assert!(
                std::env::var_os("SEXTANT_REQUIRE_POSTGRES").is_none(),
                "SEXTANT_REQUIRE_POSTGRES is set but PostgreSQL at {admin} is unreachable: {e}"
            );
            eprintln!(
                "\n\n*** SKIPPED: PostgreSQL at {admin} is unreachable ({e}); PostgreSQL checks did not run ***\n\n"
            );
            return None;
        }
    };
    let name = format!("sextant_it_{test}");
    client.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await.unwrap();
    client.batch_execute(&format!("CREATE DATABASE {name}")).await.unwrap();
    let (base, _) = admin.rsplit_once('/').unwrap();
    Some(format!("{base}/{name}"))
}

/// Keys of every role for a test.
#[derive(Debug, Clone)]
pub struct Keys {
    pub ingest: String,
    pub read: String,
    pub admin: String,
}

/// A collector served in this process on a free port.
pub struct Served {
    pub url: String,
    pub keys: Keys,
    pub http: reqwest::Client,
}

pub async fn serve(database: &Database, tune: impl FnOnce(&mut Config)) -> Served {
    let mut config = Config { database: database.clone(), ..Config::default() };
    tune(&mut config);
    let store = collector::open(&config.database, 4).await.unwrap();
    let keys = create_keys(&*store).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let collector = Collector::new(store, config);
    tokio::spawn(collector::serve(collector, listener, std::future::pending()));
    Served { url, keys, http: tls::client().unwrap() }
}

pub async fn create_keys(store: &dyn collector::Store) -> Keys {
    let make = async |role: Role| {
        let token = Token::generate().unwrap();
        store.create_key(format!("test-{}", role.as_str()), role, Scope::All, token.digest()).await.unwrap();
        token.secret().to_owned()
    };
    Keys { ingest: make(Role::Ingest).await, read: make(Role::Read).await, admin: make(Role::Admin).await }
}

pub fn model() -> ModelRef {
    ModelRef { name: "wine".into(), version: "1".into(), hash: "sha256:0123".into() }
}

/// Now, by this machine's clock (the collector's): it takes records from around its now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

/// The time the helpers' records are at: a minute before the first call, the same for the
/// whole test run.
fn records_at_ms() -> i64 {
    static AT: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    *AT.get_or_init(|| now_ms() - 60_000)
}

/// A batch of `n` realistic prediction records.
pub fn batch(batch_id: &str, n: usize) -> Batch {
    let records = (0..n)
        .map(|i| {
            Record::Prediction(Prediction {
                id: format!("{batch_id}/{i:04}"),
                timestamp_ms: records_at_ms() + i as i64,
                latency_us: 180 + (i % 50) as u32,
                engine: EngineKind::Cpu,
                output: Output::Class { label: format!("class_{}", i % 3), score: 0.5 + (i % 10) as f32 / 20.0 },
            })
        })
        .collect();
    Batch {
        schema_version: SCHEMA_VERSION,
        batch_id: batch_id.to_owned(),
        session: "session-1".into(),
        source: Source { kind: SourceKind::Native, node: "test".into(), sdk_version: "0.1.0".into() },
        model: model(),
        dropped: 0,
        unconfirmed: 0,
        records,
    }
}

pub fn label(prediction_id: &str, class: &str) -> Label {
    Label {
        prediction_id: prediction_id.to_owned(),
        timestamp_ms: records_at_ms() + 100_000,
        truth: Truth::Class(class.into()),
    }
}

/// Posts an encoded body to `/v1/batches`; returns the status, `Retry-After` and JSON body.
pub async fn post_body(
    http: &reqwest::Client,
    url: &str,
    key: Option<&str>,
    format: Format,
    body: Vec<u8>,
) -> (u16, Option<String>, serde_json::Value) {
    let mut request =
        http.post(format!("{url}/v1/batches")).header("content-type", format.encoding.content_type()).body(body);
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    if format.gzip {
        request = request.header("content-encoding", "gzip");
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let retry_after = response.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
    let text = response.text().await.unwrap();
    (status, retry_after, serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)))
}

pub async fn post_batch(
    http: &reqwest::Client,
    url: &str,
    key: &str,
    batch: &Batch,
    format: Format,
) -> (u16, serde_json::Value) {
    let (status, _, body) = post_body(http, url, Some(key), format, telemetry::encode(batch, format).unwrap()).await;
    (status, body)
}

/// GETs a read endpoint as JSON.
pub async fn get_json(http: &reqwest::Client, url: &str, key: &str, path: &str) -> (u16, serde_json::Value) {
    let response = http.get(format!("{url}{path}")).bearer_auth(key).send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)))
}

/// Every stored batch id, paging through `/v1/batches`.
pub async fn stored_batch_ids(http: &reqwest::Client, url: &str, key: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut after = 0;
    loop {
        let (status, page) = get_json(http, url, key, &format!("/v1/batches?after={after}&limit=1000")).await;
        assert_eq!(status, 200, "{page}");
        for item in page["items"].as_array().unwrap() {
            ids.push(item["batch_id"].as_str().unwrap().to_owned());
        }
        match page["next_after"].as_i64() {
            Some(next) => after = next,
            None => return ids,
        }
    }
}

/// The stored prediction count for the test model.
pub async fn stored_predictions(http: &reqwest::Client, url: &str, key: &str) -> i64 {
    let (status, body) = get_json(http, url, key, "/v1/models").await;
    assert_eq!(status, 200, "{body}");
    body["models"].as_array().unwrap().iter().map(|m| m["predictions"].as_i64().unwrap()).sum()
}

pub const MSGPACK: Format = Format { encoding: telemetry::Encoding::MessagePack, gzip: false };
pub const JSON: Format = Format { encoding: telemetry::Encoding::Json, gzip: false };
