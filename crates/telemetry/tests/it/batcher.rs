//! The batcher: sealing rules, bounded memory with counted drops, retries with the same id, and a
//! property test that nothing is lost or stored twice under random failures.

use std::collections::BTreeMap;

use proptest::prelude::*;
use telemetry::{Batch, Batcher, BatcherConfig, Encoding, Format, Limits, Outcome, RetryPolicy, decode};

use crate::{model, prediction, source};

const FORMAT: Format = Format { encoding: Encoding::MessagePack, gzip: false };

fn batcher(max_records: usize, max_outbox: usize) -> Batcher {
    let config =
        BatcherConfig { format: FORMAT, max_records, max_age_ms: 1_000, max_outbox, ..BatcherConfig::default() };
    Batcher::new(config, source(), model(), "session")
}

fn open(batcher: &Batcher, now_ms: i64) -> Batch {
    decode(&batcher.next_due(now_ms).unwrap().body, FORMAT, Limits::default()).unwrap()
}

#[test]
fn seals_on_count_and_on_age() {
    let mut b = batcher(3, 8);
    for i in 0..4 {
        b.push(prediction(i), 0).unwrap();
    }
    assert_eq!(b.outbox_len(), 1, "sealed at 3 records");
    b.tick(999).unwrap();
    assert_eq!(b.outbox_len(), 1, "the fourth record is not yet a second old");
    b.tick(1_000).unwrap();
    assert_eq!(b.outbox_len(), 2);
    assert_eq!(open(&b, 0).records.len(), 3);
    assert_eq!(open(&b, 0).batch_id, "session-0");
}

#[test]
fn seals_on_size() {
    let config = BatcherConfig { format: FORMAT, max_bytes: 1_000, ..BatcherConfig::default() };
    let mut b = Batcher::new(config, source(), model(), "s");
    let mut pushed = 0;
    while b.outbox_len() == 0 {
        b.push(prediction(pushed), 0).unwrap();
        pushed += 1;
    }
    let body = &b.next_due(0).unwrap().body;
    assert!(body.len() < 1_400, "about max_bytes, plus the envelope: {}", body.len());
    assert!(pushed > 5);
}

#[test]
fn invalid_records_are_refused_at_push() {
    let mut b = batcher(10, 8);
    let bad = telemetry::Record::Label(telemetry::Label {
        prediction_id: "p".into(),
        timestamp_ms: 0,
        truth: telemetry::Truth::Value(f64::INFINITY),
    });
    assert_eq!(b.push(bad, 0).unwrap_err().to_string(), "invalid record: true value is inf, not finite");
    assert_eq!(b.stats().records, 0);
}

#[test]
fn a_full_outbox_drops_the_oldest_batch_and_reports_it() {
    let mut b = batcher(2, 2);
    for i in 0..6 {
        b.push(prediction(i), 0).unwrap();
    }
    assert_eq!(b.outbox_len(), 2);
    assert_eq!(b.stats().batches_evicted, 1);
    assert_eq!(open(&b, 0).batch_id, "session-1", "session-0 was dropped");
    let newest = decode(
        &{
            b.report("session-1", Outcome::Accepted, 0, 0.0);
            b.next_due(0).unwrap().body.clone()
        },
        FORMAT,
        Limits::default(),
    )
    .unwrap();
    assert_eq!((newest.dropped, newest.unconfirmed), (2, 0), "session-0 was never attempted: certainly dropped");
}

#[test]
fn the_outbox_holds_so_many_bytes_and_nothing_older_than_its_age() {
    let config = BatcherConfig {
        format: FORMAT,
        max_records: 1,
        max_outbox_bytes: 1_000,
        max_outbox_age_ms: 60_000,
        ..BatcherConfig::default()
    };
    let mut b = Batcher::new(config, source(), model(), "s");
    for i in 0..20 {
        b.push(prediction(i), i as i64 * 1_000).unwrap();
    }
    let size = b.next_due(0).unwrap().body.len();
    assert!(b.outbox_bytes() <= 1_000 && b.outbox_bytes() + size + 16 > 1_000, "{} of 1000", b.outbox_bytes());
    let evicted = b.stats().batches_evicted;
    assert_eq!(b.outbox_len() as u64 + evicted, 20);
    assert_eq!(b.losses(), (evicted, 0), "each evicted batch's record counted as dropped");
    // A minute after the oldest kept batch's record, it is too old to send; the rest are not yet.
    let oldest = b.next_due(0).unwrap().born_ms().unwrap();
    b.tick(oldest + 60_001).unwrap();
    assert_eq!(b.stats().batches_expired, 1);
    b.tick(19_000 + 60_000).unwrap();
    assert_eq!(b.outbox_len(), 1, "only the batch sealed at 19 s is a minute old or less");
    assert_eq!(b.losses().0, 19);
    // One batch larger than the bound is kept: it is what is being sent.
    let config = BatcherConfig { format: FORMAT, max_records: 1, max_outbox_bytes: 10, ..BatcherConfig::default() };
    let mut b = Batcher::new(config, source(), model(), "s");
    b.push(prediction(0), 0).unwrap();
    assert_eq!(b.outbox_len(), 1);
}

