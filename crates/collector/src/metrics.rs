//! The collector's own health, as Prometheus text at `GET /metrics`.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

type Labels = [(&'static str, &'static str); 1];

#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    batches: Family<Labels, Counter>,
    records: Family<Labels, Counter>,
    rejected_records: Family<Labels, Counter>,
    refused_requests: Family<Labels, Counter>,
    in_flight: Gauge,
    storage_seconds: Family<Labels, Histogram>,
}

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
        Metrics { registry, batches, records, rejected_records, refused_requests, in_flight, storage_seconds }
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

    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
