//! The `sextant collect` process: killed mid-stream, and two of them sharing one database.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};

use super::*;

const RECORDS: usize = 50;

/// A running `sextant collect`, killed when dropped.
pub(super) struct Process {
    pub(super) child: tokio::process::Child,
    pub(super) url: String,
    /// What it printed before it listened.
    banner: Vec<String>,
}

pub(super) async fn start(database: &str) -> Process {
    start_with(&["--database", database]).await
}

async fn start_with(args: &[&str]) -> Process {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_sextant"))
        .args(["collect", "--listen", "127.0.0.1:0"])
        .args(args)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut banner = Vec::new();
    let url = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(rest) = line.strip_prefix("collector listening on ") {
                return rest.split_whitespace().next().unwrap().to_owned();
            }
            banner.push(line);
        }
        panic!("the collector exited before listening");
    })
    .await
    .expect("the collector starts within a minute");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Process { child, url, banner }
}

/// `sextant collect keys create`: the token it prints.
pub(super) fn create_key(database: &str, role: &str) -> String {
    let mut args = vec!["collect", "keys", "create", "--database", database, "--role", role, "--name", "it"];
    if role == "ingest" {
        args.push("--all-models");
    }
    let run = crate::sextant(&args);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let token = run.stdout.trim().to_owned();
    assert!(token.starts_with("sxt_") && token.len() == 68, "{token}");
    token
}

