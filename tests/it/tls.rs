//! TLS in the native clients, against a test CA (`tests/data/tls`, made by its `generate.py`):
//! the edge host's telemetry and profile fetch through an HTTPS front of a real collector, and
//! the collector's PostgreSQL connections with `sslmode=require`. Roots come from the platform,
//! or from `SSL_CERT_FILE`; without the test CA there, the same connections are refused.

use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::collect::{serve, sqlite_path, stored_predictions};
use crate::sextant_with_env;

fn tls_file(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/tls").join(name)
}

/// An HTTPS front on loopback for a plain HTTP server: TLS with the test CA's certificate for
/// 127.0.0.1, then bytes both ways. Counts handshakes that completed and that failed.
struct Front {
    url: String,
    completed: Arc<AtomicUsize>,
    failed: Arc<AtomicUsize>,
}

async fn https_front(plain: &str) -> Front {
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(tls_file("server.crt")).unwrap().map(Result::unwrap).collect();
    let key = PrivateKeyDer::from_pem_file(tls_file("server.key")).unwrap();
    #[allow(deprecated)] // ring's provider, as crates/tls uses it
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}", listener.local_addr().unwrap());
    let backend = plain.trim_start_matches("http://").to_owned();
    let (completed, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let counts = (completed.clone(), failed.clone());
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let (acceptor, backend, (completed, failed)) = (acceptor.clone(), backend.clone(), counts.clone());
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    failed.fetch_add(1, Ordering::SeqCst);
                    return;
                };
                completed.fetch_add(1, Ordering::SeqCst);
                let mut upstream = tokio::net::TcpStream::connect(&backend).await.unwrap();
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut upstream).await;
            });
        }
    });
    Front { url, completed, failed }
}

/// `sextant edge` as a process trusting the CAs of `roots` (`SSL_CERT_FILE` is per process),
/// until dropped; its URL.
async fn edge_process(config: &std::path::Path, roots: &std::path::Path) -> (tokio::process::Child, String) {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_sextant"));
    command.args(["edge", "--config"]).arg(config).env("XDG_RUNTIME_DIR", std::env::temp_dir());
    let mut child = command.env("SSL_CERT_FILE", roots).stdout(Stdio::piped()).kill_on_drop(true).spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some((_, rest)) = line.split_once(" serving on ") {
                return rest.trim_end_matches("/v2").to_owned();
            }
        }
        panic!("the edge host exited before serving");
    })
    .await
    .expect("the edge host starts within a minute");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, url)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_edge_sends_telemetry_over_verified_tls() {
    let s = serve(&collector::Database::Sqlite(sqlite_path("tls-edge")), |_| {}).await;
    let front = https_front(&s.url).await;
    let dir = std::env::temp_dir().join(format!("sextant-tls-edge-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("edge.toml");
    let model = crate::fixture("digits_mlp/model.onnx");
    std::fs::write(
        &config,
        format!(
            "node = \"gw-tls\"\nlisten = \"127.0.0.1:0\"\n[collector]\nurl = \"{}\"\nkey = \"{}\"\n\
             [[models]]\nname = \"digits\"\npath = {model:?}\nbackend = \"cpu\"\n",
            front.url, s.keys.ingest
        ),
    )
    .unwrap();
    let infer = async |url: &str| {
        let body = serde_json::json!({ "inputs": [{ "name": "pixels", "shape": [2, 64], "datatype": "FP32", "data": vec![3.0; 128] }] });
        let response = s.http.post(format!("{url}/v2/models/digits/infer")).json(&body).send().await.unwrap();
        assert_eq!(response.status(), 200);
    };
    let stored = async |n: i64| {
        for _ in 0..100 {
            if stored_predictions(&s.http, &s.url, &s.keys.read).await >= n {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        false
    };

    // Roots without the test CA: the host refuses the front's certificate, and nothing arrives
    // (the batches wait in the spool).
    let (untrusting, url) = edge_process(&config, &tls_file("other-ca.crt")).await;
    infer(&url).await;
    tokio::time::sleep(Duration::from_secs(7)).await;
    assert_eq!(front.completed.load(Ordering::SeqCst), 0, "no handshake completes with an unknown issuer");
    assert!(front.failed.load(Ordering::SeqCst) >= 1, "the host tried (the profile fetch, the batch)");
    assert_eq!(stored_predictions(&s.http, &s.url, &s.keys.read).await, 0);
    drop(untrusting);

    // Trusting it (`SSL_CERT_FILE`), the host fetches over TLS and the spooled and new batches arrive.
    let (_trusting, url) = edge_process(&config, &tls_file("ca.crt")).await;
    infer(&url).await;
    assert!(stored(4).await, "both runs' predictions arrive over TLS");
    assert!(front.completed.load(Ordering::SeqCst) >= 1);
}

/// `sslmode=require` is verified TLS: the server's certificate against the roots, and its
/// address against the certificate. Needs a PostgreSQL that serves the test certificate
/// (`.ci/run` sets that up; it sets `SEXTANT_REQUIRE_POSTGRES_TLS` too).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_with_sslmode_require_is_verified_tls() {
    let Some(database) = crate::collect::postgres_database("tls").await else { return };
    let url = format!("{database}?sslmode=require");
    let list = |roots: &str| {
        let roots = tls_file(roots);
        sextant_with_env(
            &["collect", "keys", "list", "--database", &url],
            &[("SSL_CERT_FILE", roots.to_str().unwrap())],
        )
    };
    let trusted = list("ca.crt");
    if trusted.code != 0 {
        assert!(
            std::env::var_os("SEXTANT_REQUIRE_POSTGRES_TLS").is_none(),
            "SEXTANT_REQUIRE_POSTGRES_TLS is set but PostgreSQL does not serve the test certificate: {}",
            trusted.stderr
        );
        eprintln!(
            "\n\n*** SKIPPED: PostgreSQL does not serve TLS with the test certificate ({}); TLS to PostgreSQL \
             did not run ***\n\n",
            trusted.stderr.trim()
        );
        return;
    }
    let untrusted = list("other-ca.crt");
    assert_ne!(untrusted.code, 0, "a certificate from an unknown CA is refused");
    assert!(
        untrusted.stderr.contains("UnknownIssuer"),
        "the refusal names the certificate's issuer: {}",
        untrusted.stderr
    );
}
