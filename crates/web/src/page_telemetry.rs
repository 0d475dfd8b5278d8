//! Telemetry from the page: the telemetry crate's batcher, driven by timers and `fetch`
//! (gloo-net), flushed with `navigator.sendBeacon` when the page is hidden or left, and kept in
//! `localStorage` so that batches survive a reload or an offline period and go out later with
//! their own `batch_id` (the collector stores each id once, so a batch sent twice counts once).

use std::cell::RefCell;
use std::rc::{Rc, Weak};

use serde::{Deserialize, Serialize};
use telemetry::{
    Batcher, BatcherConfig, Encoding, Format, ModelRef, Outcome, Profile, Record, RecorderConfig, Run, RunRecorder,
    Sealed, Source, SourceKind,
};
use wasm_bindgen::JsCast;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::prelude::JsValue;

use crate::error::WebError;
use crate::js;
use crate::options::{ProfileSource, TelemetryOptions};

/// `sendBeacon` refuses bodies over 64 KiB: batches are sealed below it so each fits one beacon.
const MAX_BATCH_BYTES: usize = 60 << 10;
/// Bounds what the page keeps (and `localStorage` holds): at most this many batches.
const MAX_OUTBOX: usize = 32;
const STORAGE_PREFIX: &str = "sextant:outbox:";
/// Raw values a summary may carry per feature: enough to tell a rename, small beside a beacon's 64 KiB.
const MAX_SAMPLES: usize = 32;

/// What a session records: predictions, feature counts, labels and errors.
pub(crate) struct PageTelemetry {
    state: RefCell<State>,
    transport: FetchTransport,
    beacon_url: String,
    /// The `localStorage` key of this session's unsent batches, when persistence is on.
    storage_key: Option<String>,
    /// Batches already handed to `sendBeacon`: each goes once (a tab hidden ten times beacons
    /// it once; delivery by `fetch` goes on as before).
    beaconed: RefCell<std::collections::HashSet<String>>,
    listeners: RefCell<Vec<Listener>>,
}

/// An event listener to remove when the session goes: target, event, callback.
type Listener = (JsValue, &'static str, Closure<dyn FnMut()>);

struct State {
    batcher: Batcher,
    recorder: RunRecorder<Rc<Profile>>,
}

impl std::fmt::Debug for PageTelemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PageTelemetry").field("collector", &self.transport.url).finish_non_exhaustive()
    }
}

impl PageTelemetry {
    /// Sets up telemetry for a session: fetches the reference profile if asked, takes over unsent
    /// batches that earlier page loads left for the same collector, and starts delivery.
    pub(crate) async fn start(
        options: TelemetryOptions,
        model: ModelRef,
        inputs: &[(&str, usize)],
    ) -> Result<Rc<PageTelemetry>, WebError> {
        let base = options.collector.trim_end_matches('/').to_owned();
        let transport = FetchTransport { url: format!("{base}/v1/batches"), key: options.key.clone() };
        let profile = match options.profile {
            ProfileSource::Fetch(false) => None,
            ProfileSource::Given(profile) => Some(*profile),
            ProfileSource::Fetch(true) => fetch_profile(&base, &options.key, &model).await,
        };
        let max_age_ms = options.max_age_ms.unwrap_or(5_000).max(100);
        let profiled = profile.as_ref().map(|p| p.features.len());
        let recorder = RunRecorder::new(
            profile.map(Rc::new),
            inputs,
            RecorderConfig {
                output: options.output,
                classes: options.classes,
                summary_every_ms: max_age_ms,
                sample_limit: options.samples.min(MAX_SAMPLES),
            },
        );
        if let Some(features) = profiled.filter(|_| !recorder.counts_features()) {
            info(&format!(
                "sextant: the reference profile's {features} features match no input of the model: only records \
                 given to session.observe() are counted"
            ));
        }
        let config = BatcherConfig {
            format: Format { encoding: Encoding::MessagePack, gzip: false },
            max_records: options.max_records.unwrap_or(200).max(1),
            max_bytes: MAX_BATCH_BYTES,
            max_age_ms,
            max_outbox: MAX_OUTBOX,
            ..BatcherConfig::default()
        };
        let session = js::random_id();
        let node = options.node.clone().unwrap_or_else(page_host);
        let source = Source { kind: SourceKind::Browser, node, sdk_version: env!("CARGO_PKG_VERSION").to_owned() };
        let mut batcher = Batcher::new(config, source, model, session.clone());
        let storage_key = options.persist.then(|| format!("{STORAGE_PREFIX}{base} {session}"));
        if let Some(key) = &storage_key {
            batcher.restore(claim_saved(&format!("{STORAGE_PREFIX}{base} "), key));
        }
        let telemetry = Rc::new(PageTelemetry {
            state: RefCell::new(State { batcher, recorder }),
            beacon_url: format!(
                "{base}/v1/beacon?key={}&encoding=msgpack",
                String::from(js_sys::encode_uri_component(&options.key))
            ),
            transport,
            storage_key,
            beaconed: RefCell::default(),
            listeners: RefCell::new(Vec::new()),
        });
        telemetry.save();
        telemetry.listen();
        wasm_bindgen_futures::spawn_local(deliver_forever(Rc::downgrade(&telemetry)));
        Ok(telemetry)
    }

