//! A module that misbehaves on request, for the host's isolation tests (not an example to follow).
//!
//! `/…/loop`: spins forever. `/…/grow`: allocates until memory runs out. `/…/trap`: panics (a
//! wasm trap). `/…/silent`: returns without answering. `/…/sandbox`: reports what it can see of
//! the host (environment, files, network). `/…/nn-load`: tries to load a graph from bytes.
//! Anything else: `ok`.

use serde_json::json;
use sextant_guest::{Error, Handler, Request, Response};

struct Misbehave;

impl Handler for Misbehave {
    fn handle(request: Request) -> Result<Response, Error> {
        match request.path.rsplit('/').next().unwrap_or_default() {
            "loop" => {
                let mut n: u64 = 0;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            "grow" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            "trap" => panic!("asked to trap"),
            "silent" => std::process::exit(0),
            "sandbox" => {
                let env: Vec<String> = std::env::vars().map(|(k, _)| k).collect();
                let file = std::fs::read_to_string("/etc/hostname").map_err(|e| e.to_string());
                let net = std::net::TcpStream::connect("127.0.0.1:5432").map(|_| ()).map_err(|e| e.to_string());
                let dir = std::fs::read_dir("/").map(|d| d.count()).map_err(|e| e.to_string());
                Ok(Response::json(
                    200,
                    &json!({ "env": env, "file": file.is_ok(), "net": net.is_ok(), "root_entries": dir.ok() }),
                ))
            }
            "nn-load" => {
                let error = sextant_guest::nn::Graph::load("no-such-graph").err().map(|e| e.to_string());
                Ok(Response::json(200, &json!({ "error": error })))
            }
            _ => Ok(Response::text(200, "ok")),
        }
    }
}

sextant_guest::export!(Misbehave);
