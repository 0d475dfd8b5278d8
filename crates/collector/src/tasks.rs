//! The collector's background tasks (alert evaluation, webhook delivery, rollup compaction),
//! supervised: a task that panics is logged, counted and started again a second later, so one bad
//! input never silently stops monitoring while `/healthz` says ok; `/healthz` names each restart.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinHandle;

/// Restarts per task, with the last panic's message.
#[derive(Debug, Default)]
pub struct Health {
    restarts: Mutex<BTreeMap<&'static str, (u64, String)>>,
}

impl Health {
    /// `ok`, then a line per task that has restarted.
    pub fn report(&self) -> String {
        let mut out = String::from("ok\n");
        if let Ok(restarts) = self.restarts.lock() {
            for (task, (n, last)) in restarts.iter() {
                out.push_str(&format!("{task}: restarted {n} times after panics; last: {last}\n"));
            }
        }
        out
    }

    fn restarted(&self, task: &'static str, message: String) {
        if let Ok(mut restarts) = self.restarts.lock() {
            let entry = restarts.entry(task).or_default();
            entry.0 += 1;
            entry.1 = message;
        }
    }
}

/// Runs `task` until it returns, starting it again whenever it panics. Aborting the handle stops
/// the task too.
pub fn supervise<F, Fut>(health: Arc<Health>, name: &'static str, task: F) -> JoinHandle<()>
where
    F: Fn() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    tokio::spawn(async move {
        loop {
            let mut run = AbortOnDrop(tokio::spawn(task()));
            match (&mut run.0).await {
                Err(e) if e.is_panic() => {
                    let payload = e.into_panic();
                    let message = payload
                        .downcast_ref::<&str>()
                        .map(|s| (*s).to_owned())
                        .or_else(|| payload.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "(no message)".to_owned());
                    tracing::error!(task = name, panic = %message, "a background task panicked; restarting it");
                    health.restarted(name, message);
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                _ => return,
            }
        }
    })
}

/// The supervised task's handle: when the supervisor is aborted, the task goes with it.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn a_task_that_panics_is_restarted_and_reported() {
        let (health, runs) = (Arc::new(Health::default()), Arc::new(AtomicUsize::new(0)));
        let counted = runs.clone();
        let supervisor = supervise(health.clone(), "evaluator", move || {
            let runs = counted.clone();
            async move {
                if runs.fetch_add(1, Ordering::SeqCst) == 0 {
                    panic!("a profile indexed past its counts");
                }
            }
        });
        tokio::time::timeout(Duration::from_secs(10), supervisor).await.unwrap().unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), 2, "started again after the panic");
        assert_eq!(
            health.report(),
            "ok\nevaluator: restarted 1 times after panics; last: a profile indexed past its counts\n"
        );
    }
}
