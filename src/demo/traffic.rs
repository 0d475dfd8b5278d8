//! The demo's clients. Edge clients call the edge host over HTTP (the tabular guest's route, or
//! OIP when no guest was built) and report each answer's ground truth to the collector a little
//! later, as a labelling process would. The page client is a browser page done natively: it runs
//! the model itself and reports through the page's telemetry path (`RunRecorder`, with the app's
//! records through `observe_record` as `session.observe` passes them, the `Batcher`,
//! `POST /v1/batches`), its labels inside its own batches.
//!
//! Everything sent is written down in [`Sent`], so the end can check that the collector stored
//! each prediction and label exactly once.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};
use serde::Serialize;
use telemetry::{EngineKind, Flat, Label, Profile, Record, RecorderConfig, Run, RunRecorder, Truth};
use telemetry_client::{Shipper, now_ms};
use tokio::sync::watch;

use super::scenario::{self, Data};

/// Share of predictions whose ground truth is ever reported.
const LABELLED: f64 = 0.9;
/// How long the edge's ground truth takes to arrive.
const LABEL_DELAY: Duration = Duration::from_secs(2);

/// What the clients share: the phase, the stop signal, the record of what was sent, and the HTTP
/// client they send with.
#[derive(Debug)]
pub struct Clients {
    pub data: Data,
    pub http: reqwest::Client,
    drifting: AtomicBool,
    stop: watch::Sender<bool>,
    pub sent: Mutex<Sent>,
    pub failed: AtomicU64,
}

/// Per model: the prediction ids the collector must hold, and the last truth sent for each
/// labelled one.
#[derive(Debug, Default, Serialize)]
pub struct Sent {
    pub models: BTreeMap<String, SentModel>,
}

#[derive(Debug, Default, Serialize)]
pub struct SentModel {
    pub predictions: Vec<String>,
    pub labels: BTreeMap<String, String>,
}

impl Clients {
    pub fn new(data: Data, http: reqwest::Client) -> Arc<Clients> {
        Arc::new(Clients {
            data,
            http,
            drifting: AtomicBool::new(false),
            stop: watch::channel(false).0,
            sent: Mutex::new(Sent::default()),
            failed: AtomicU64::new(0),
        })
    }

    pub fn drifting(&self) -> bool {
        self.drifting.load(Ordering::Relaxed)
    }

    pub fn start_drift(&self) {
        self.drifting.store(true, Ordering::Relaxed);
    }

    pub fn stop(&self) {
        self.stop.send_replace(true);
    }

    /// Counts per model: (predictions, labels).
    pub fn counts(&self) -> BTreeMap<String, (usize, usize)> {
        let sent = self.sent.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        sent.models.iter().map(|(m, s)| (m.clone(), (s.predictions.len(), s.labels.len()))).collect()
    }

    fn note(&self, model: &str, predictions: &[String], labels: &[(String, String)]) {
        let mut sent = self.sent.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let entry = sent.models.entry(model.to_owned()).or_default();
        entry.predictions.extend_from_slice(predictions);
        entry.labels.extend(labels.iter().cloned());
    }

    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.stop.subscribe()
    }

    /// Waits for the next tick; `false` once stopped.
    pub async fn ticks(&self, ticks: &mut tokio::time::Interval, stopped: &mut watch::Receiver<bool>) -> bool {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = stopped.wait_for(|s| *s) => return false,
        }
        !*stopped.borrow()
    }
}

pub fn interval(per_second: u32) -> tokio::time::Interval {
    let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(per_second.max(1))));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    ticks
}

/// Where the edge clients send their rows.
#[derive(Debug, Clone)]
pub enum EdgeRoute {
    /// The tabular guest's route: a JSON record by feature name; ids in a response header.
    Module(String),
    /// OIP: `/v2/models/{model}/infer`; ids in the answer's `parameters`.
    Oip(String),
}

