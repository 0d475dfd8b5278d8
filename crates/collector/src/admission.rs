//! Admission: how much upload work the collector takes on at once. Every upload holds a slot
//! while it is read, decoded and stored (a count), and while it is decoded a share of the decode
//! budget (memory, estimated from its decoded size, so a thousand tiny records weigh what they
//! will cost). Beyond either the answer is 429 with `Retry-After`: bounded work, never a queue.
//! Reads (`GET /v1/…`) hold a read slot each; one waits a moment for a slot (a dashboard asks for
//! its panels at once), then gets 503.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::metrics::gauge::Gauge;
use telemetry::Encoding;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Estimated memory of a decoded document per decoded byte, at worst: MessagePack packs an
/// empty string or list into one byte that decodes to a 24-byte value.
pub fn decode_factor(encoding: Encoding) -> usize {
    match encoding {
        Encoding::Json => 8,
        Encoding::MessagePack => 16,
    }
}

#[derive(Debug)]
pub struct Admission {
    slots: Arc<Semaphore>,
    slot_count: usize,
    /// KiB of estimated decode memory.
    memory: Arc<Semaphore>,
    budget_kib: usize,
    reads: Arc<Semaphore>,
    read_count: usize,
}

/// Why an upload was not admitted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("{limit} uploads are in flight; retry later")]
    Slots { limit: usize },
    #[error(
        "decoding this upload needs about {needed_kib} KiB and the decode budget of {budget_kib} KiB is taken \
         by uploads in flight; retry later"
    )]
    Memory { needed_kib: usize, budget_kib: usize },
    #[error("{limit} reads are in flight and none finished within {waited_ms} ms; retry later")]
    Reads { limit: usize, waited_ms: u128 },
}

/// One upload's slot; frees itself (and its gauge) when dropped.
#[derive(Debug)]
pub struct Slot {
    _permit: OwnedSemaphorePermit,
    gauge: Gauge,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.gauge.dec();
    }
}

impl Admission {
    /// `slots` uploads and `reads` reads at once, and `budget_bytes` of decode memory, raised to
    /// one largest upload's (`max_decoded_bytes` of MessagePack) so that any upload within the
    /// size limits is decoded on an idle collector.
    pub fn new(slots: usize, reads: usize, budget_bytes: usize, max_decoded_bytes: usize) -> Admission {
        let largest = max_decoded_bytes.saturating_mul(decode_factor(Encoding::MessagePack)).div_ceil(1024);
        // A reservation is counted in a u32.
        let budget_kib = (budget_bytes / 1024).max(largest).clamp(1, u32::MAX as usize).min(Semaphore::MAX_PERMITS);
        let (slot_count, read_count) = (slots.max(1), reads.max(1));
        Admission {
            slots: Arc::new(Semaphore::new(slot_count)),
            slot_count,
            memory: Arc::new(Semaphore::new(budget_kib)),
            budget_kib,
            reads: Arc::new(Semaphore::new(read_count)),
            read_count,
        }
    }

    /// A slot for one read, waiting at most `wait` for one to free.
    pub async fn read(&self, wait: Duration) -> Result<OwnedSemaphorePermit, Refused> {
        let refused = Refused::Reads { limit: self.read_count, waited_ms: wait.as_millis() };
        match tokio::time::timeout(wait, self.reads.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            // Never closed; a timeout is the refusal.
            Ok(Err(_)) | Err(_) => Err(refused),
        }
    }

    /// A slot for one upload; `gauge` counts the slots taken.
    pub fn slot(&self, gauge: &Gauge) -> Result<Slot, Refused> {
        let permit = self.slots.clone().try_acquire_owned().map_err(|_| Refused::Slots { limit: self.slot_count })?;
        gauge.inc();
        Ok(Slot { _permit: permit, gauge: gauge.clone() })
    }

    /// Decode memory for `decoded_bytes` of `encoding`, held until the permit drops.
    pub fn memory(&self, decoded_bytes: usize, encoding: Encoding) -> Result<OwnedSemaphorePermit, Refused> {
        let needed_kib = decoded_bytes.saturating_mul(decode_factor(encoding)).div_ceil(1024).clamp(1, self.budget_kib);
        let refused = || Refused::Memory { needed_kib, budget_kib: self.budget_kib };
        let permits = u32::try_from(needed_kib).map_err(|_| refused())?;
        self.memory.clone().try_acquire_many_owned(permits).map_err(|_| refused())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_decode_budget_bounds_uploads_in_flight_and_always_fits_one() {
        // A budget below one largest upload is raised to it: 64 KiB of MessagePack is 1 MiB.
        let admission = Admission::new(4, 1, 0, 64 << 10);
        let first = admission.memory(64 << 10, Encoding::MessagePack).unwrap();
        assert_eq!(
            admission.memory(1, Encoding::Json).unwrap_err(),
            Refused::Memory { needed_kib: 1, budget_kib: 1024 },
            "the budget is taken"
        );
        drop(first);
        let halves = [admission.memory(32 << 10, Encoding::MessagePack), admission.memory(64 << 10, Encoding::Json)];
        assert!(halves.iter().all(Result::is_ok), "512 KiB each fit together");
        let over = admission.memory(usize::MAX, Encoding::Json).unwrap_err();
        assert!(over.to_string().contains("needs about 1024 KiB"), "{over}");
    }

    #[test]
    fn slots_are_counted_and_freed() {
        let (admission, gauge) = (Admission::new(1, 1, 1 << 20, 1 << 10), Gauge::default());
        let slot = admission.slot(&gauge).unwrap();
        assert_eq!(admission.slot(&gauge).unwrap_err(), Refused::Slots { limit: 1 });
        assert_eq!(gauge.get(), 1);
        drop(slot);
        assert_eq!(gauge.get(), 0);
        assert!(admission.slot(&gauge).is_ok());
    }

    #[tokio::test]
    async fn a_read_waits_for_a_slot_then_is_refused() {
        let admission = Arc::new(Admission::new(1, 1, 1 << 20, 1 << 10));
        let first = admission.read(Duration::ZERO).await.unwrap();
        let refused = admission.read(Duration::from_millis(10)).await.unwrap_err();
        assert_eq!(refused, Refused::Reads { limit: 1, waited_ms: 10 });
        let waiting = tokio::spawn({
            let admission = admission.clone();
            async move { admission.read(Duration::from_secs(10)).await.is_ok() }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(first);
        assert!(waiting.await.unwrap(), "a waiting read takes the slot freed");
    }
}