#[test]
fn a_saved_outbox_goes_out_first_with_its_ids_and_within_the_bound() {
    let mut before = batcher(1, 8);
    for i in 0..3 {
        before.push(prediction(i), 0).unwrap();
    }
    let id = before.next_due(0).unwrap().batch_id.clone();
    before.report(&id, Outcome::Retry { after_ms: Some(60_000) }, 0, 0.0);
    // What a client writes to disk or browser storage, and reads back after a restart.
    let saved: Vec<_> = before
        .outbox()
        .map(|s| {
            telemetry::Sealed::saved(s.batch_id.clone(), s.body.clone(), s.format, s.records(), s.attempts(), None)
        })
        .collect();
    assert_eq!(saved.iter().map(|s| s.attempts()).collect::<Vec<_>>(), [1, 0, 0]);

    let mut after = Batcher::new(
        BatcherConfig { format: FORMAT, max_records: 1, max_outbox: 3, ..BatcherConfig::default() },
        source(),
        model(),
        "next-run",
    );
    after.push(prediction(9), 0).unwrap();
    after.restore(saved);
    assert_eq!(after.outbox_len(), 3, "the bound holds");
    assert_eq!(after.stats().batches_evicted, 1);
    assert_eq!(after.losses(), (0, 1), "the evicted batch had been attempted: unconfirmed, not dropped");
    let ids: Vec<_> = after.outbox().map(|s| s.batch_id.clone()).collect();
    assert_eq!(ids, ["session-1", "session-2", "next-run-0"], "saved first, in order, due at once");
    assert_eq!(after.next_due(0).unwrap().batch_id, "session-1");
}

#[test]
fn retries_keep_the_id_and_back_off() {
    let mut b = batcher(1, 8);
    b.push(prediction(0), 0).unwrap();
    let first = b.next_due(0).unwrap().clone();
    b.report(&first.batch_id, Outcome::Retry { after_ms: None }, 0, 0.99);
    assert!(b.next_due(0).is_none(), "backing off");
    assert_eq!(b.next_due_at(), Some(495), "first retry waits up to 2 x 250 ms");
    let again = b.next_due(495).unwrap();
    assert_eq!((again.batch_id.as_str(), &again.body), (first.batch_id.as_str(), &first.body));
    b.report(&first.batch_id, Outcome::Retry { after_ms: Some(30_000) }, 495, 0.5);
    assert_eq!(b.next_due_at(), Some(30_495), "Retry-After wins");
    b.report("stale-id", Outcome::Accepted, 30_495, 0.0);
    assert_eq!(b.outbox_len(), 1, "a stale report changes nothing");
}

#[test]
fn a_refused_key_keeps_the_batch_and_only_a_refused_batch_drops_it() {
    let outcome = |status| Outcome::from_http(status, None, "{\"error\":{\"code\":\"x\"}}");
    for status in [401, 403, 404] {
        assert!(
            matches!(outcome(status), Outcome::Refused { reason } if reason.starts_with(&format!("HTTP {status}")))
        );
    }
    for status in [400, 413, 415] {
        assert!(matches!(outcome(status), Outcome::Rejected { .. }), "{status}");
    }
    assert!(matches!(outcome(408), Outcome::Retry { .. }));
    let mut b = batcher(1, 8);
    b.push(prediction(0), 0).unwrap();
    let first = b.next_due(0).unwrap().clone();
    b.report(&first.batch_id, outcome(401), 0, 0.99);
    assert_eq!(b.outbox_len(), 1, "kept until the key is fixed");
    assert_eq!(b.next_due_at(), Some(495), "and retried with backoff");
    b.report(&first.batch_id, outcome(400), 495, 0.5);
    assert_eq!((b.outbox_len(), b.stats().batches_rejected), (0, 1), "a malformed batch is dropped, counted");
}

#[test]
fn backoff_grows_and_is_capped() {
    let policy = RetryPolicy { base_ms: 100, max_ms: 10_000 };
    let ceilings: Vec<u64> = (1..=10).map(|n| policy.delay_ms(n, 0.999_999)).collect();
    assert_eq!(ceilings[..4], [199, 399, 799, 1599]);
    assert_eq!(*ceilings.last().unwrap(), 9_999);
    assert_eq!(policy.delay_ms(1_000, 0.5), 5_000, "no overflow for huge attempt counts");
}

#[derive(Debug, Clone)]
enum Step {
    Push(u8),
    Advance(u16),
    Send(Delivery),
}

