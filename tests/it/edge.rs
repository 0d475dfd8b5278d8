//! `sextant edge` as an operator runs it: a config file, the URL on the first line, OIP over HTTP;
//! a bad config is refused with the file and the reason.

use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, BufReader};

use crate::{fixture, sextant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_edge_host_serves_a_configured_model() {
    let dir = std::env::temp_dir().join(format!("sextant-edge-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("edge.toml");
    let model = fixture("digits_mlp/model.onnx");
    std::fs::write(&config, format!("node = \"gw-1\"\n[[models]]\nname = \"digits\"\npath = {:?}\n", model)).unwrap();
    let mut host = tokio::process::Command::new(env!("CARGO_BIN_EXE_sextant"))
        .args(["edge", "--config", config.to_str().unwrap(), "--listen", "127.0.0.1:0"])
        .env("XDG_RUNTIME_DIR", std::env::temp_dir())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let line = BufReader::new(host.stdout.take().unwrap()).lines().next_line().await.unwrap().unwrap();
    let url = line.strip_prefix("edge host gw-1 serving on ").unwrap_or_else(|| panic!("first line: {line}"));
    let metadata: serde_json::Value = reqwest::get(format!("{url}/models/digits")).await.unwrap().json().await.unwrap();
    assert_eq!(metadata["inputs"][0]["name"], "pixels", "{metadata}");
    host.kill().await.unwrap();

    std::fs::write(&config, "[[models]]\nname = \"a b\"\npath = \"x.onnx\"\n").unwrap();
    let run = sextant(&["edge", "--config", config.to_str().unwrap()]);
    assert_ne!(run.code, 0);
    assert!(run.stderr.contains("edge.toml") && run.stderr.contains("\"a b\""), "{}", run.stderr);
}
