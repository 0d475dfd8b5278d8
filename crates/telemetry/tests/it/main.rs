//! Integration tests of the telemetry crate: encodings and the batcher.

// Tests unwrap: a panic is a failure with a message.
#![allow(clippy::unwrap_used)]

mod batcher;
mod bounds;
mod encoding;

use telemetry::{EngineKind, ModelRef, Output, Prediction, Record, Source, SourceKind};

pub fn source() -> Source {
    Source { kind: SourceKind::Edge, node: "gateway-7".into(), sdk_version: "0.1.0".into() }
}

pub fn model() -> ModelRef {
    ModelRef { name: "digits-cnn".into(), version: "1".into(), hash: format!("sha256:{}", "ab".repeat(32)) }
}

/// A realistic prediction record: uuid-sized id, class and score.
pub fn prediction(i: u64) -> Record {
    Record::Prediction(Prediction {
        id: format!("{:032x}", 0x5eed_0000_0000_u64 + i),
        timestamp_ms: 1_790_000_000_000 + i as i64 * 7,
        latency_us: 850 + (i % 300) as u32,
        engine: EngineKind::Cpu,
        output: Output::Class { label: (i % 10).to_string(), score: 0.5 + (i % 50) as f32 / 100.0 },
    })
}
