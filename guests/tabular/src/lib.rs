//! A tabular pipeline: a JSON record (or a list of them) to a tensor in the model's feature
//! order, infer, answer each record's class and score.
//!
//! `POST /…` with `{"alcohol": 13.2, …}` or `[{…}, {…}]`. Every feature must be there, as a
//! number; a field the model does not know is refused by name (a renamed field is caught here,
//! not silently zero-filled). Environment (granted in the host's configuration): `FEATURES`
//! (comma-separated, the model's input order; required), `GRAPH` (default `wine`), `INPUT`
//! (default `features`), `OUTPUT` (default `probabilities`), `CLASSES` (comma-separated names).
//! Answer: `{"class": "1", "score": 0.93}`, or `{"predictions": [...]}` for a list.

use serde_json::{Map, Value, json};
use sextant_guest::{Error, Handler, Request, Response, nn};

struct Tabular;

fn env(key: &str, default: &str) -> String {
    std::env::var(key).unwrap_or_else(|_| default.to_owned())
}

impl Handler for Tabular {
    fn handle(request: Request) -> Result<Response, Error> {
        if request.method != "POST" {
            return Err(Error::new(405, "POST a JSON record or a list of records"));
        }
        let features: Vec<String> = std::env::var("FEATURES")
            .map_err(|_| {
                Error::new(500, "the module is not configured: FEATURES (the model's feature order) is not granted")
            })?
            .split(',')
            .map(str::to_owned)
            .collect();
        let body: Value = request.json()?;
        let (records, single) = match &body {
            Value::Object(record) => (vec![record], true),
            Value::Array(items) => {
                let records = items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| {
                        item.as_object().ok_or_else(|| Error::bad_request(format!("item {i} is not an object")))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                (records, false)
            }
            _ => return Err(Error::bad_request("expected a JSON object (one record) or an array of them")),
        };
        if records.is_empty() {
            return Ok(Response::json(200, &json!({ "predictions": [] })));
        }
        let mut values = Vec::with_capacity(records.len() * features.len());
        for (i, record) in records.iter().enumerate() {
            values.extend(row(record, &features).map_err(|e| Error::bad_request(format!("record {i}: {e}")))?);
        }
        let graph = nn::Graph::load(&env("GRAPH", "wine"))?;
        let dims = [records.len() as u32, features.len() as u32];
        let outputs = graph.run(&[(env("INPUT", "features").as_str(), nn::Tensor::f32(&dims, &values))])?;
        let scores = nn::output(&outputs, &env("OUTPUT", "probabilities"))?.to_f32()?;
        let classes: Option<Vec<String>> =
            std::env::var("CLASSES").ok().map(|c| c.split(',').map(str::to_owned).collect());
        let width = scores.len() / records.len();
        let predictions: Vec<Value> = scores
            .chunks(width.max(1))
            .map(|row| {
                let (best, score) =
                    row.iter().enumerate().fold((0, f32::MIN), |b, (i, &s)| if s > b.1 { (i, s) } else { b });
                let class = classes.as_ref().and_then(|c| c.get(best).cloned()).unwrap_or_else(|| best.to_string());
                json!({ "class": class, "score": score })
            })
            .collect();
        let answer = match single {
            true => predictions.into_iter().next().unwrap_or(Value::Null),
            false => json!({ "predictions": predictions }),
        };
        Ok(Response::json(200, &answer))
    }
}

sextant_guest::export!(Tabular);

/// The record's values in `features` order; what is missing, extra or not a number is named.
fn row(record: &Map<String, Value>, features: &[String]) -> Result<Vec<f32>, String> {
    if let Some(unknown) = record.keys().find(|k| !features.contains(k)) {
        return Err(format!("unknown field {unknown:?}; the model takes {features:?}"));
    }
    features
        .iter()
        .map(|name| match record.get(name) {
            Some(Value::Number(n)) => {
                n.as_f64().map(|x| x as f32).ok_or_else(|| format!("{name:?} is not a finite number"))
            }
            Some(other) => Err(format!("{name:?} is {other}, expected a number")),
            None => Err(format!("{name:?} is missing")),
        })
        .collect()
}