#[derive(Debug, Clone, Copy)]
enum Delivery {
    Accepted,
    /// The network failed before the collector saw the batch.
    Failed,
    /// The collector stored it, but the acknowledgement was lost.
    AckLost,
    Rejected,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (1u8..20).prop_map(Step::Push),
        2 => (0u16..3_000).prop_map(Step::Advance),
        4 => prop_oneof![
            3 => Just(Delivery::Accepted),
            2 => Just(Delivery::Failed),
            1 => Just(Delivery::AckLost),
            1 => Just(Delivery::Rejected),
        ].prop_map(Step::Send),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// The collector dedupes by batch id, as the real one does. Whatever fails, every record is
    /// either stored exactly once, in order, or counted as dropped in a batch that arrived.
    #[test]
    fn nothing_is_lost_or_stored_twice(
        steps in prop::collection::vec(step(), 1..200),
        max_outbox in 1usize..6,
        max_outbox_bytes in 300usize..3_000,
        max_outbox_age_ms in 1_000i64..20_000,
    ) {
        let config = BatcherConfig {
            format: FORMAT,
            max_records: 7,
            max_age_ms: 1_000,
            max_outbox,
            max_outbox_bytes,
            max_outbox_age_ms,
            ..BatcherConfig::default()
        };
        let mut b = Batcher::new(config, source(), model(), "session");
        let mut collector: BTreeMap<u64, Batch> = BTreeMap::new();
        let (mut now, mut pushed) = (0i64, 0u64);
        let deliver = |b: &mut Batcher, how: Delivery, now: i64, collector: &mut BTreeMap<u64, Batch>| {
            let Some(sealed) = b.next_due(now).cloned() else { return };
            let batch = decode(&sealed.body, FORMAT, Limits::default()).unwrap();
            let seq: u64 = batch.batch_id.rsplit('-').next().unwrap().parse().unwrap();
            let outcome = match how {
                Delivery::Accepted | Delivery::AckLost => {
                    collector.entry(seq).or_insert(batch);
                    if matches!(how, Delivery::Accepted) { Outcome::Accepted } else { Outcome::Retry { after_ms: None } }
                }
                Delivery::Failed => Outcome::Retry { after_ms: None },
                // A collector acknowledges an id it already stored, whatever else it thinks of it.
                Delivery::Rejected if collector.contains_key(&seq) => Outcome::Accepted,
                Delivery::Rejected => Outcome::Rejected { reason: "test".into() },
            };
            b.report(&sealed.batch_id, outcome, now, 0.5);
        };
        for step in steps {
            match step {
                Step::Push(n) => for _ in 0..n {
                    b.push(prediction(pushed), now).unwrap();
                    pushed += 1;
                },
                Step::Advance(ms) => {
                    now += i64::from(ms);
                    b.tick(now).unwrap();
                }
                Step::Send(how) => deliver(&mut b, how, now, &mut collector),
            }
        }
        b.seal().unwrap();
        while b.outbox_len() > 0 {
            now = now.max(b.next_due_at().unwrap());
            deliver(&mut b, Delivery::Accepted, now, &mut collector);
        }

        // Stored records: in order, no duplicates.
        let stored: Vec<_> = collector.values().flat_map(|batch| batch.records.clone()).collect();
        let ids: Vec<u64> = stored.iter().map(|r| match r {
            telemetry::Record::Prediction(p) => u64::from_str_radix(&p.id, 16).unwrap() - 0x5eed_0000_0000,
            _ => unreachable!(),
        }).collect();
        prop_assert!(ids.windows(2).all(|w| w[0] < w[1]), "in order, no duplicates: {:?}", ids);
        // The collector's view of the losses (largest totals per session) is the client's.
        let dropped = collector.values().map(|batch| batch.dropped).max().unwrap_or(0);
        let unconfirmed = collector.values().map(|batch| batch.unconfirmed).max().unwrap_or(0);
        prop_assert_eq!((dropped, unconfirmed), b.losses());
        // Every record is stored, or counted: certainly dropped, or unconfirmed (maybe stored).
        let missing = pushed - ids.len() as u64;
        prop_assert!(dropped <= missing && missing <= dropped + unconfirmed,
            "pushed {}, stored {}, dropped {}, unconfirmed {}", pushed, ids.len(), dropped, unconfirmed);
    }

    #[test]
    fn with_room_and_no_rejections_everything_arrives(n in 0u64..2_000, fail_every in 2u64..5) {
        let mut b = batcher(50, 1_000);
        let mut collector: BTreeMap<String, Batch> = BTreeMap::new();
        for i in 0..n {
            b.push(prediction(i), i as i64).unwrap();
        }
        b.seal().unwrap();
        let mut attempt = 0u64;
        let mut now = n as i64;
        while let Some(at) = b.next_due_at() {
            now = now.max(at);
            let sealed = b.next_due(now).unwrap().clone();
            attempt += 1;
            let outcome = if attempt.is_multiple_of(fail_every) { Outcome::Retry { after_ms: None } } else {
                let batch = decode(&sealed.body, FORMAT, Limits::default()).unwrap();
                collector.entry(sealed.batch_id.clone()).or_insert(batch);
                Outcome::Accepted
            };
            b.report(&sealed.batch_id, outcome, now, 0.3);
        }
        let stored: usize = collector.values().map(|batch| batch.records.len()).sum();
        prop_assert_eq!(stored as u64, n);
        prop_assert!(collector.values().all(|batch| batch.dropped == 0 && batch.unconfirmed == 0));
    }
}
