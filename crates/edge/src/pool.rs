//! The inference pool: at most `workers` runs at once on blocking threads, at most `queue` waiting,
//! each bounded by `timeout`. Inference compute cannot be interrupted, so a run that times out
//! finishes on its thread while the caller gets its answer; the permit it holds keeps the pool's
//! bound true meanwhile.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use runtime::{Session, Tensor};
use tokio::sync::Semaphore;

use crate::config::Limits;

#[derive(Debug)]
pub struct Pool {
    workers: Arc<Semaphore>,
    /// Runs admitted: running plus waiting.
    admitted: Arc<AtomicUsize>,
    limits: Limits,
    timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PoolError {
    #[error("all {workers} workers are busy and {queue} requests are waiting; retry later")]
    Busy { workers: usize, queue: usize },
    #[error("the inference took longer than {0:?}")]
    Timeout(Duration),
    #[error(transparent)]
    Runtime(#[from] runtime::Error),
    #[error("the inference thread failed: {0}")]
    Join(String),
}

impl PoolError {
    /// The request did not fit the model (as opposed to the host failing to run it).
    pub fn is_bad_input(&self) -> bool {
        match self {
            PoolError::Runtime(e) => !matches!(e, runtime::Error::Engine { .. } | runtime::Error::EngineRefused { .. }),
            _ => false,
        }
    }
}

/// Gives an admission back however the run ends.
struct Admitted(Arc<AtomicUsize>);

impl Drop for Admitted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Pool {
    pub fn new(limits: &Limits) -> Pool {
        Pool {
            workers: Arc::new(Semaphore::new(limits.workers)),
            admitted: Arc::new(AtomicUsize::new(0)),
            limits: *limits,
            timeout: Duration::from_millis(limits.timeout_ms),
        }
    }

    /// Runs `session` on `inputs` on a worker thread.
    pub async fn run(
        &self,
        session: Arc<Session>,
        inputs: Vec<(String, Tensor)>,
    ) -> Result<Vec<(String, Tensor)>, PoolError> {
        let previous = self.admitted.fetch_add(1, Ordering::AcqRel);
        let admitted = Admitted(self.admitted.clone());
        if previous >= self.limits.workers + self.limits.queue {
            return Err(PoolError::Busy { workers: self.limits.workers, queue: self.limits.queue });
        }
        let work = async move {
            let permit = self.workers.clone().acquire_owned().await.map_err(|e| PoolError::Join(e.to_string()))?;
            let task = tokio::task::spawn_blocking(move || {
                let _permit = permit;
                let _admitted = admitted;
                pollster::block_on(session.run(inputs))
            });
            task.await.map_err(|e| PoolError::Join(e.to_string()))?.map_err(PoolError::from)
        };
        tokio::time::timeout(self.timeout, work).await.map_err(|_| PoolError::Timeout(self.timeout))?
    }
}
