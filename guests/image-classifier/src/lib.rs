//! An image classifier pipeline: decode (a binary PGM of any size) or accept pixels (JSON),
//! normalise to the model's 8×8, 0–16 scale, infer, answer the top-k labels.
//!
//! `POST /…?k=3` with `Content-Type: image/x-portable-graymap` (P5), or JSON
//! `{"pixels": [64 numbers, or 8 rows of 8], "max": 16}` (`max`: the value of full ink; default 16).
//! Environment (granted in the host's configuration): `GRAPH` (default `digits`), `LABELS`
//! (comma-separated; default the class indices).
//! Answer: `{"graph": "digits", "top": [{"label": "3", "score": 0.98}, …]}`.

use serde_json::{Value, json};
use sextant_guest::{Error, Handler, Request, Response, nn};

const SIDE: usize = 8;
/// The scale of the digits data: 0 is blank, 16 full ink.
const INK: f32 = 16.0;

struct Classifier;

impl Handler for Classifier {
    fn handle(request: Request) -> Result<Response, Error> {
        if request.method != "POST" {
            return Err(Error::new(405, "POST an image (PGM) or {\"pixels\": […]}"));
        }
        let pixels = match request.body.starts_with(b"P5") {
            true => from_pgm(&request.body)?,
            false => from_json(&request.json()?)?,
        };
        let graph_name = std::env::var("GRAPH").unwrap_or_else(|_| "digits".to_owned());
        let graph = nn::Graph::load(&graph_name)?;
        let outputs = graph.run(&[("pixels", nn::Tensor::f32(&[1, (SIDE * SIDE) as u32], &pixels))])?;
        let scores = nn::output(&outputs, "probabilities")?.to_f32()?;
        let labels: Vec<String> = match std::env::var("LABELS") {
            Ok(labels) => labels.split(',').map(str::to_owned).collect(),
            Err(_) => (0..scores.len()).map(|i| i.to_string()).collect(),
        };
        let k = match request.query_param("k") {
            Some(k) => {
                k.parse::<usize>().map_err(|_| Error::bad_request(format!("k must be a whole number, not {k:?}")))?
            }
            None => 3,
        };
        let mut ranked: Vec<(usize, f32)> = scores.iter().copied().enumerate().collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
        let top: Vec<Value> = ranked
            .iter()
            .take(k.clamp(1, scores.len().max(1)))
            .map(|&(i, score)| json!({ "label": labels.get(i).cloned().unwrap_or_else(|| i.to_string()), "score": score }))
            .collect();
        Ok(Response::json(200, &json!({ "graph": graph_name, "top": top })))
    }
}

sextant_guest::export!(Classifier);

/// 64 pixels on the 0–16 scale from `{"pixels": …, "max": …}`.
fn from_json(body: &Value) -> Result<Vec<f32>, Error> {
    let max = body.get("max").map_or(Some(INK as f64), Value::as_f64).filter(|m| *m > 0.0);
    let max = max.ok_or_else(|| Error::bad_request("max must be a number above 0"))? as f32;
    let rows = body.get("pixels").and_then(Value::as_array).ok_or_else(|| Error::bad_request("no \"pixels\" array"))?;
    let flat: Vec<&Value> = match rows.first().is_some_and(Value::is_array) {
        true => rows.iter().filter_map(Value::as_array).flatten().collect(),
        false => rows.iter().collect(),
    };
    if flat.len() != SIDE * SIDE {
        return Err(Error::bad_request(format!("expected {} pixels (8×8), got {}", SIDE * SIDE, flat.len())));
    }
    flat.iter()
        .enumerate()
        .map(|(i, v)| match v.as_f64() {
            Some(x) if (0.0..=f64::from(max)).contains(&x) => Ok(x as f32 / max * INK),
            _ => Err(Error::bad_request(format!("pixel {i} is {v}, expected a number from 0 to {max}"))),
        })
        .collect()
}

/// A binary PGM (P5, 8-bit) of any size, shrunk to 8×8 by averaging boxes, on the 0–16 scale
/// (dark ink on a light page, as scanned: inverted so ink is high, as the model was trained).
fn from_pgm(bytes: &[u8]) -> Result<Vec<f32>, Error> {
    let bad = |what: &str| Error::bad_request(format!("not a binary PGM image: {what}"));
    // Header: "P5", width, height, maxval, separated by whitespace (comments start with '#').
    let mut fields = Vec::new();
    let mut at = 2;
    while fields.len() < 3 {
        while at < bytes.len() && (bytes[at].is_ascii_whitespace() || bytes[at] == b'#') {
            if bytes[at] == b'#' {
                while at < bytes.len() && bytes[at] != b'\n' {
                    at += 1;
                }
            }
            at += 1;
        }
        let start = at;
        while at < bytes.len() && bytes[at].is_ascii_digit() {
            at += 1;
        }
        let text = std::str::from_utf8(&bytes[start..at]).map_err(|_| bad("header"))?;
        fields.push(text.parse::<usize>().map_err(|_| bad("width, height or maxval"))?);
    }
    let (width, height, maxval) = (fields[0], fields[1], fields[2]);
    if width < SIDE || height < SIDE || width > 4096 || height > 4096 || maxval == 0 || maxval > 255 {
        return Err(bad(&format!("{width}×{height}, maxval {maxval}: expected 8×8 to 4096×4096, 8-bit")));
    }
    let pixels = bytes.get(at + 1..at + 1 + width * height).ok_or_else(|| bad("fewer pixels than the header says"))?;
    let mut out = vec![0.0f32; SIDE * SIDE];
    for (cell, value) in out.iter_mut().enumerate() {
        let (cy, cx) = (cell / SIDE, cell % SIDE);
        let (y0, y1) = (cy * height / SIDE, (cy + 1) * height / SIDE);
        let (x0, x1) = (cx * width / SIDE, (cx + 1) * width / SIDE);
        let mut sum = 0.0f32;
        for y in y0..y1 {
            for x in x0..x1 {
                sum += f32::from(pixels[y * width + x]);
            }
        }
        let mean = sum / ((y1 - y0) * (x1 - x0)) as f32;
        *value = (1.0 - mean / maxval as f32) * INK;
    }
    Ok(out)
}
