//! Round trips in every format, and hostile bodies.

use telemetry::{
    Batch, DecodeError, Diagnostic, Encoding, FeatureCounts, FeatureSummary, Format, Label, Limits, Output, Record,
    SCHEMA_VERSION, Sample, Truth, decode, encode,
};

use crate::{model, prediction, source};

const FORMATS: [Format; 4] = [
    Format { encoding: Encoding::Json, gzip: false },
    Format { encoding: Encoding::Json, gzip: true },
    Format { encoding: Encoding::MessagePack, gzip: false },
    Format { encoding: Encoding::MessagePack, gzip: true },
];

fn batch(records: Vec<Record>) -> Batch {
    Batch {
        schema_version: SCHEMA_VERSION,
        batch_id: "s-0".into(),
        session: "s".into(),
        source: source(),
        model: model(),
        dropped: 3,
        unconfirmed: 1,
        records,
    }
}

fn every_kind_of_record() -> Vec<Record> {
    vec![
        prediction(1),
        Record::Features(FeatureSummary {
            window_start_ms: 1_790_000_000_000,
            rows: 500,
            features: vec![FeatureCounts {
                name: "alcohol".into(),
                bins: vec![0, 120, 130, 125, 125, 0],
                missing: 2,
                type_mismatch: 1,
                unseen: 0,
                out_of_range: 3,
                samples: vec![Sample::Number(13.2), Sample::Category("red".into())],
            }],
            unexpected_fields: vec![telemetry::FieldCount {
                name: "alcohol_pct".into(),
                count: 4,
                samples: Vec::new(),
            }],
        }),
        Record::Label(Label { prediction_id: "p1".into(), timestamp_ms: 5, truth: Truth::Class("3".into()) }),
        Record::Error(telemetry::ErrorRecord {
            timestamp_ms: 6,
            kind: telemetry::ErrorKind::RejectedInput,
            message: "input `x`: expected dtype f32, got i64".into(),
        }),
    ]
}

#[test]
fn every_record_kind_round_trips_in_every_format() {
    let original = batch(every_kind_of_record());
    for format in FORMATS {
        let bytes = encode(&original, format).unwrap();
        assert_eq!(decode(&bytes, format, Limits::default()).unwrap(), original, "{format:?}");
    }
}

#[test]
fn bytes_per_prediction_record() {
    // Reported in the closing note; the assertion keeps the compact encoding compact.
    let records: Vec<Record> = (0..500).map(prediction).collect();
    let per_record = |format| encode(&batch(records.clone()), format).unwrap().len() as f64 / 500.0;
    let sizes: Vec<f64> = FORMATS.iter().map(|&f| per_record(f)).collect();
    eprintln!(
        "bytes per prediction record (batch of 500): json {:.1}, json+gzip {:.1}, msgpack {:.1}, msgpack+gzip {:.1}",
        sizes[0], sizes[1], sizes[2], sizes[3]
    );
    assert!(sizes[2] < sizes[0] * 0.7, "{sizes:?}");
    assert!(sizes[3] < sizes[2], "{sizes:?}");
}

#[test]
fn unknown_versions_are_named() {
    for format in FORMATS {
        let mut future = batch(vec![prediction(1)]);
        future.schema_version = 2;
        let bytes = encode(&future, format).unwrap();
        assert_eq!(
            decode(&bytes, format, Limits::default()).unwrap_err(),
            DecodeError::UnsupportedVersion { found: 2, supported: SCHEMA_VERSION }
        );
    }
    // A future version whose records do not even parse as version 1's.
    let json = br#"{"schema_version": 7, "batch_id": "x", "records": [{"hologram": {}}]}"#;
    let format = Format { encoding: Encoding::Json, gzip: false };
    assert!(matches!(decode(json, format, Limits::default()), Err(DecodeError::UnsupportedVersion { found: 7, .. })));
}

#[test]
fn hostile_bodies_are_errors() {
    let good = batch((0..50).map(prediction).collect());
    for format in FORMATS {
        let bytes = encode(&good, format).unwrap();
        for cut in (0..bytes.len()).step_by(97) {
            assert!(decode(&bytes[..cut], format, Limits::default()).is_err(), "{format:?} truncated at {cut}");
        }
        let mut garbage = bytes.clone();
        garbage.iter_mut().step_by(3).for_each(|b| *b ^= 0xa5);
        let _ = decode(&garbage, format, Limits::default()); // an answer, not a panic
        let tight = Limits { max_body_bytes: bytes.len() - 1, ..Limits::default() };
        assert!(matches!(decode(&bytes, format, tight), Err(DecodeError::BodyTooLarge { .. })));
        let few = Limits { max_records: 10, ..Limits::default() };
        assert_eq!(decode(&bytes, format, few).unwrap_err(), DecodeError::TooManyRecords { limit: 10, actual: 50 });
    }
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let json = Format { encoding: Encoding::Json, gzip: false };
    assert!(matches!(decode(deep.as_bytes(), json, Limits::default()), Err(DecodeError::Malformed { .. })));
    let deep_msgpack = vec![0x91; 100_000]; // nested one-element arrays
    let msgpack = Format { encoding: Encoding::MessagePack, gzip: false };
    assert!(matches!(decode(&deep_msgpack, msgpack, Limits::default()), Err(DecodeError::Malformed { .. })));
}

#[test]
fn gzip_bombs_stop_at_the_limit() {
    // 64 MiB of zeros in a few tens of kB.
    let bomb = {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&vec![0u8; 64 << 20]).unwrap();
        gz.finish().unwrap()
    };
    let format = Format { encoding: Encoding::Json, gzip: true };
    let limits = Limits { max_decoded_bytes: 1 << 20, ..Limits::default() };
    assert_eq!(decode(&bomb, format, limits).unwrap_err(), DecodeError::DecodedTooLarge { limit: 1 << 20 });
    assert!(matches!(decode(b"not gzip", format, limits), Err(DecodeError::Gzip(_))));
}

#[test]
fn invalid_records_are_diagnosed_and_the_rest_kept() {
    let mut records = every_kind_of_record();
    records.insert(1, Record::Label(Label { prediction_id: String::new(), timestamp_ms: 0, truth: Truth::Value(1.0) }));
    records.push(Record::Prediction(telemetry::Prediction {
        id: "p9".into(),
        timestamp_ms: 0,
        latency_us: 0,
        engine: telemetry::EngineKind::Gpu,
        output: Output::Value(f64::NAN),
    }));
    let (kept, diagnostics) = batch(records).partition();
    assert_eq!(kept.records, every_kind_of_record());
    assert_eq!(
        diagnostics,
        [
            Diagnostic { index: 1, reason: "prediction id is empty".into() },
            Diagnostic { index: 5, reason: "output value is NaN, not finite".into() },
        ]
    );
}
