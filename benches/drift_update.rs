//! Time to bring every drift and performance result up to date when one batch of 500 records
//! arrives: merge its feature counts into the window, re-judge 25 columns (binned statistics), and
//! add 500 labelled predictions to the confusion matrix. Goal: under 1 ms.

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
    Profile { profile_version: 1, rows: 10_000, features, target: None }
}

fn update(c: &mut Criterion) {
    let profile = profile();
    // One batch's feature summary, as a deployment sends it.
    let mut summarizer = Summarizer::new(&profile, 0);
    summarizer.add_rows(500);
    for feature in &profile.features {
        match feature.kind {
            FeatureKind::Number(_) => {
                summarizer.observe_column(&feature.name, (0..500).map(|j| Value::Number((j * 31 % 10_007) as f64)))
            }
            FeatureKind::Category(_) => summarizer.observe_column(&feature.name, (0..500).map(|_| Value::Text("red"))),
        }
    }
    let telemetry::Record::Features(summary) = summarizer.take(0) else { unreachable!() };
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

criterion_group!(benches, update);
criterion_main!(benches);
