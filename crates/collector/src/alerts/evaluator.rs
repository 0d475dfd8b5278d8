//! One evaluation pass: every rule on the current window of every model version it applies to;
//! new subjects fire, subjects no longer firing resolve, and the main signals go to Prometheus.

use std::collections::{BTreeSet, HashMap};

use analysis::drift::Policy;
use telemetry::Profile;

use super::rule::{Evidence, Firing, Rule};
use super::{AlertQuery, AlertRow, NewAlert};
use crate::config::Monitoring;
use crate::metrics::{Metrics, ModelSignals};
use crate::monitor::{self, DriftReport, IntegrityReport, Span, Width, WindowData};
use crate::store::{ModelVersion, Store, StoreError};

/// What a pass changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Outcome {
    pub rules: usize,
    pub model_versions: usize,
    pub fired: usize,
    pub resolved: usize,
    /// Model versions whose evaluation failed (logged); the others were judged.
    pub failed: usize,
}

/// The rules the store holds (config rules are written there at start-up, API rules join them);
/// a stored rule that no longer parses is skipped with a warning, not fatal.
pub async fn stored_rules(store: &dyn Store) -> Result<Vec<Rule>, StoreError> {
    Ok(store
        .alert_rules()
        .await?
        .into_iter()
        .filter_map(|(name, body)| match serde_json::from_str::<Rule>(&body) {
            Ok(rule) => Some(rule),
            Err(e) => {
                tracing::warn!(rule = %name, error = %e, "skipping a stored alert rule that does not parse");
                None
            }
        })
        .collect())
}

/// One window's data and the reports the rules need, computed once per model version and width.
struct Judged {
    span: Span,
    data: WindowData,
    drift: DriftReport,
    integrity: IntegrityReport,
}

async fn judge(
    store: &dyn Store,
    profile: Option<&Profile>,
    model: &str,
    version: &str,
    width: Width,
    now_ms: i64,
) -> Result<Judged, StoreError> {
    let span = width.containing(now_ms);
    let data = store.window(model.to_owned(), version.to_owned(), span).await?;
    let previous = store.window(model.to_owned(), version.to_owned(), span.previous()).await?;
    let drift = monitor::drift(profile, span, &data, &previous, &Policy::default());
    let integrity = monitor::integrity(profile, span, &data);
    Ok(Judged { span, data, drift, integrity })
}

pub async fn evaluate(
    store: &dyn Store,
    settings: &Monitoring,
    metrics: &Metrics,
    now_ms: i64,
) -> Result<Outcome, StoreError> {
    // Open alerts before rules: an alert fired meanwhile by another evaluator then has its rule in
    // `rules`, and is not taken for the alert of a deleted rule.
    let open = store.alerts(AlertQuery { model: None, firing_only: true, limit: usize::MAX }).await?;
    let rules = stored_rules(store).await?;
    let mut open: OpenAlerts = open
        .into_iter()
        .map(|a| ((a.rule.clone(), a.model.clone(), a.version.clone(), a.subject.clone()), a))
        .collect();
    let listed = store.model_versions().await?;
    let latest = latest_versions(&listed);
    let versions: BTreeSet<(String, String)> = listed.into_iter().map(|m| (m.name, m.version)).collect();
    let mut outcome = Outcome { rules: rules.len(), model_versions: versions.len(), ..Outcome::default() };
    let pass = Pass { store, settings, metrics, now_ms, rules: &rules };
    for key @ (model, version) in &versions {
        let newest = latest.contains(key);
        // One model version's failing read costs that version its verdicts, not the others theirs.
        if let Err(e) = pass.version(model, version, newest, &mut open, &mut outcome).await {
            tracing::error!(%model, %version, error = %e, "evaluating a model version failed; the pass goes on");
            outcome.failed += 1;
        }
    }
    // Alerts of rules that no longer exist (deleted, renamed) would fire forever: they resolve.
    let names: BTreeSet<&str> = rules.iter().map(|r| r.name.as_str()).collect();
    for alert in open.into_values().filter(|a| !names.contains(a.rule.as_str())) {
        if store.resolve_alert(alert.id, now_ms, settings.webhooks.clone()).await? {
            tracing::info!(rule = %alert.rule, model = %alert.model, "alert of a removed rule resolved");
            outcome.resolved += 1;
        }
    }
    let firing = store.alerts(AlertQuery { model: None, firing_only: true, limit: usize::MAX }).await?;
    metrics.firing_alerts(&firing);
    Ok(outcome)
}

/// What one pass judges with.
struct Pass<'a> {
    store: &'a dyn Store,
    settings: &'a Monitoring,
    metrics: &'a Metrics,
    now_ms: i64,
    rules: &'a [Rule],
}

