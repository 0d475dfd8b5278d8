//! Sextant telemetry: the versioned wire schema every deployment sends, its encodings, and the
//! client-side batcher.
//!
//! This crate does no IO and reads no clock: it builds for wasm32 and natively, and each client
//! (browser, edge host, native app) brings its own transport and time. What it must never do is
//! lose a record silently: invalid records are refused at `push`, and dropped ones are counted into
//! the next batch.

mod batcher;
mod encoding;
mod inference;
mod profile;
mod schema;

pub use batcher::{Batcher, BatcherConfig, MaybeSend, Outcome, PushError, RetryPolicy, Sealed, Stats, Transport};
pub use encoding::{
    Counted, DecodeError, EncodeError, Encoding, Format, Limits, decode, decode_plain, encode, from_slice, inflate,
};
pub use inference::{
    FeatureMap, Flat, FlatTensor, ObserveError, RecorderConfig, Run, RunRecorder, rows_and_width, summarize_outputs,
};
pub use profile::{
    Baseline, BaselineMetrics, CategoryProfile, FeatureKind, FeatureProfile, NumberProfile, PROFILE_VERSION, Profile,
    Summarizer, Value,
};
pub use schema::{
    Batch, ClassScore, Diagnostic, EngineKind, ErrorKind, ErrorRecord, FeatureCounts, FeatureSummary, FieldCount,
    Label, MAX_NAME_BYTES, ModelRef, OTHER_CLASSES, Output, Prediction, RECORD_BOUNDS, Record, RecordBounds,
    SCHEMA_VERSION, Sample, Source, SourceKind, Truth, check_name, usable_name,
};