    /// Records a run (see [`RunRecorder::record`]); returns the prediction ids.
    pub(crate) fn record(&self, run: &Run<'_>) -> Vec<String> {
        let now = js::now_ms();
        let mut state = self.state.borrow_mut();
        let (ids, records) = state.recorder.record(run, &js::random_id(), now);
        for record in records {
            self.push(&mut state, record, now);
        }
        drop(state);
        self.save();
        ids
    }

    /// Whether runs should pass their inputs (only feature summaries read them).
    pub(crate) fn wants_inputs(&self) -> bool {
        self.state.borrow().recorder.wants_inputs()
    }

    /// The output whose rows become predictions.
    pub(crate) fn summarised_output<'a>(&self, names: impl DoubleEndedIterator<Item = &'a str>) -> Option<&'a str> {
        self.state.borrow().recorder.summarised_output(names)
    }

    /// Records a failed run.
    pub(crate) fn record_error(&self, error: &WebError) {
        let kind = match error.code() {
            "engine_failed" | "engine_refused" => telemetry::ErrorKind::Inference,
            _ => telemetry::ErrorKind::RejectedInput,
        };
        let now = js::now_ms();
        let message = error.message().chars().take(1024).collect();
        let record = Record::Error(telemetry::ErrorRecord { timestamp_ms: now, kind, message });
        self.push(&mut self.state.borrow_mut(), record, now);
        self.save();
    }

    /// Counts one application record against the profile (see [`RunRecorder::observe_record`]).
    pub(crate) fn observe(&self, row: &[(&str, telemetry::Value<'_>)]) -> Result<(), WebError> {
        let now = js::now_ms();
        let mut state = self.state.borrow_mut();
        let summary =
            state.recorder.observe_record(row, now).map_err(|e| WebError::new("telemetry", format!("observe: {e}")))?;
        if let Some(summary) = summary {
            self.push(&mut state, summary, now);
        }
        drop(state);
        self.save();
        Ok(())
    }

    pub(crate) fn label(&self, prediction_id: String, truth: telemetry::Truth) -> Result<(), WebError> {
        let now = js::now_ms();
        let record = Record::Label(telemetry::Label { prediction_id, timestamp_ms: now, truth });
        self.state
            .borrow_mut()
            .batcher
            .push(record, now)
            .map_err(|e| WebError::new("bad_argument", format!("label: {e}")))?;
        self.save();
        Ok(())
    }

    /// Pushes a record the page did not write itself (a prediction, an error): a refusal here is
    /// a bug in this crate, reported on the console rather than to the page's run.
    fn push(&self, state: &mut State, record: Record, now: i64) {
        if let Err(e) = state.batcher.push(record, now) {
            warn(&format!("sextant: a telemetry record was refused: {e}"));
        }
    }

    /// Seals what is due by age, summaries included.
    fn tick(&self, now: i64) {
        let mut state = self.state.borrow_mut();
        if let Some(summary) = state.recorder.take_summary(now, false) {
            self.push(&mut state, summary, now);
        }
        if let Err(e) = state.batcher.tick(now) {
            warn(&format!("sextant: a telemetry batch could not be sealed: {e}"));
        }
    }

    /// Seals everything now; the batches go out with the next delivery pass.
    pub(crate) fn seal(&self) {
        let now = js::now_ms();
        let mut state = self.state.borrow_mut();
        if let Some(summary) = state.recorder.take_summary(now, true) {
            self.push(&mut state, summary, now);
        }
        if let Err(e) = state.batcher.seal() {
            warn(&format!("sextant: a telemetry batch could not be sealed: {e}"));
        }
        drop(state);
        self.save();
    }

    /// Sends every batch that is due, in order, until one fails or none is left.
    pub(crate) async fn deliver(&self) {
        loop {
            let now = js::now_ms();
            let Some(batch) = self.state.borrow().batcher.next_due(now).cloned() else { break };
            let outcome = self.transport.send(&batch).await;
            let retry = !matches!(outcome, Outcome::Accepted | Outcome::Rejected { .. });
            match &outcome {
                Outcome::Rejected { reason } => {
                    warn(&format!("sextant: the collector refused telemetry batch {}: {reason}", batch.batch_id))
                }
                Outcome::Refused { reason } => warn(&format!(
                    "sextant: the collector refuses this page's telemetry key or URL ({reason}); \
                     batches are kept and retried"
                )),
                Outcome::Accepted | Outcome::Retry { .. } => {}
            }
            self.state.borrow_mut().batcher.report(&batch.batch_id, outcome, js::now_ms(), js::jitter());
            self.save();
            if retry {
                break;
            }
        }
    }

    /// The page is being hidden or left: seal, save, and hand each batch not beaconed before to
    /// `sendBeacon`, which delivers after the page is gone. They stay saved: whether a beacon
    /// arrived is unknown, and the collector stores a `batch_id` once.
    fn flush_on_hide(&self) {
        self.seal();
        let Some(navigator) = web_sys::window().map(|w| w.navigator()) else { return };
        let state = self.state.borrow();
        let mut beaconed = self.beaconed.borrow_mut();
        // Batches delivered or dropped since are forgotten: the set stays as small as the outbox.
        let unsent: std::collections::HashSet<&str> = state.batcher.outbox().map(|b| b.batch_id.as_str()).collect();
        beaconed.retain(|id| unsent.contains(id.as_str()));
        for batch in state.batcher.outbox() {
            if beaconed.contains(&batch.batch_id) {
                continue;
            }
            let mut body = batch.body.clone();
            // `false`: the browser's beacon quota is used up; the batch waits for the next visit.
            if !navigator.send_beacon_with_opt_u8_array(&self.beacon_url, Some(&mut body)).unwrap_or(false) {
                break;
            }
            beaconed.insert(batch.batch_id.clone());
        }
    }

    /// Saves the unsent batches (best effort: a full or disabled storage loses only persistence).
    fn save(&self) {
        let (Some(key), Some(storage)) = (&self.storage_key, local_storage()) else { return };
        let state = self.state.borrow();
        let saved: Vec<Saved> = state.batcher.outbox().map(Saved::of).collect();
        if saved.is_empty() {
            let _ = storage.remove_item(key);
            return;
        }
        if let Ok(text) = serde_json::to_string(&saved)
            && storage.set_item(key, &text).is_err()
        {
            warn("sextant: localStorage is full; unsent telemetry will not survive a reload");
        }
    }

    pub(crate) fn stats(&self) -> JsValue {
        let state = self.state.borrow();
        let stats = state.batcher.stats();
        let (dropped, unconfirmed) = state.batcher.losses();
        let object = js_sys::Object::new();
        for (key, value) in [
            ("records", stats.records),
            ("batchesSealed", stats.batches_sealed),
            ("batchesDelivered", stats.batches_delivered),
            ("batchesRejected", stats.batches_rejected),
            ("batchesEvicted", stats.batches_evicted),
            ("retries", stats.retries),
            ("pendingBatches", state.batcher.outbox_len() as u64),
            ("openRecords", state.batcher.open_len() as u64),
            ("dropped", dropped),
            ("unconfirmed", unconfirmed),
        ] {
            let _ = js_sys::Reflect::set(&object, &key.into(), &(value as f64).into());
        }
        object.into()
    }

    /// Flushes on `visibilitychange` (to hidden) and `pagehide`.
    fn listen(self: &Rc<Self>) {
        let Some(window) = web_sys::window() else { return };
        let weak = Rc::downgrade(self);
        let on_hidden = Closure::<dyn FnMut()>::new(move || {
            let hidden = web_sys::window()
                .and_then(|w| w.document())
                .is_some_and(|d| d.visibility_state() == web_sys::VisibilityState::Hidden);
            if let Some(t) = weak.upgrade().filter(|_| hidden) {
                t.flush_on_hide();
            }
        });
        let weak = Rc::downgrade(self);
        let on_pagehide = Closure::<dyn FnMut()>::new(move || {
            if let Some(t) = weak.upgrade() {
                t.flush_on_hide();
            }
        });
        let mut listeners = self.listeners.borrow_mut();
        if let Some(document) = window.document() {
            let _ = document.add_event_listener_with_callback("visibilitychange", on_hidden.as_ref().unchecked_ref());
            listeners.push((document.into(), "visibilitychange", on_hidden));
        }
        let _ = window.add_event_listener_with_callback("pagehide", on_pagehide.as_ref().unchecked_ref());
        listeners.push((window.into(), "pagehide", on_pagehide));
    }
}

impl Drop for PageTelemetry {
    fn drop(&mut self) {
        for (target, event, closure) in self.listeners.get_mut().drain(..) {
            if let Some(target) = target.dyn_ref::<web_sys::EventTarget>() {
                let _ = target.remove_event_listener_with_callback(event, closure.as_ref().unchecked_ref());
            }
        }
    }
}

/// The delivery loop of one session: seals by age and sends what is due, until the session is
/// released (the loop holds only a weak reference between passes).
async fn deliver_forever(telemetry: Weak<PageTelemetry>) {
    loop {
        let wait = {
            let Some(t) = telemetry.upgrade() else { return };
            let now = js::now_ms();
            t.tick(now);
            t.deliver().await;
            let state = t.state.borrow();
            let next = [state.batcher.next_due_at(), state.batcher.next_seal_at(), state.recorder.next_summary_at()]
                .into_iter()
                .flatten()
                .min();
            // Wake at least once a second: cheap, and a release is noticed soon.
            next.map_or(1_000, |at| (at - js::now_ms()).clamp(20, 1_000))
        };
        js::sleep(wait as f64).await;
    }
}

/// Posts batches to the collector with the ingest key. The same contract as
/// `telemetry::Transport`, as an inherent method: natively, where this crate is only type-checked,
/// that trait wants `Send` futures, and a browser `fetch` is not one.
struct FetchTransport {
    url: String,
    key: String,
}

impl FetchTransport {
    async fn send(&self, batch: &Sealed) -> Outcome {
        let mut request = gloo_net::http::Request::post(&self.url)
            .header("Authorization", &format!("Bearer {}", self.key))
            .header("Content-Type", batch.format.encoding.content_type());
        if batch.format.gzip {
            request = request.header("Content-Encoding", "gzip");
        }
        let Ok(request) = request.body(js_sys::Uint8Array::from(batch.body.as_slice())) else {
            return Outcome::Retry { after_ms: None };
        };
        match request.send().await {
            // Offline, DNS, CORS or a dropped connection: all worth another try later.
            Err(_) => Outcome::Retry { after_ms: None },
            Ok(response) => {
                let retry_after = response.headers().get("retry-after");
                let body = if response.ok() { String::new() } else { response.text().await.unwrap_or_default() };
                Outcome::from_http(response.status(), retry_after.as_deref(), &body)
            }
        }
    }
}

/// A sealed batch as `localStorage` keeps it (the body in base64).
#[derive(Serialize, Deserialize)]
struct Saved {
    id: String,
    body: String,
    json: bool,
    gzip: bool,
    records: u64,
    attempts: u32,
    #[serde(default)]
    born_ms: Option<i64>,
}

impl Saved {
    fn of(batch: &Sealed) -> Saved {
        use base64::Engine;
        Saved {
            id: batch.batch_id.clone(),
            body: base64::engine::general_purpose::STANDARD.encode(&batch.body),
            json: batch.format.encoding == Encoding::Json,
            gzip: batch.format.gzip,
            records: batch.records(),
            attempts: batch.attempts(),
            born_ms: batch.born_ms(),
        }
    }

    fn into_sealed(self) -> Option<Sealed> {
        use base64::Engine;
        let body = base64::engine::general_purpose::STANDARD.decode(self.body).ok()?;
        let encoding = if self.json { Encoding::Json } else { Encoding::MessagePack };
        let format = Format { encoding, gzip: self.gzip };
        Some(Sealed::saved(self.id, body, format, self.records, self.attempts, self.born_ms))
    }
}

/// Takes the batches earlier page loads saved for this collector (other sessions' keys), oldest
/// session first, and removes their keys: from now on this session keeps them.
fn claim_saved(prefix: &str, own_key: &str) -> Vec<Sealed> {
    let Some(storage) = local_storage() else { return Vec::new() };
    let keys: Vec<String> = (0..storage.length().unwrap_or(0))
        .filter_map(|i| storage.key(i).ok().flatten())
        .filter(|k| k.starts_with(prefix) && k != own_key)
        .collect();
    let mut batches = Vec::new();
    for key in keys {
        let text = storage.get_item(&key).ok().flatten().unwrap_or_default();
        let _ = storage.remove_item(&key);
        match serde_json::from_str::<Vec<Saved>>(&text) {
            Ok(saved) => batches.extend(saved.into_iter().filter_map(Saved::into_sealed)),
            Err(e) => warn(&format!("sextant: ignoring unreadable saved telemetry under {key:?}: {e}")),
        }
    }
    batches
}

async fn fetch_profile(base: &str, key: &str, model: &ModelRef) -> Option<Profile> {
    let url = format!(
        "{base}/v1/models/{}/versions/{}/profile",
        String::from(js_sys::encode_uri_component(&model.name)),
        String::from(js_sys::encode_uri_component(&model.version))
    );
    let response =
        match gloo_net::http::Request::get(&url).header("Authorization", &format!("Bearer {key}")).send().await {
            Ok(r) if r.ok() => r,
            Ok(r) => {
                warn(&format!("sextant: no reference profile from {url} (HTTP {}); no feature summaries", r.status()));
                return None;
            }
            Err(e) => {
                warn(&format!("sextant: the reference profile could not be fetched from {url}: {e}"));
                return None;
            }
        };
    match response.json::<Profile>().await {
        Ok(profile) => Some(profile),
        Err(e) => {
            warn(&format!("sextant: the reference profile from {url} is not readable: {e}"));
            None
        }
    }
}

fn local_storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok().flatten()
}

fn page_host() -> String {
    js::get(&js_sys::global(), "location")
        .and_then(|l| js::get(&l, "host"))
        .and_then(|h| h.as_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "browser".to_owned())
}

fn warn(message: &str) {
    console("warn", message);
}

fn info(message: &str) {
    console("info", message);
}

fn console(level: &str, message: &str) {
    if let Some(console) = js::get(&js_sys::global(), "console") {
        js::call(&console, level, &[message.into()]);
    }
}
