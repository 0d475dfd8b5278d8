//! Each served model's telemetry: a [`RunRecorder`] (predictions per row, feature counts against
//! the profile fetched from the collector) feeding a spooled [`Shipper`], so records survive an
//! unreachable collector and host restarts.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use runtime::{Session, Tensor, TensorData};
use telemetry::{Batcher, BatcherConfig, FlatTensor, ModelRef, Profile, Record, RecorderConfig, RunRecorder};
use telemetry_client::{HttpTransport, Shipper, now_ms};

use crate::config::{CollectorConfig, ModelConfig};

#[derive(Debug)]
pub(crate) struct Recording {
    shipper: Shipper,
    recorder: Mutex<RunRecorder<Arc<Profile>>>,
    /// Prediction ids are `{prefix}-{n}`: a random prefix per host run, not the batches'
    /// session, so the ids callers see do not tell anyone the batch ids to come.
    id_prefix: String,
    next_id: AtomicU64,
    collector: CollectorConfig,
}

impl Recording {
    pub(crate) async fn start(
        collector: &CollectorConfig,
        node: &str,
        model: &ModelConfig,
        model_ref: ModelRef,
        session: &Session,
    ) -> Result<Recording, telemetry_client::SpoolError> {
        let recorder = recorder(collector, model, &model_ref, session).await;
        let config = BatcherConfig::default();
        let run_id = format!("{node}-{}-{}", model.name, telemetry_client::random_id());
        let source = telemetry::Source {
            kind: telemetry::SourceKind::Edge,
            node: node.to_owned(),
            sdk_version: env!("CARGO_PKG_VERSION").to_owned(),
        };
        let batcher = Batcher::new(config, source, model_ref, run_id);
        let transport = HttpTransport::new(&collector.url, collector.key.clone());
        let shipper = Shipper::spawn_spooled(batcher, transport, &collector.spool.join(&model.name))?;
        Ok(Recording {
            shipper,
            recorder: Mutex::new(recorder),
            id_prefix: telemetry_client::random_id(),
            next_id: AtomicU64::new(0),
            collector: collector.clone(),
        })
    }

    /// A new version of the model is served from now on: what is open is sealed under the old
    /// one, and the recorder follows the new one's inputs and reference profile.
    pub(crate) async fn switch(&self, model_ref: ModelRef, model: &ModelConfig, session: &Session) {
        let fresh = recorder(&self.collector, model, &model_ref, session).await;
        let old = self.recorder.lock().ok().and_then(|mut r| {
            let summary = r.take_summary(now_ms(), true);
            *r = fresh;
            summary
        });
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
        let id = format!("{}-{}", self.id_prefix, self.next_id.fetch_add(1, Ordering::Relaxed));
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

/// A recorder for `session`'s inputs, against the model version's reference profile when the
/// collector has one.
async fn recorder(
    collector: &CollectorConfig,
    model: &ModelConfig,
    model_ref: &ModelRef,
    session: &Session,
) -> RunRecorder<Arc<Profile>> {
    let profile = fetch_profile(collector, model_ref).await;
    let widths: Vec<(&str, usize)> =
        session.inputs().iter().map(|i| (i.name.as_str(), i.row_width().unwrap_or(0))).collect();
    RunRecorder::new(
        profile.map(Arc::new),
        &widths,
        RecorderConfig {
            output: model.output.clone(),
            classes: model.classes.clone(),
            summary_every_ms: BatcherConfig::default().max_age_ms,
            ..RecorderConfig::default()
        },
    )
}

async fn fetch_profile(collector: &CollectorConfig, model: &ModelRef) -> Option<Profile> {
    let url =
        format!("{}/v1/models/{}/versions/{}/profile", collector.url.trim_end_matches('/'), model.name, model.version);
    let response = reqwest::Client::new().get(&url).bearer_auth(&collector.key).send().await;
    match response {
        Ok(r) if r.status().is_success() => match r.json::<Profile>().await {
            Ok(profile) => Some(profile),
            Err(e) => {
                tracing::warn!(%url, error = %e, "the reference profile is not readable; no feature summaries");
                None
            }
        },
        Ok(r) => {
            tracing::warn!(%url, status = %r.status(), "no reference profile; no feature summaries");
            None
        }
        Err(e) => {
            tracing::warn!(%url, error = %e, "the collector is unreachable; no feature summaries until a restart");
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