/// Calls the edge host `per_second` times a second until stopped; queues ground truth for the
/// labeller. Failed calls are counted (and the first few printed), never fatal.
pub async fn edge_client(clients: Arc<Clients>, route: EdgeRoute, per_second: u32, labels: Arc<Labeller>, seed: u64) {
    let http = clients.http.clone();
    let mut rng = SmallRng::seed_from_u64(seed);
    let (mut ticks, mut stopped) = (interval(per_second), clients.subscribe());
    while clients.ticks(&mut ticks, &mut stopped).await {
        let drifting = clients.drifting();
        let row = clients.data.sample(&mut rng).clone();
        let values = clients.data.measure(&row, drifting, &mut rng);
        match call(&http, &route, &clients.data, &values).await {
            Ok(ids) => {
                clients.note(scenario::EDGE_MODEL, &ids, &[]);
                let truth = scenario::truth(&row.class, drifting);
                for id in ids.into_iter().filter(|_| rng.random_bool(LABELLED)) {
                    labels.queue(id, truth.to_owned());
                }
            }
            Err(e) => {
                if clients.failed.fetch_add(1, Ordering::Relaxed) < 3 {
                    eprintln!("  edge client: {e:#}");
                }
            }
        }
    }
}

/// One call; the prediction ids of the answer.
async fn call(http: &reqwest::Client, route: &EdgeRoute, data: &Data, values: &[f64]) -> Result<Vec<String>> {
    let (url, body) = match route {
        EdgeRoute::Module(url) => (url, data.edge_request(values)),
        EdgeRoute::Oip(url) => (
            url,
            serde_json::json!({
                "inputs": [{ "name": "features", "shape": [1, values.len()], "datatype": "FP32", "data": values }]
            }),
        ),
    };
    let response = http.post(url).json(&body).send().await.with_context(|| format!("POST {url}"))?;
    let status = response.status();
    let header = response.headers().get(edge::PREDICTION_IDS_HEADER).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let answer: serde_json::Value = response.json().await.with_context(|| format!("POST {url}: the answer"))?;
    if !status.is_success() {
        anyhow::bail!("POST {url}: {status} {answer}");
    }
    let ids: Vec<String> = match route {
        EdgeRoute::Module(_) => header.iter().flat_map(|h| h.split(',')).map(|s| s.trim().to_owned()).collect(),
        EdgeRoute::Oip(_) => answer["parameters"]["prediction_ids"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
    };
    if ids.is_empty() {
        anyhow::bail!("POST {url}: the answer names no prediction (is the edge host's telemetry on?)");
    }
    Ok(ids)
}

/// Ground truth for the edge's predictions, sent to `POST /v1/labels` once it is due; a label
/// stays queued until the collector accepted it.
#[derive(Debug)]
pub struct Labeller {
    url: String,
    key: String,
    queue: Mutex<VecDeque<(Instant, String, String)>>,
}

impl Labeller {
    pub fn new(collector: &str, key: &str) -> Arc<Labeller> {
        Arc::new(Labeller { url: format!("{collector}/v1/labels"), key: key.to_owned(), queue: Mutex::default() })
    }

    fn queue(&self, id: String, truth: String) {
        let mut queue = self.queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        queue.push_back((Instant::now() + LABEL_DELAY, id, truth));
    }

    /// Sends what is due every second until stopped, then everything left (a few tries).
    pub async fn run(self: Arc<Self>, clients: Arc<Clients>) {
        let http = clients.http.clone();
        let (mut ticks, mut stopped) = (interval(1), clients.subscribe());
        while clients.ticks(&mut ticks, &mut stopped).await {
            self.send(&http, &clients, Instant::now()).await;
        }
        for _ in 0..5 {
            if self.send(&http, &clients, Instant::now() + LABEL_DELAY).await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        eprintln!("  labeller: the collector did not take the last labels");
    }

    /// Sends the labels due by `until`; true when none is left.
    async fn send(&self, http: &reqwest::Client, clients: &Clients, until: Instant) -> bool {
        let due: Vec<(Instant, String, String)> = {
            let mut queue = self.queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let n = queue.iter().take_while(|(at, ..)| *at <= until).count().min(1000);
            queue.drain(..n).collect()
        };
        if due.is_empty() {
            return true;
        }
        let now = now_ms();
        let labels: Vec<Label> = due
            .iter()
            .map(|(_, id, truth)| Label {
                prediction_id: id.clone(),
                timestamp_ms: now,
                truth: Truth::Class(truth.clone()),
            })
            .collect();
        let sent = http
            .post(&self.url)
            .bearer_auth(&self.key)
            .json(&serde_json::json!({ "model": scenario::EDGE_MODEL, "labels": labels }))
            .send();
        match sent.await {
            Ok(r) if r.status().is_success() => {
                let pairs: Vec<(String, String)> = due.into_iter().map(|(_, id, truth)| (id, truth)).collect();
                clients.note(scenario::EDGE_MODEL, &[], &pairs);
                let queue = self.queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                queue.is_empty()
            }
            failed => {
                eprintln!("  labeller: {} labels not taken yet ({failed:?}); trying again", due.len());
                let mut queue = self.queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                for label in due.into_iter().rev() {
                    queue.push_front(label);
                }
                false
            }
        }
    }
}

/// A page running the model itself, `per_second` predictions a second: its telemetry is the
/// browser package's path — a `RunRecorder` (predictions, and the app's records counted against
/// the profile), a `Batcher` shipped to `POST /v1/batches`, labels in the same batches.
pub async fn page_client(
    clients: Arc<Clients>,
    session: runtime::Session,
    profile: Profile,
    shipper: Shipper,
    per_second: u32,
    seed: u64,
) -> Result<()> {
    let input = session.inputs().first().context("the model has no input")?.name.clone();
    let output = "probabilities";
    let classes: Vec<String> = scenario::CLASSES.iter().map(|c| (*c).to_owned()).collect();
    let config = RecorderConfig {
        output: Some(output.to_owned()),
        classes: Some(classes),
        summary_every_ms: telemetry::BatcherConfig::default().max_age_ms,
        sample_limit: 50,
    };
    let width = clients.data.features.len();
    let mut recorder = RunRecorder::new(Some(profile), &[(input.as_str(), width)], config);
    let mut rng = SmallRng::seed_from_u64(seed);
    let session_id = format!("page{seed:x}-{:x}", now_ms());
    let (mut ticks, mut stopped) = (interval(per_second), clients.subscribe());
    let mut seq = 0u64;
    while clients.ticks(&mut ticks, &mut stopped).await {
        let drifting = clients.drifting();
        let row = clients.data.sample(&mut rng).clone();
        let values = clients.data.measure(&row, false, &mut rng);
        let tensor = runtime::Tensor::new(&[1, width], values.iter().map(|&v| v as f32).collect::<Vec<f32>>())?;
        let started = Instant::now();
        // The runtime's futures are not `Send` (they run in browsers too); on the CPU engine a run
        // of this model is tens of microseconds, done here as a page does it, inline.
        let outputs = pollster::block_on(session.run(vec![(input.clone(), tensor)]))?;
        let latency_us = u32::try_from(started.elapsed().as_micros()).unwrap_or(u32::MAX);
        let (_, scores) = outputs.iter().find(|(name, _)| name == output).context("no probabilities output")?;
        let scores: Vec<f64> = scores.data().to_f64_vec();
        let flat = Flat { name: output, values: &scores, width: scores.len(), integral: false };
        let run = Run { inputs: &[], output: Some(flat), latency_us, engine: EngineKind::Cpu };
        seq += 1;
        let now = now_ms();
        let (ids, mut records) = recorder.record(&run, &format!("{session_id}-{seq}"), now);
        let record = clients.data.page_record(&row, &values, drifting, &mut rng);
        let fields: Vec<(&str, telemetry::Value<'_>)> = record.iter().map(|(n, f)| (n.as_str(), f.value())).collect();
        records.extend(recorder.observe_record(&fields, now)?);
        // The user confirms or corrects the answer right away (most of the time).
        let truth = scenario::truth(&row.class, drifting);
        let labels: Vec<(String, String)> =
            ids.iter().filter(|_| rng.random_bool(LABELLED)).map(|id| (id.clone(), truth.to_owned())).collect();
        records.extend(labels.iter().map(|(id, truth)| {
            Record::Label(Label { prediction_id: id.clone(), timestamp_ms: now, truth: Truth::Class(truth.clone()) })
        }));
        for record in records {
            shipper.push(record).context("the page's telemetry refused a record")?;
        }
        clients.note(scenario::PAGE_MODEL, &ids, &labels);
    }
    if let Some(summary) = recorder.take_summary(now_ms(), true) {
        shipper.push(summary).context("the page's telemetry refused its last summary")?;
    }
    let (dropped, unconfirmed) = shipper.losses();
    let stats = shipper.close(Duration::from_secs(10)).await;
    let undelivered = stats.batches_sealed.saturating_sub(stats.batches_delivered);
    if dropped + unconfirmed + undelivered > 0 {
        eprintln!(
            "  page: {dropped} records dropped, {unconfirmed} unconfirmed, {undelivered} batches undelivered at close"
        );
    }
    Ok(())
}
