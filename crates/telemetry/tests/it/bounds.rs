//! What one record and one batch may carry: each bound, one record past it, refused by name;
//! record counts refused before decoding.

use telemetry::{
    Batch, ClassScore, DecodeError, Encoding, FeatureCounts, FeatureSummary, FieldCount, Format, Limits, ModelRef,
    OTHER_CLASSES, Output, Prediction, RECORD_BOUNDS, Record, SCHEMA_VERSION, Sample, Truth, check_name, decode,
    usable_name,
};

use crate::{model, source};

fn counts(name: &str, bins: usize, samples: usize) -> FeatureCounts {
    FeatureCounts {
        name: name.into(),
        bins: vec![1; bins],
        missing: 0,
        type_mismatch: 0,
        unseen: 0,
        out_of_range: 0,
        samples: vec![Sample::Number(1.0); samples],
    }
}

fn summary(features: Vec<FeatureCounts>, unexpected: usize) -> Record {
    Record::Features(FeatureSummary {
        window_start_ms: 0,
        rows: 1,
        features,
        unexpected_fields: (0..unexpected)
            .map(|i| FieldCount { name: format!("f{i}"), count: 1, samples: Vec::new() })
            .collect(),
    })
}

fn predicted(output: Output) -> Record {
    Record::Prediction(Prediction {
        id: "p".into(),
        timestamp_ms: 0,
        latency_us: 1,
        engine: telemetry::EngineKind::Cpu,
        output,
    })
}

fn top_k(k: usize) -> Output {
    Output::TopK((0..k).map(|i| ClassScore { label: format!("c{i}"), score: 0.1 }).collect())
}

/// Each bound: (a record at it, the same one past it, what the refusal names).
fn cases() -> Vec<(Record, Record, &'static str)> {
    let b = RECORD_BOUNDS;
    let class = |label: &str| predicted(Output::Class { label: label.into(), score: 0.5 });
    vec![
        (predicted(top_k(b.top_k)), predicted(top_k(b.top_k + 1)), "top-k classes, over the limit of 64"),
        (
            summary((0..b.features).map(|i| counts(&format!("x{i}"), 1, 0)).collect(), 0),
            summary((0..=b.features).map(|i| counts(&format!("x{i}"), 1, 0)).collect(), 0),
            "features in a summary, over the limit of 4096",
        ),
        (summary(vec![counts("x", b.bins, 0)], 0), summary(vec![counts("x", b.bins + 1, 0)], 0), "bins of \"x\""),
        (
            summary(Vec::new(), b.unexpected_fields),
            summary(Vec::new(), b.unexpected_fields + 1),
            "unexpected fields in a summary, over the limit of 256",
        ),
        (
            summary(vec![counts("x", 1, b.samples)], 0),
            summary(vec![counts("x", 1, b.samples + 1)], 0),
            "samples of \"x\"",
        ),
        (class(&"c".repeat(b.text_bytes)), class(&"c".repeat(b.text_bytes + 1)), "class label is 4097 bytes"),
        (class("other"), class(OTHER_CLASSES), "reserved for the classes beyond a bound"),
        (
            Record::Label(telemetry::Label {
                prediction_id: "p".into(),
                timestamp_ms: 0,
                truth: Truth::Class("a".into()),
            }),
            Record::Label(telemetry::Label {
                prediction_id: "p".into(),
                timestamp_ms: 0,
                truth: Truth::Class(OTHER_CLASSES.into()),
            }),
            "true class \"(other)\" is reserved",
        ),
    ]
}

#[test]
fn every_record_bound_admits_its_limit_and_refuses_one_past_it() {
    for (at, past, named) in cases() {
        assert_eq!(at.validate(), Ok(()), "{named}: at the bound");
        let refused = past.validate().unwrap_err();
        assert!(refused.contains(named), "{refused:?} should name {named:?}");
    }
}

#[test]
fn model_names_are_checked_and_made_usable() {
    assert_eq!(model().validate(), Ok(()));
    for bad in ["", "wine\"} 1\nforged", "a/b", "é", &"n".repeat(129)] {
        let name = ModelRef { name: bad.into(), ..model() };
        assert!(name.validate().is_err(), "{bad:?} passes");
        assert_eq!(check_name("model name", &usable_name(bad)), Ok(()), "{bad:?} made usable");
    }
    assert_eq!(usable_name("My model v2"), "My_model_v2");
    assert_eq!(usable_name(""), "unnamed");
    let e = check_name("model version", "1 beta").unwrap_err();
    assert!(e.contains("model version \"1 beta\" has characters other than"), "{e}");
}

