//! Each served model's telemetry: a [`RunRecorder`] (predictions per row, feature counts against
//! the profile fetched from the collector) feeding a spooled [`Shipper`], so records survive an
//! unreachable collector and host restarts.
//!
//! The host never waits on the collector: the reference profile is asked for once, for at most
//! [`FIRST_FETCH`], when a model version starts being served; if it is not had then, it is fetched
//! in the background (with backoff) and counted against from when it arrives.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use runtime::{Session, Tensor, TensorData};
use telemetry::{Batcher, BatcherConfig, FlatTensor, ModelRef, Profile, Record, RecorderConfig, RunRecorder};
use telemetry_client::{HttpTransport, Shipper, now_ms};

use crate::config::{CollectorConfig, ModelConfig};
use crate::registry::LoadError;

/// How long starting to serve a model version waits for its reference profile.
const FIRST_FETCH: Duration = Duration::from_secs(2);
/// How long each background attempt may take; the wait between attempts doubles up to
/// [`MAX_RETRY`].
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_RETRY: Duration = Duration::from_secs(300);

#[derive(Debug)]
pub(crate) struct Recording {
    shipper: Shipper,
    recorder: Arc<Mutex<RunRecorder<Arc<Profile>>>>,
    /// The background fetch of the served version's profile, while it is missing.
    fetching: Mutex<Option<tokio::task::JoinHandle<()>>>,
    collector: CollectorConfig,
}

/// What a recorder for one model version is made of, but the profile.
#[derive(Debug, Clone)]
struct Plan {
    widths: Vec<(String, usize)>,
    config: RecorderConfig,
}

impl Plan {
    fn of(model: &ModelConfig, session: &Session) -> Plan {
        let widths = session.inputs().iter().map(|i| (i.name.clone(), i.row_width().unwrap_or(0))).collect();
        let config = RecorderConfig {
            output: model.output.clone(),
            classes: model.classes.clone(),
            summary_every_ms: BatcherConfig::default().max_age_ms,
            ..RecorderConfig::default()
        };
        Plan { widths, config }
    }

    fn recorder(&self, profile: Option<Profile>) -> RunRecorder<Arc<Profile>> {
        let widths: Vec<(&str, usize)> = self.widths.iter().map(|(n, w)| (n.as_str(), *w)).collect();
        RunRecorder::new(profile.map(Arc::new), &widths, self.config.clone())
    }
}

impl Drop for Recording {
    fn drop(&mut self) {
        if let Some(task) = self.fetching.get_mut().ok().and_then(Option::take) {
            task.abort();
        }
    }
}

impl Recording {
    pub(crate) async fn start(
        collector: &CollectorConfig,
        node: &str,
        model: &ModelConfig,
        model_ref: ModelRef,
        session: &Session,
    ) -> Result<Recording, LoadError> {
        // First: an `https://` collector this host cannot reach over TLS stops the start.
        let transport = HttpTransport::new(&collector.url, collector.key.clone()).map_err(|source| LoadError::Tls {
            name: model.name.clone(),
            url: collector.url.clone(),
            source,
        })?;
        let plan = Plan::of(model, session);
        let profile = fetch_profile(collector, &model_ref, FIRST_FETCH).await;
        let missing = profile.is_none();
        let recorder = Arc::new(Mutex::new(plan.recorder(profile)));
        // The spool is bounded by bytes and age, not by a count of batches.
        let config = BatcherConfig {
            max_outbox: usize::MAX,
            max_outbox_bytes: collector.spool_max_bytes,
            max_outbox_age_ms: i64::try_from(collector.spool_max_age_s.saturating_mul(1000)).unwrap_or(i64::MAX),
            ..BatcherConfig::default()
        };
        let run_id = format!("{node}-{}-{}", model.name, telemetry_client::random_id());
        let source = telemetry::Source {
            kind: telemetry::SourceKind::Edge,
            node: node.to_owned(),
            sdk_version: env!("CARGO_PKG_VERSION").to_owned(),
        };
        let batcher = Batcher::new(config, source, model_ref.clone(), run_id);
        let shipper = Shipper::spawn_spooled(batcher, transport, &collector.spool.join(&model.name))
            .map_err(|source| LoadError::Spool { name: model.name.clone(), source })?;
        let recording = Recording { shipper, recorder, fetching: Mutex::default(), collector: collector.clone() };
        if missing {
            recording.keep_fetching(model_ref, plan);
        }
        Ok(recording)
    }

    /// Fetches `model`'s profile in the background until it has it, then records against it
    /// (replacing any fetch for an earlier version).
    fn keep_fetching(&self, model: ModelRef, plan: Plan) {
        let (collector, recorder) = (self.collector.clone(), Arc::downgrade(&self.recorder));
        let task = tokio::spawn(async move {
            let mut wait = FIRST_FETCH;
            loop {
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(MAX_RETRY);
                let Some(profile) = fetch_profile(&collector, &model, FETCH_TIMEOUT).await else { continue };
                tracing::info!(model = %model.name, version = %model.version, "reference profile fetched; counting features");
                if let Some(recorder) = recorder.upgrade()
                    && let Ok(mut recorder) = recorder.lock()
                {
                    *recorder = plan.recorder(Some(profile));
                }
                return;
            }
        });
        if let Ok(mut fetching) = self.fetching.lock()
            && let Some(earlier) = fetching.replace(task)
        {
            earlier.abort();
        }
    }

