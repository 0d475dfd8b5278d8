//! Time to bring every drift and performance result up to date when one batch of 500 records
//! arrives. Goal: under 1 ms.
//!
//! - `analysis`: merge its feature counts into the window, re-judge 25 columns (binned statistics),
//!   and add 500 labelled predictions to the confusion matrix.
//! - `collector`: the collector's own path: the batch's rollup as ingest computes it (500 labelled
//!   predictions and a feature summary) and stores it (JSON), then the hour window re-read as the
//!   merge of its 60 minute rollups (MessagePack), and the drift (vs reference and previous window), integrity
//!   and performance reports on it.

#![allow(clippy::unwrap_used)]

use analysis::drift::{Column, Policy, analyse};
use analysis::performance::Confusion;
use analysis::window::Window;
use criterion::{Criterion, criterion_group, criterion_main};
use telemetry::{CategoryProfile, FeatureKind, FeatureProfile, NumberProfile, Profile, Summarizer, Value};

fn profile() -> Profile {
    let mut features = Vec::new();
    for i in 0..20 {
        let values: Vec<f64> = (0..10_000).map(|j| ((j * 7919 + i * 104_729) % 10_007) as f64).collect();
        features.push(FeatureProfile {
            name: format!("num_{i}"),
            missing_rate: 0.0,
            kind: FeatureKind::Number(NumberProfile::build(&values, 10).unwrap()),
        });
    }
    for i in 0..5 {
        let values = (0..10_000).map(|j| ["red", "green", "blue", "grey"][(j + i) % 4]);
        features.push(FeatureProfile {
            name: format!("cat_{i}"),
            missing_rate: 0.0,
            kind: FeatureKind::Category(CategoryProfile::build(values, 50)),
        });
    }
    Profile { baseline: None, profile_version: 1, rows: 10_000, features, target: None }
}

/// One batch's feature summary (500 rows), as a deployment sends it.
fn batch_summary(profile: &Profile) -> telemetry::Record {
    let mut summarizer = Summarizer::new(profile, 0);
    summarizer.add_rows(500);
    for feature in &profile.features {
        match feature.kind {
            FeatureKind::Number(_) => {
                summarizer.observe_column(&feature.name, (0..500).map(|j| Value::Number((j * 31 % 10_007) as f64)))
            }
            FeatureKind::Category(_) => summarizer.observe_column(&feature.name, (0..500).map(|_| Value::Text("red"))),
        }
    }
    summarizer.take(1_764_000_000_000)
}

fn update(c: &mut Criterion) {
    let profile = profile();
    let telemetry::Record::Features(summary) = batch_summary(&profile) else { unreachable!() };
    let mut window = Window::default();
    for _ in 0..100 {
        window.add(&summary);
    }
    let mut confusion = Confusion::default();
    let labels = ["0", "1", "2"];
    c.bench_function("update drift and performance for one batch of 500", |b| {
        b.iter(|| {
            window.add(&summary);
            for j in 0..500 {
                confusion.add(labels[j % 3], labels[(j / 2) % 3]);
            }
            let columns = profile
                .features
                .iter()
                .map(|f| Column { profile: f, current: &window.features[&f.name].bins, raw: None })
                .collect();
            let drift = analyse(columns, &Policy::default());
            let performance = confusion.metrics();
            std::hint::black_box((drift, performance));
        })
    });
}

fn collector_update(c: &mut Criterion) {
    use collector::monitor::{self, Width, rollup};
    use telemetry::{
        Batch, EngineKind, ModelRef, Output, Prediction, Record, SCHEMA_VERSION, Source, SourceKind, Truth,
    };

    let profile = profile();
    let labels = ["0", "1", "2"];
    let mut records: Vec<Record> = (0..500)
        .map(|j| {
            Record::Prediction(Prediction {
                id: format!("p{j}"),
                timestamp_ms: 1_764_000_000_000,
                latency_us: 900 + j,
                engine: EngineKind::Cpu,
                output: Output::Class { label: labels[(j / 2) as usize % 3].into(), score: 0.9 },
            })
        })
        .collect();
    records.push(batch_summary(&profile));
    let batch = Batch {
        schema_version: SCHEMA_VERSION,
        batch_id: "b".into(),
        session: "s".into(),
        source: Source { kind: SourceKind::Edge, node: "n".into(), sdk_version: "0".into() },
        model: ModelRef { name: "m".into(), version: "1".into(), hash: "h".into() },
        dropped: 0,
        unconfirmed: 0,
        records,
    };
    let known = (0..500).map(|j| (format!("p{j}"), Truth::Class(labels[j % 3].into()))).collect();
    // The hour as stored after compaction: one rollup per minute.
    let minute = rollup::to_body(&rollup::of_batch(&batch, &known).into_values().next().unwrap()).unwrap();
    let hour: Vec<Vec<u8>> = vec![minute; 60];
    let span = Width::HOUR.containing(1_764_000_000_000);
    let previous = rollup::merge_bodies(hour.iter().map(Vec::as_slice)).unwrap().into_window();
    c.bench_function("collector: ingest rollup + re-read the hour + all reports, one batch of 500", |b| {
        b.iter(|| {
            let added = rollup::of_batch(&batch, &known);
            let bodies: Vec<Vec<u8>> = added.values().map(|r| rollup::to_body(r).unwrap()).collect();
            let all = hour.iter().chain(&bodies).map(Vec::as_slice);
            let current = rollup::merge_bodies(all).unwrap().into_window();
            let drift = monitor::drift(Some(&profile), span, &current, &previous, &Policy::default());
            let integrity = monitor::integrity(Some(&profile), span, &current);
            let performance = monitor::WindowPerformance::new(span, &current);
            std::hint::black_box((drift, integrity, performance));
        })
    });
}

criterion_group!(benches, update, collector_update);
criterion_main!(benches);