#[test]
fn too_many_records_are_refused_before_they_are_decoded() {
    // Records that are not even records: counting them builds nothing, so the limit is what is named.
    let hollow = format!(
        r#"{{"schema_version": {SCHEMA_VERSION}, "batch_id": "b", "session": "s", "source": {}, "model": {},
            "records": [{}]}}"#,
        serde_json::to_string(&source()).unwrap(),
        serde_json::to_string(&model()).unwrap(),
        [r#"{"hologram": {"x": [1, 2, 3]}}"#; 11].join(",")
    );
    let json = Format { encoding: Encoding::Json, gzip: false };
    let limits = Limits { max_records: 10, ..Limits::default() };
    assert_eq!(
        decode(hollow.as_bytes(), json, limits).unwrap_err(),
        DecodeError::TooManyRecords { limit: 10, actual: 11 }
    );
    assert!(matches!(decode(hollow.as_bytes(), json, Limits::default()), Err(DecodeError::Malformed { .. })));
    // MessagePack counts the same way, from the positional layout.
    let batch = Batch {
        schema_version: SCHEMA_VERSION,
        batch_id: "b".into(),
        session: "s".into(),
        source: source(),
        model: model(),
        dropped: 0,
        unconfirmed: 0,
        records: (0..11).map(|_| predicted(Output::Value(1.0))).collect(),
    };
    let msgpack = Format { encoding: Encoding::MessagePack, gzip: false };
    let bytes = telemetry::encode(&batch, msgpack).unwrap();
    assert_eq!(decode(&bytes, msgpack, limits).unwrap_err(), DecodeError::TooManyRecords { limit: 10, actual: 11 });
    assert_eq!(decode(&bytes, msgpack, Limits::default()).unwrap(), batch);
}

#[test]
fn profiles_whose_shapes_do_not_fit_are_refused_by_name() {
    use telemetry::{CategoryProfile, FeatureKind, FeatureProfile, NumberProfile, PROFILE_VERSION, Profile};
    let number = FeatureProfile {
        name: "alcohol".into(),
        missing_rate: 0.0,
        kind: FeatureKind::Number(NumberProfile::build(&[1.0, 2.0, 3.0, 4.0], 2).unwrap()),
    };
    let category = FeatureProfile {
        name: "color".into(),
        missing_rate: 0.1,
        kind: FeatureKind::Category(CategoryProfile::build(["red", "green", "red"], 8)),
    };
    let good = Profile {
        profile_version: PROFILE_VERSION,
        rows: 4,
        features: vec![number, category],
        target: None,
        baseline: None,
    };
    assert_eq!(good.validate(), Ok(()));
    let broken = |change: &dyn Fn(&mut Profile), named: &str| {
        let mut profile = good.clone();
        change(&mut profile);
        let e = profile.validate().unwrap_err();
        assert!(e.contains(named), "{e:?} should name {named:?}");
    };
    let number = |p: &mut Profile| match &mut p.features[0].kind {
        FeatureKind::Number(n) => n.clone(),
        FeatureKind::Category(_) => unreachable!(),
    };
    let set_number = |p: &mut Profile, n: NumberProfile| p.features[0].kind = FeatureKind::Number(n);
    broken(
        &|p| {
            let mut n = number(p);
            n.counts.push(1);
            set_number(p, n)
        },
        "feature \"alcohol\": 5 counts for 4 bins",
    );
    broken(
        &|p| {
            let mut n = number(p);
            n.edges.reverse();
            set_number(p, n)
        },
        "the edges are not sorted",
    );
    broken(
        &|p| {
            let mut n = number(p);
            n.edges[0] = f64::NAN;
            set_number(p, n)
        },
        "finite numbers",
    );
    broken(
        &|p| {
            let mut n = number(p);
            n.min = 9.0;
            set_number(p, n)
        },
        "min <= max",
    );
    broken(
        &|p| {
            if let FeatureKind::Category(c) = &mut p.features[1].kind {
                c.counts.pop();
            }
        },
        "feature \"color\": 2 counts for 3 bins",
    );
    broken(&|p| p.features[1].name = "alcohol".into(), "profiled twice");
    broken(&|p| p.features[1].missing_rate = 1.5, "not a share");
    broken(&|p| p.profile_version = 9, "profile_version 9 is not supported");
}