    /// A new version of the model is served from now on: what is open is sealed under the old
    /// one, and the recorder follows the new one's inputs and reference profile.
    pub(crate) async fn switch(&self, model_ref: ModelRef, model: &ModelConfig, session: &Session) {
        // First: a fetch for the old version must not land after the new recorder.
        if let Some(earlier) = self.fetching.lock().ok().and_then(|mut f| f.take()) {
            earlier.abort();
        }
        let plan = Plan::of(model, session);
        let profile = fetch_profile(&self.collector, &model_ref, FIRST_FETCH).await;
        let missing = profile.is_none();
        let fresh = plan.recorder(profile);
        let old = self.recorder.lock().ok().and_then(|mut r| {
            let summary = r.take_summary(now_ms(), true);
            *r = fresh;
            summary
        });
        if missing {
            self.keep_fetching(model_ref.clone(), plan);
        }
        if let Some(summary) = old {
            self.push(summary);
        }
        if let Err(e) = self.shipper.set_model(model_ref) {
            tracing::error!(error = %e, "telemetry could not switch to the new model version");
        }
    }

    /// The inputs as the recorder reads them, when it reads them (before the run consumes them).
    pub(crate) fn inputs(&self, inputs: &[(String, Tensor)]) -> Vec<FlatTensor> {
        match self.recorder.lock().is_ok_and(|r| r.wants_inputs()) {
            true => inputs.iter().map(|(n, t)| flatten(n, t)).collect(),
            false => Vec::new(),
        }
    }

    /// Records a successful run; returns its prediction ids.
    pub(crate) fn run(
        &self,
        inputs: &[FlatTensor],
        outputs: &[(String, Tensor)],
        latency: Duration,
        gpu: bool,
    ) -> Vec<String> {
        let Ok(mut recorder) = self.recorder.lock() else { return Vec::new() };
        let output = recorder
            .summarised_output(outputs.iter().map(|(n, _)| n.as_str()))
            .and_then(|name| outputs.iter().find(|(n, _)| n == name))
            .map(|(n, t)| flatten(n, t));
        let inputs: Vec<_> = inputs.iter().map(FlatTensor::as_flat).collect();
        let run = telemetry::Run {
            inputs: &inputs,
            output: output.as_ref().map(FlatTensor::as_flat),
            latency_us: u32::try_from(latency.as_micros()).unwrap_or(u32::MAX),
            engine: if gpu { telemetry::EngineKind::Gpu } else { telemetry::EngineKind::Cpu },
        };
        // Random per run: the ids a caller sees tell it neither the batch ids to come nor any
        // other caller's prediction ids (which a key holder could otherwise claim first).
        let id = telemetry_client::random_id();
        let (ids, records) = recorder.record(&run, &id, now_ms());
        drop(recorder);
        records.into_iter().for_each(|r| self.push(r));
        ids
    }

    /// Records a refused or failed run.
    pub(crate) fn error(&self, kind: telemetry::ErrorKind, message: &str) {
        let message = message.chars().take(1024).collect();
        self.push(Record::Error(telemetry::ErrorRecord { timestamp_ms: now_ms(), kind, message }));
    }

    fn push(&self, record: Record) {
        if let Err(e) = self.shipper.push(record) {
            tracing::error!(error = %e, "a telemetry record was refused");
        }
    }

    /// At shutdown: the last feature summary, then whatever can be delivered in `timeout` (the
    /// rest stays spooled).
    pub(crate) async fn flush(&self, timeout: Duration) {
        let summary = self.recorder.lock().ok().and_then(|mut r| r.take_summary(now_ms(), true));
        if let Some(summary) = summary {
            self.push(summary);
        }
        self.shipper.flush(timeout).await;
    }
}

/// The model version's reference profile, if the collector gives it within `timeout`.
async fn fetch_profile(collector: &CollectorConfig, model: &ModelRef, timeout: Duration) -> Option<Profile> {
    let url =
        format!("{}/v1/models/{}/versions/{}/profile", collector.url.trim_end_matches('/'), model.name, model.version);
    let client = match tls::http_client().and_then(|b| b.timeout(timeout).build().map_err(tls::TlsError::client)) {
        Ok(client) => client,
        Err(e) => {
            tracing::error!(%url, error = %e, "cannot fetch the reference profile");
            return None;
        }
    };
    let response = client.get(&url).bearer_auth(&collector.key).send().await;
    match response {
        Ok(r) if r.status().is_success() => match r.json::<Profile>().await {
            Ok(profile) => Some(profile),
            Err(e) => {
                tracing::warn!(%url, error = %e, "the reference profile is not readable; no feature summaries");
                None
            }
        },
        Ok(r) => {
            tracing::warn!(%url, status = %r.status(), "no reference profile; no feature summaries until there is");
            None
        }
        Err(e) => {
            tracing::warn!(%url, error = %e, "the collector is unreachable; no feature summaries until it answers");
            None
        }
    }
}

fn flatten(name: &str, tensor: &Tensor) -> FlatTensor {
    FlatTensor {
        name: name.to_owned(),
        shape: tensor.shape().to_vec(),
        values: tensor.data().to_f64_vec(),
        integral: !matches!(tensor.data(), TensorData::F32(_) | TensorData::F64(_)),
    }
}
