//! The collector's own health, as Prometheus text at `GET /metrics`.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

type Labels = [(&'static str, &'static str); 1];
type ModelLabels = [(&'static str, String); 2];
type FloatGauge = Gauge<f64, std::sync::atomic::AtomicU64>;

/// A model version's main signals on its current window, as the alert evaluator last saw them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ModelSignals {
    pub rows: u64,
    pub predictions: u64,
    pub drift_share: Option<f64>,
    pub drifted_features: Option<u64>,
    pub integrity_findings: u64,
    pub accuracy: Option<f64>,
    pub error_rate: f64,
    pub latency_mean_ms: f64,
}

#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    batches: Family<Labels, Counter>,
    records: Family<Labels, Counter>,
    rejected_records: Family<Labels, Counter>,
    refused_requests: Family<Labels, Counter>,
    in_flight: Gauge,
    storage_seconds: Family<Labels, Histogram>,
    model_gauges: Vec<(&'static str, Family<ModelLabels, FloatGauge>)>,
    firing_alerts: Family<[(&'static str, String); 3], Gauge>,
}

/// Per model version gauges: (name, help).
const MODEL_GAUGES: [(&str, &str); 8] = [
    ("window_rows", "Feature rows in the current window"),
    ("window_predictions", "Predictions in the current window"),
    ("drift_share", "Share of features drifted against the reference profile"),
    ("drifted_features", "Features drifted against the reference profile"),
    ("integrity_findings", "Data-integrity findings in the current window"),
    ("accuracy", "Accuracy on the current window's labelled predictions"),
    ("error_rate", "Failed inferences over attempts in the current window"),
    ("latency_mean_ms", "Mean inference latency in the current window, milliseconds"),
];

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("sextant_collector");
        let batches = Family::<Labels, Counter>::default();
        registry.register("batches", "Batches received, by outcome (stored, duplicate)", batches.clone());
        let records = Family::<Labels, Counter>::default();
        registry.register("records", "Records stored, by kind", records.clone());
        let rejected_records = Family::<Labels, Counter>::default();
        registry.register(
            "rejected_records",
            "Records refused inside accepted batches, by reason",
            rejected_records.clone(),
        );
        let refused_requests = Family::<Labels, Counter>::default();
        registry.register(
            "refused_requests",
            "Requests refused whole (nothing stored), by reason",
            refused_requests.clone(),
        );
        let in_flight = Gauge::default();
        registry.register(
            "in_flight",
            "Uploads being decoded or stored now (the ingest queue depth)",
            in_flight.clone(),
        );
        let storage_seconds = Family::<Labels, Histogram>::new_with_constructor(
            (|| Histogram::new(exponential_buckets(0.0005, 2.0, 14))) as fn() -> Histogram,
        );
        registry.register("storage_seconds", "Time to commit, by operation", storage_seconds.clone());
        let mut monitoring = registry.sub_registry_with_prefix("model");
        let model_gauges = MODEL_GAUGES
            .iter()
            .map(|&(name, help)| {
                let family = Family::<ModelLabels, FloatGauge>::default();
                monitoring.register(name, help, family.clone());
                (name, family)
            })
            .collect();
        monitoring = registry.sub_registry_with_prefix("alerts");
        let firing_alerts = Family::<[(&'static str, String); 3], Gauge>::default();
        monitoring.register("firing", "Alerts firing now, by model, version and severity", firing_alerts.clone());
        Metrics {
            registry,
            batches,
            records,
            rejected_records,
            refused_requests,
            in_flight,
            storage_seconds,
            model_gauges,
            firing_alerts,
        }
    }
}

impl Metrics {
    pub fn batch(&self, outcome: &'static str) {
        self.batches.get_or_create(&[("outcome", outcome)]).inc();
    }

    pub fn records(&self, kind: &'static str, n: u64) {
        self.records.get_or_create(&[("kind", kind)]).inc_by(n);
    }

    pub fn rejected_records(&self, reason: &'static str, n: u64) {
        self.rejected_records.get_or_create(&[("reason", reason)]).inc_by(n);
    }

    pub fn refused(&self, reason: &'static str) {
        self.refused_requests.get_or_create(&[("reason", reason)]).inc();
    }

    pub fn in_flight(&self) -> &Gauge {
        &self.in_flight
    }

    pub fn storage(&self, operation: &'static str, seconds: f64) {
        self.storage_seconds.get_or_create(&[("operation", operation)]).observe(seconds);
    }

    pub fn model_signals(&self, model: &str, version: &str, signals: &ModelSignals) {
        let labels: ModelLabels = [("model", model.to_owned()), ("version", version.to_owned())];
        let values = [
            Some(signals.rows as f64),
            Some(signals.predictions as f64),
            signals.drift_share,
            signals.drifted_features.map(|n| n as f64),
            Some(signals.integrity_findings as f64),
            signals.accuracy,
            Some(signals.error_rate),
            Some(signals.latency_mean_ms),
        ];
        for ((_, family), value) in self.model_gauges.iter().zip(values) {
            match value {
                Some(v) => {
                    family.get_or_create(&labels).set(v);
                }
                None => {
                    family.remove(&labels);
                }
            }
        }
    }

    /// Removes a model version's gauges: it is stale (a newer version of its model is served and
    /// it had no traffic in the window), and Prometheus should not keep scraping it.
    pub fn forget_model(&self, model: &str, version: &str) {
        let labels: ModelLabels = [("model", model.to_owned()), ("version", version.to_owned())];
        for (_, family) in &self.model_gauges {
            family.remove(&labels);
        }
    }

    /// Sets the firing-alert gauges from the full list of firing alerts.
    pub fn firing_alerts(&self, firing: &[crate::alerts::AlertRow]) {
        self.firing_alerts.clear();
        for alert in firing {
            let labels = [
                ("model", alert.model.clone()),
                ("version", alert.version.clone()),
                ("severity", alert.severity.clone()),
            ];
            self.firing_alerts.get_or_create(&labels).inc();
        }
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
