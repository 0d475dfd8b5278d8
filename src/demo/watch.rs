//! What the demo prints while it runs: progress every 15 s, and each alert as it fires or
//! resolves — read from the collector's API with the read key, as the dashboard reads it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Context, Result};

use super::traffic::{Clients, interval};

#[derive(Debug)]
pub struct Watcher {
    http: reqwest::Client,
    collector: String,
    read_key: String,
    /// Alert id → the state last printed.
    printed: Mutex<BTreeMap<i64, String>>,
}

impl Watcher {
    pub fn new(collector: &str, read_key: &str, http: reqwest::Client) -> Arc<Watcher> {
        Arc::new(Watcher {
            http,
            collector: collector.to_owned(),
            read_key: read_key.to_owned(),
            printed: Mutex::default(),
        })
    }

    async fn get(&self, path: &str) -> Result<serde_json::Value> {
        let url = format!("{}{path}", self.collector);
        let response =
            self.http.get(&url).bearer_auth(&self.read_key).send().await.with_context(|| format!("GET {url}"))?;
        let response = response.error_for_status().with_context(|| format!("GET {url}"))?;
        response.json().await.with_context(|| format!("GET {url}: the answer"))
    }

    /// Every alert the collector holds, newest first.
    pub async fn alerts(&self) -> Result<Vec<serde_json::Value>> {
        let answer = self.get("/v1/alerts?limit=1000").await?;
        Ok(answer["alerts"].as_array().cloned().unwrap_or_default())
    }

    /// Predictions stored per model.
    pub async fn stored(&self) -> Result<BTreeMap<String, i64>> {
        let answer = self.get("/v1/models").await?;
        let models = answer["models"].as_array().cloned().unwrap_or_default();
        Ok(models
            .iter()
            .filter_map(|m| Some((m["name"].as_str()?.to_owned(), m["predictions"].as_i64().unwrap_or(0))))
            .fold(BTreeMap::new(), |mut sum, (name, n)| {
                *sum.entry(name).or_default() += n;
                sum
            }))
    }

    /// Prints alerts that fired or resolved since the last call.
    pub async fn print_alerts(&self) -> Result<()> {
        let mut alerts = self.alerts().await?;
        alerts.reverse();
        let mut printed = self.printed.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for alert in alerts {
            let (Some(id), Some(state)) = (alert["id"].as_i64(), alert["state"].as_str()) else { continue };
            if printed.get(&id).is_some_and(|s| s == state) {
                continue;
            }
            printed.insert(id, state.to_owned());
            let subject =
                alert["subject"].as_str().filter(|s| !s.is_empty()).map(|s| format!(" [{s}]")).unwrap_or_default();
            println!(
                "  {} {:<8} {}/{} {}{subject}: {}",
                if state == "firing" { "ALERT  " } else { "resolved" },
                alert["severity"].as_str().unwrap_or("?"),
                alert["model"].as_str().unwrap_or("?"),
                alert["version"].as_str().unwrap_or("?"),
                alert["rule"].as_str().unwrap_or("?"),
                alert["message"].as_str().unwrap_or(""),
            );
        }
        Ok(())
    }

    /// Alerts every 5 s and progress every 15 s, until the clients stop.
    pub async fn run(self: Arc<Self>, clients: Arc<Clients>, started: Instant) {
        let (mut ticks, mut stopped) = (interval(1), clients.subscribe());
        let mut second = 0u64;
        while clients.ticks(&mut ticks, &mut stopped).await {
            second += 1;
            if second.is_multiple_of(5)
                && let Err(e) = self.print_alerts().await
            {
                eprintln!("  watcher: {e:#}");
            }
            if second.is_multiple_of(15) {
                self.progress(&clients, started).await;
            }
        }
    }

    async fn progress(&self, clients: &Clients, started: Instant) {
        let stored = self.stored().await.unwrap_or_default();
        let phase = if clients.drifting() { "drift" } else { "clean" };
        let parts: Vec<String> = clients
            .counts()
            .iter()
            .map(|(model, (predictions, labels))| {
                let kept = stored.get(model).copied().unwrap_or(0);
                format!("{model}: {predictions} predictions sent ({kept} stored), {labels} labels")
            })
            .collect();
        let failed = clients.failed.load(std::sync::atomic::Ordering::Relaxed);
        let failed = if failed > 0 { format!("; {failed} calls failed") } else { String::new() };
        println!("[{:>4} s {phase}] {}{failed}", started.elapsed().as_secs(), parts.join("; "));
    }
}