/// Each model's version with the most recent batch: its gauges stay while it is silent (silence
/// is worth a graph); older versions' go once they have no traffic in the window.
fn latest_versions(versions: &[ModelVersion]) -> BTreeSet<(String, String)> {
    let mut latest: HashMap<&str, (Option<i64>, &str)> = HashMap::new();
    for v in versions {
        let entry = latest.entry(v.name.as_str()).or_insert((v.last_batch_seq, v.version.as_str()));
        if v.last_batch_seq > entry.0 {
            *entry = (v.last_batch_seq, v.version.as_str());
        }
    }
    latest.into_iter().map(|(name, (_, version))| (name.to_owned(), version.to_owned())).collect()
}

type OpenAlerts = HashMap<(String, String, String, String), AlertRow>;

impl Pass<'_> {
    /// Every rule on one model version: new subjects fire, subjects no longer firing resolve
    /// (their alerts leave `open`). `newest`: its model's newest version (see [`latest_versions`]).
    async fn version(
        &self,
        model: &str,
        version: &str,
        newest: bool,
        open: &mut OpenAlerts,
        outcome: &mut Outcome,
    ) -> Result<(), StoreError> {
        let (store, settings, now_ms) = (self.store, self.settings, self.now_ms);
        // A profile that does not parse costs its model version the drift rules, not the pass.
        let profile = match monitor::stored_profile(store, model, version).await {
            Err(e @ StoreError::Corrupt { .. }) => {
                tracing::warn!(%model, %version, error = %e, "the stored profile does not parse");
                None
            }
            other => other?,
        };
        let mut judged: HashMap<Width, Judged> = HashMap::new();
        let applying = || self.rules.iter().filter(|r| r.applies_to(model));
        let widths: BTreeSet<Width> = applying().map(|r| r.window).chain(std::iter::once(settings.window)).collect();
        for width in widths {
            judged.insert(width, judge(store, profile.as_ref(), model, version, width, now_ms).await?);
        }
        if let Some(j) = judged.get(&settings.window) {
            let signals = signals(j);
            if newest || signals.rows > 0 || signals.predictions > 0 {
                self.metrics.model_signals(model, version, &signals);
            } else {
                self.metrics.forget_model(model, version);
            }
        }
        for rule in applying() {
            let Some(j) = judged.get(&rule.window) else { continue };
            let evidence = Evidence { data: &j.data, drift: Some(&j.drift), integrity: Some(&j.integrity) };
            let Some(firing) = rule.evaluate(&evidence) else { continue };
            let firing: HashMap<String, Firing> = firing.into_iter().map(|f| (f.subject.clone(), f)).collect();
            for (subject, f) in &firing {
                let key = (rule.name.clone(), model.to_owned(), version.to_owned(), subject.clone());
                if open.remove(&key).is_some() {
                    continue;
                }
                let alert = NewAlert {
                    rule: rule.name.clone(),
                    model: model.to_owned(),
                    version: version.to_owned(),
                    subject: subject.clone(),
                    metric: rule.metric.as_str().to_owned(),
                    severity: rule.severity.as_str().to_owned(),
                    value: f.value,
                    threshold: f.threshold,
                    message: f.message.clone(),
                    window_start_ms: j.span.start_ms,
                    started_ms: now_ms,
                };
                if store.fire_alert(alert, settings.webhooks.clone()).await?.is_some() {
                    tracing::warn!(rule = %rule.name, %model, %version, %subject, message = %f.message, "alert firing");
                    outcome.fired += 1;
                }
            }
            let stale: Vec<_> = open
                .keys()
                .filter(|(r, m, v, s)| *r == rule.name && m == model && v == version && !firing.contains_key(s))
                .cloned()
                .collect();
            for key in stale {
                if let Some(alert) = open.remove(&key)
                    && store.resolve_alert(alert.id, now_ms, settings.webhooks.clone()).await?
                {
                    tracing::info!(rule = %alert.rule, %model, %version, subject = %alert.subject, "alert resolved");
                    outcome.resolved += 1;
                }
            }
        }
        Ok(())
    }
}

fn signals(j: &Judged) -> ModelSignals {
    let drift = j.drift.vs_reference.as_ref();
    ModelSignals {
        rows: j.data.features.rows,
        predictions: j.data.predictions(),
        drift_share: drift.map(|d| d.share),
        drifted_features: drift.map(|d| d.drifted_columns as u64),
        integrity_findings: j.integrity.findings.len() as u64,
        accuracy: (j.data.confusion.n() > 0).then(|| j.data.confusion.accuracy().value),
        error_rate: j.data.error_rate(),
        latency_mean_ms: j.data.latency_mean_ms(),
    }
}

/// Runs [`evaluate`] every `settings.evaluate_every` until the collector stops.
pub async fn run(collector: std::sync::Arc<crate::Collector>) {
    let every = std::time::Duration::from_millis(collector.config().monitoring.evaluate_every.ms().unsigned_abs());
    // The first pass one period after start: a collector that just started has little to judge.
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if let Err(e) = collector.evaluate_alerts(crate::now_ms()).await {
            tracing::error!(error = %e, "alert evaluation failed; trying again next tick");
        }
    }
}