/// `sextant collect keys create --role ingest --models …`: a key for those models only.
pub(super) fn create_scoped_key(database: &str, models: &str) -> String {
    let run = crate::sextant(&[
        "collect",
        "keys",
        "create",
        "--database",
        database,
        "--role",
        "ingest",
        "--name",
        "app",
        "--models",
        models,
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains(&format!("models {models}")), "{}", run.stderr);
    run.stdout.trim().to_owned()
}

/// Streams batches from four clients until the collector stops answering; returns (attempted, acknowledged).
async fn stream_until_killed(url: &str, key: &str, process: &mut Process) -> (Vec<String>, Vec<String>) {
    let attempted = Arc::new(Mutex::new(Vec::new()));
    let acked = Arc::new(Mutex::new(Vec::new()));
    let http = tls::http_client().unwrap().timeout(Duration::from_secs(10)).build().unwrap();
    let clients: Vec<_> = (0..4)
        .map(|client| {
            let (attempted, acked, http, url, key) =
                (attempted.clone(), acked.clone(), http.clone(), url.to_owned(), key.to_owned());
            tokio::spawn(async move {
                for i in 0.. {
                    let id = format!("c{client}-{i}");
                    attempted.lock().unwrap().push(id.clone());
                    let body = telemetry::encode(&batch(&id, RECORDS), MSGPACK).unwrap();
                    let sent = http
                        .post(format!("{url}/v1/batches"))
                        .bearer_auth(&key)
                        .header("content-type", "application/msgpack")
                        .body(body)
                        .send()
                        .await;
                    match sent {
                        Ok(response) if response.status() == 200 => acked.lock().unwrap().push(id),
                        Ok(response) => panic!("unexpected {}", response.status()),
                        Err(_) => return,
                    }
                }
            })
        })
        .collect();
    while acked.lock().unwrap().len() < 60 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    process.child.start_kill().unwrap(); // SIGKILL: no shutdown code runs
    process.child.wait().await.unwrap();
    for client in clients {
        client.await.unwrap();
    }
    let attempted = attempted.lock().unwrap().clone();
    let acked = acked.lock().unwrap().clone();
    (attempted, acked)
}

async fn survives_sigkill(database: String) {
    let ingest = create_key(&database, "ingest");
    let read = create_key(&database, "read");
    let mut first = start(&database).await;
    let url = first.url.clone();
    let (attempted, acked) = stream_until_killed(&url, &ingest, &mut first).await;

    let second = start(&database).await;
    let http = tls::client().unwrap();
    let stored = stored_batch_ids(&http, &second.url, &read).await;
    let unique: std::collections::HashSet<_> = stored.iter().collect();
    assert_eq!(unique.len(), stored.len(), "{database}: a batch is stored twice");
    for id in &acked {
        assert!(unique.contains(id), "{database}: batch {id} was acknowledged but is not stored");
    }
    assert_eq!(
        stored_predictions(&http, &second.url, &read).await,
        (stored.len() * RECORDS) as i64,
        "{database}: a batch is stored in part"
    );
    // Every client retries what it never heard back about: each batch ends up stored once.
    for id in &attempted {
        let (status, reply) = post_batch(&http, &second.url, &ingest, &batch(id, RECORDS), MSGPACK).await;
        assert_eq!(status, 200, "{reply}");
        let expected = if unique.contains(id) { "duplicate" } else { "stored" };
        assert_eq!(reply["status"], expected, "{id}");
    }
    assert_eq!(stored_batch_ids(&http, &second.url, &read).await.len(), attempted.len());
    assert_eq!(stored_predictions(&http, &second.url, &read).await, (attempted.len() * RECORDS) as i64);
    eprintln!(
        "{database}: {} batches acknowledged before SIGKILL, {} attempted; all stored once",
        acked.len(),
        attempted.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_batches_survive_sigkill_on_sqlite() {
    survives_sigkill(sqlite_path("sigkill").display().to_string()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_batches_survive_sigkill_on_postgres() {
    if let Some(url) = postgres_database("sigkill").await {
        survives_sigkill(url).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_collectors_on_one_postgres_store_each_batch_once() {
    let Some(database) = postgres_database("two_collectors").await else { return };
    let ingest = create_key(&database, "ingest");
    let read = create_key(&database, "read");
    let (a, b) = tokio::join!(start(&database), start(&database));
    let http = tls::client().unwrap();
    // Each batch goes to both at once; ten batches at a time (a client that floods gets 429s).
    let mut outcomes = std::collections::HashMap::<String, usize>::new();
    for wave in 0..10 {
        let mut sends = Vec::new();
        for i in wave * 10..(wave + 1) * 10 {
            for url in [a.url.clone(), b.url.clone()] {
                let (http, ingest) = (http.clone(), ingest.clone());
                sends.push(tokio::spawn(async move {
                    let b = batch(&format!("same-{i}"), RECORDS);
                    let (status, reply) = post_batch(&http, &url, &ingest, &b, MSGPACK).await;
                    assert_eq!(status, 200, "{reply}");
                    reply["status"].as_str().unwrap().to_owned()
                }));
            }
        }
        for send in sends {
            *outcomes.entry(send.await.unwrap()).or_default() += 1;
        }
    }
    assert_eq!(outcomes.get("stored"), Some(&100), "{outcomes:?}");
    assert_eq!(outcomes.get("duplicate"), Some(&100), "{outcomes:?}");
    assert_eq!(stored_batch_ids(&http, &a.url, &read).await.len(), 100);
    assert_eq!(stored_predictions(&http, &b.url, &read).await, (100 * RECORDS) as i64);
}

#[test]
fn keys_are_listed_without_secrets_and_revoked() {
    let database = sqlite_path("keys").display().to_string();
    let token = create_key(&database, "ingest");
    let list = crate::sextant(&["collect", "keys", "list", "--database", &database]);
    assert!(list.stdout.contains("ingest") && list.stdout.contains("live"), "{}", list.stdout);
    assert!(!list.stdout.contains(&token[4..]), "a token leaked into `keys list`");
    let revoke = crate::sextant(&["collect", "keys", "revoke", "1", "--database", &database]);
    assert_eq!(revoke.code, 0, "{}", revoke.stderr);
    let list = crate::sextant(&["collect", "keys", "list", "--database", &database]);
    assert!(list.stdout.contains("revoked"), "{}", list.stdout);
    let again = crate::sextant(&["collect", "keys", "revoke", "1", "--database", &database]);
    assert!(again.code != 0 && again.stderr.contains("no live key with id 1"), "{}", again.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_collector_runs_from_a_config_file_with_bootstrap_keys() {
    let database = sqlite_path("bootstrap");
    let config = database.with_file_name("collector.toml");
    let keys_file = database.with_file_name("keys.txt");
    std::fs::write(
        &config,
        format!(
            "database = {:?}\nbootstrap_keys_file = {:?}\ncors_origins = [\"https://app.example.com\"]\n",
            database.display().to_string(),
            keys_file.display().to_string()
        ),
    )
    .unwrap();
    let process = start_with(&["--config", config.to_str().unwrap()]).await;
    assert!(
        process.banner.iter().any(|l| l.contains("their tokens are in") && l.contains("keys.txt")),
        "{:?}",
        process.banner
    );
    assert!(!process.banner.iter().any(|l| l.contains("sxt_")), "no token in the log: {:?}", process.banner);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&keys_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the key file is the owner's alone");
    }
    let tokens = std::fs::read_to_string(&keys_file).unwrap();
    let key = |role: &str| {
        let prefix = format!("{role:<6} key: ");
        let line = tokens.lines().find_map(|l| l.trim().strip_prefix(&prefix)).unwrap_or_else(|| {
            panic!("no {role} key in {tokens:?}");
        });
        line.to_owned()
    };
    assert!(key("admin").starts_with("sxt_"));
    let (ingest, read) = (key("ingest"), key("read"));
    let http = tls::client().unwrap();
    let (status, reply) = post_batch(&http, &process.url, &ingest, &batch("boot", 3), JSON).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(stored_predictions(&http, &process.url, &read).await, 3);
    drop(process);
    // Keys exist now: a restart prints none.
    let again = start_with(&["--config", config.to_str().unwrap()]).await;
    assert!(again.banner.is_empty(), "{:?}", again.banner);

    // The keys are made: a key file that exists (moved back, say) is left alone.
    let again = start_with(&["--config", config.to_str().unwrap()]).await;
    assert!(again.banner.is_empty(), "{:?}", again.banner);
    drop(again);

    std::fs::write(&config, "databse = \"typo.db\"\n").unwrap();
    let run = crate::sextant(&["collect", "--config", config.to_str().unwrap()]);
    assert!(run.code != 0 && run.stderr.contains("unknown field `databse`"), "{}", run.stderr);
}

/// Processes starting at once on an empty PostgreSQL database: one set of bootstrap keys, in one
/// process's file; the others start and serve with them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_starting_at_once_on_an_empty_database_make_one_set_of_keys() {
    let Some(url) = postgres_database("bootstrap_race").await else { return };
    let dir = sqlite_path("bootstrap_race").parent().unwrap().to_owned();
    let configs: Vec<_> = (0..3)
        .map(|i| {
            let config = dir.join(format!("collector-{i}.toml"));
            let keys = dir.join(format!("keys-{i}.txt"));
            std::fs::write(
                &config,
                format!("database = {url:?}\nbootstrap_keys_file = {:?}\n", keys.display().to_string()),
            )
            .unwrap();
            config
        })
        .collect();
    let args: Vec<[&str; 2]> = configs.iter().map(|c| ["--config", c.to_str().unwrap()]).collect();
    let processes = tokio::join!(start_with(&args[0]), start_with(&args[1]), start_with(&args[2]));
    let files: Vec<String> =
        (0..3).filter_map(|i| std::fs::read_to_string(dir.join(format!("keys-{i}.txt"))).ok()).collect();
    assert_eq!(files.len(), 1, "one process writes the tokens: {files:?}");
    let list = crate::sextant(&["collect", "keys", "list", "--database", &url]);
    assert_eq!(list.stdout.matches("bootstrap-").count(), 3, "{}", list.stdout);
    let ingest = files[0].lines().find_map(|l| l.strip_prefix("ingest key: ")).unwrap().trim().to_owned();
    let http = tls::client().unwrap();
    for (i, process) in [&processes.0, &processes.1, &processes.2].into_iter().enumerate() {
        let (status, reply) = post_batch(&http, &process.url, &ingest, &batch(&format!("race-{i}"), 1), JSON).await;
        assert_eq!(status, 200, "process {i}: {reply}");
    }
}
