//! What the collector takes of a batch's valid records beyond the schema's own checks: times near
//! its clock (no client backfills years of windows or plants next week's), and a bounded number
//! of minutes per batch (each is a rollup row written with the batch).

use std::collections::BTreeSet;

use telemetry::Record;

use crate::monitor::{Width, rollup};

/// Distinct minutes one batch may add to. A batch is sealed within seconds of its first record;
/// one spanning an hour is not a client's.
pub const MAX_MINUTES_PER_BATCH: usize = 60;

/// Judges one upload's records in order.
#[derive(Debug)]
pub struct Acceptance {
    from_ms: i64,
    to_ms: i64,
    past: Width,
    future: Width,
    minutes: BTreeSet<i64>,
}

impl Acceptance {
    /// Records timed from `past` before `now_ms` to `future` after it.
    pub fn new(now_ms: i64, past: Width, future: Width) -> Acceptance {
        Acceptance {
            from_ms: now_ms.saturating_sub(past.ms()),
            to_ms: now_ms.saturating_add(future.ms()),
            past,
            future,
            minutes: BTreeSet::new(),
        }
    }

    pub fn check(&mut self, record: &Record) -> Result<(), String> {
        let ms = record.timestamp_ms();
        if !(self.from_ms..=self.to_ms).contains(&ms) {
            return Err(format!(
                "timestamp {ms} is outside what the collector accepts: from {} before its clock ({}) to {} after",
                self.past,
                self.from_ms.saturating_add(self.past.ms()),
                self.future
            ));
        }
        // A label adds to its prediction's minute, not its own.
        if matches!(record, Record::Label(_)) {
            return Ok(());
        }
        let minute = rollup::bucket(ms);
        if self.minutes.len() >= MAX_MINUTES_PER_BATCH && !self.minutes.contains(&minute) {
            return Err(format!(
                "timestamp {ms} starts another minute: a batch may span {MAX_MINUTES_PER_BATCH} distinct minutes"
            ));
        }
        self.minutes.insert(minute);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use telemetry::{ErrorKind, ErrorRecord, Label, Truth};

    fn error_at(timestamp_ms: i64) -> Record {
        Record::Error(ErrorRecord { timestamp_ms, kind: ErrorKind::Inference, message: "x".into() })
    }

    #[test]
    fn times_near_the_clock_and_sixty_minutes_a_batch() {
        let (now, day) = (1_800_000_000_000, 86_400_000);
        let mut accept = Acceptance::new(now, Width::parse("7d").unwrap(), Width::parse("5m").unwrap());
        assert_eq!(accept.check(&error_at(now - 7 * day)), Ok(()));
        assert_eq!(accept.check(&error_at(now + 300_000)), Ok(()));
        let e = accept.check(&error_at(now - 7 * day - 1)).unwrap_err();
        assert!(e.contains("from 7d before its clock (1800000000000) to 5m after"), "{e}");
        assert!(accept.check(&error_at(now + 300_001)).is_err());
        assert!(accept.check(&error_at(i64::MIN)).is_err() && accept.check(&error_at(i64::MAX)).is_err());
        // Two minutes taken; 58 more, then no new minute, though old ones still take records.
        for minute in 2..60 {
            assert_eq!(accept.check(&error_at(now - minute * 60_000)), Ok(()), "minute {minute}");
        }
        let e = accept.check(&error_at(now - 60 * 60_000)).unwrap_err();
        assert!(e.contains("a batch may span 60 distinct minutes"), "{e}");
        assert_eq!(accept.check(&error_at(now - 2 * 60_000 + 1)), Ok(()), "a minute already spanned");
        let label = Label { prediction_id: "p".into(), timestamp_ms: now - day, truth: Truth::Value(1.0) };
        assert_eq!(accept.check(&Record::Label(label)), Ok(()), "labels add to their prediction's minute");
    }
}
