//! The wire schema, version 1: what every deployment sends the collector.
//!
//! Evolution rule: a new field is added at the end of its struct with `#[serde(default)]`, so older
//! batches still decode (MessagePack encodes structs positionally); anything else bumps
//! [`SCHEMA_VERSION`], and the collector rejects versions it does not know with a 4xx.

use serde::{Deserialize, Serialize};

/// The version this crate writes and reads.
pub const SCHEMA_VERSION: u32 = 1;

/// One upload from a client. `batch_id` is the idempotency key: every retry of a batch carries the
/// same id, and the collector stores a given id once.
///
/// Losses are reported as running totals for the client's session, so a collector takes the
/// largest values it has seen per session and never counts a loss twice, whichever batches arrive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Batch {
    pub schema_version: u32,
    pub batch_id: String,
    /// The client run this batch belongs to; `batch_id`s are unique within it.
    pub session: String,
    pub source: Source,
    pub model: ModelRef,
    /// Records this session certainly never delivered (dropped before any attempt, or refused).
    #[serde(default)]
    pub dropped: u64,
    /// Records in batches given up on after an unacknowledged attempt: the collector may or may
    /// not have stored them (it can tell by `batch_id`).
    #[serde(default)]
    pub unconfirmed: u64,
    pub records: Vec<Record>,
}

/// Where a batch comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    pub kind: SourceKind,
    /// The node or app instance, e.g. a gateway's id or a browser app's name.
    pub node: String,
    pub sdk_version: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    Browser,
    Edge,
    Native,
}

/// Which model produced the records.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ModelRef {
    pub name: String,
    pub version: String,
    /// Content hash of the model file, e.g. `sha256:…`.
    pub hash: String,
}

/// One thing that happened at the edge.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Record {
    Prediction(Prediction),
    Features(FeatureSummary),
    Label(Label),
    Error(ErrorRecord),
}

/// One inference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    /// Unique per prediction, so a label can be joined to it later.
    pub id: String,
    /// Milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
    pub latency_us: u32,
    pub engine: EngineKind,
    pub output: Output,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    Cpu,
    Gpu,
}

/// A summary of a model's output: enough to monitor it, far less than the output tensor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Output {
    Class { label: String, score: f32 },
    TopK(Vec<ClassScore>),
    Value(f64),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassScore {
    pub label: String,
    pub score: f32,
}

/// Per-feature counts over a window, against the bins of the model's reference profile: raw inputs
/// never leave the device unless sampling is opted into.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureSummary {
    pub window_start_ms: i64,
    pub rows: u64,
    pub features: Vec<FeatureCounts>,
    /// Fields the rows carried that the profile does not know (a renamed field shows up here while
    /// its old name counts as missing).
    #[serde(default)]
    pub unexpected_fields: Vec<FieldCount>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldCount {
    pub name: String,
    pub count: u64,
    /// Raw values, only when the model opted into sampling: they tell a renamed field (its values
    /// look like a missing feature's) from a new one.
    #[serde(default)]
    pub samples: Vec<Sample>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureCounts {
    pub name: String,
    /// Numbers: underflow, one count per quantile bin, overflow. Categories: one count per
    /// dictionary entry, then "other".
    pub bins: Vec<u64>,
    pub missing: u64,
    pub type_mismatch: u64,
    /// Categories outside the reference dictionary.
    pub unseen: u64,
    /// Numbers outside the reference [min, max].
    pub out_of_range: u64,
    /// Raw values, only when the model opted into sampling.
    #[serde(default)]
    pub samples: Vec<Sample>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sample {
    Number(f64),
    Category(String),
}

/// The ground truth for an earlier prediction; may come later and from another client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Label {
    pub prediction_id: String,
    pub timestamp_ms: i64,
    pub truth: Truth,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Truth {
    Class(String),
    Value(f64),
}

/// An inference that failed, or an input that was rejected.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorRecord {
    pub timestamp_ms: i64,
    pub kind: ErrorKind,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    Inference,
    RejectedInput,
}

/// Why a record in an otherwise valid batch was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Diagnostic {
    /// The record's position in the batch.
    pub index: usize,
    pub reason: String,
}

/// The class label that stands for every class beyond a collector's bound; no record may use it
/// as a class of its own, so a folded count never mixes with a real class.
pub const OTHER_CLASSES: &str = "(other)";

/// What one record may carry. Every count a client sends is bounded here, at the client's `push`
/// and again at the collector, before anything is summed or stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordBounds {
    /// Bytes of any text: ids, labels, names, messages, sampled categories.
    pub text_bytes: usize,
    /// Classes in a top-k output.
    pub top_k: usize,
    /// Features in one summary.
    pub features: usize,
    /// Bins of one feature.
    pub bins: usize,
    /// Unexpected fields in one summary.
    pub unexpected_fields: usize,
    /// Sampled values per feature or field.
    pub samples: usize,
}

/// The bounds every record is held to.
pub const RECORD_BOUNDS: RecordBounds =
    RecordBounds { text_bytes: 4096, top_k: 64, features: 4096, bins: 4096, unexpected_fields: 256, samples: 1024 };

/// Longest model name, version or hash.
pub const MAX_NAME_BYTES: usize = 128;

/// Checks a model name or version: 1 to [`MAX_NAME_BYTES`] bytes of ASCII letters, digits and
/// `-_.:@+` (safe in URLs, SQL text, Prometheus labels and file names).
pub fn check_name(what: &str, value: &str) -> Result<(), String> {
    let usable = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':' | b'@' | b'+');
    match value.len() {
        0 => Err(format!("{what} is empty")),
        n if n > MAX_NAME_BYTES => Err(format!("{what} is {n} bytes, over the limit of {MAX_NAME_BYTES}")),
        _ if !value.bytes().all(usable) => {
            Err(format!("{what} {value:?} has characters other than ASCII letters, digits and `-_.:@+`"))
        }
        _ => Ok(()),
    }
}

/// `text` made into a usable name (see [`check_name`]): other characters become `_`, and it is
/// cut to [`MAX_NAME_BYTES`]; empty text becomes `unnamed`. For names taken from a model file.
pub fn usable_name(text: &str) -> String {
    let mut name: String = text
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || "-_.:@+".contains(c) { c } else { '_' })
        .take(MAX_NAME_BYTES)
        .collect();
    if name.is_empty() {
        name.push_str("unnamed");
    }
    name
}

impl ModelRef {
    /// Checks name, version and hash with [`check_name`].
    pub fn validate(&self) -> Result<(), String> {
        check_name("model name", &self.name)?;
        check_name("model version", &self.version)?;
        check_name("model hash", &self.hash)
    }
}

impl Record {
    /// Checks what the type system cannot: ids present, numbers finite, texts and counts within
    /// [`RECORD_BOUNDS`], no class named [`OTHER_CLASSES`].
    pub fn validate(&self) -> Result<(), String> {
        let bounds = RECORD_BOUNDS;
        let text = |what: &str, s: &str| match s.len() {
            0 => Err(format!("{what} is empty")),
            n if n > bounds.text_bytes => Err(format!("{what} is {n} bytes, over the limit of {}", bounds.text_bytes)),
            _ => Ok(()),
        };
        let class = |what: &str, s: &str| {
            text(what, s)?;
            if s == OTHER_CLASSES {
                return Err(format!("{what} {OTHER_CLASSES:?} is reserved for the classes beyond a bound"));
            }
            Ok(())
        };
        let count = |what: &str, n: usize, limit: usize| {
            if n > limit { Err(format!("{n} {what}, over the limit of {limit}")) } else { Ok(()) }
        };
        let finite =
            |what: &str, v: f64| if v.is_finite() { Ok(()) } else { Err(format!("{what} is {v}, not finite")) };
        let samples = |of: &str, samples: &[Sample]| {
            count(&format!("samples of {of:?}"), samples.len(), bounds.samples)?;
            samples.iter().try_for_each(|s| match s {
                Sample::Number(v) => finite("sample", *v),
                Sample::Category(c) => text("sample", c),
            })
        };
        match self {
            Record::Prediction(p) => {
                text("prediction id", &p.id)?;
                match &p.output {
                    Output::Class { label, score } => {
                        class("class label", label)?;
                        finite("score", f64::from(*score))
                    }
                    Output::TopK(classes) if classes.is_empty() => Err("top-k output is empty".to_owned()),
                    Output::TopK(classes) => {
                        count("top-k classes", classes.len(), bounds.top_k)?;
                        classes.iter().try_for_each(|c| {
                            class("class label", &c.label)?;
                            finite("score", f64::from(c.score))
                        })
                    }
                    Output::Value(v) => finite("output value", *v),
                }
            }
            Record::Features(summary) => {
                count("features in a summary", summary.features.len(), bounds.features)?;
                count("unexpected fields in a summary", summary.unexpected_fields.len(), bounds.unexpected_fields)?;
                summary.features.iter().try_for_each(|f| {
                    text("feature name", &f.name)?;
                    count(&format!("bins of {:?}", f.name), f.bins.len(), bounds.bins)?;
                    samples(&f.name, &f.samples)
                })?;
                summary.unexpected_fields.iter().try_for_each(|f| {
                    text("field name", &f.name)?;
                    samples(&f.name, &f.samples)
                })
            }
            Record::Label(label) => {
                text("prediction id", &label.prediction_id)?;
                match &label.truth {
                    Truth::Class(c) => class("true class", c),
                    Truth::Value(v) => finite("true value", *v),
                }
            }
            Record::Error(error) => text("error message", &error.message),
        }
    }

    /// The event time a record is counted at.
    pub fn timestamp_ms(&self) -> i64 {
        match self {
            Record::Prediction(p) => p.timestamp_ms,
            Record::Features(f) => f.window_start_ms,
            Record::Label(l) => l.timestamp_ms,
            Record::Error(e) => e.timestamp_ms,
        }
    }
}

impl Batch {
    /// Splits the records into those that validate and a diagnostic for each that does not: a
    /// batch with some bad records still delivers the good ones.
    pub fn partition(self) -> (Batch, Vec<Diagnostic>) {
        self.partition_by(|_| Ok(()))
    }

    /// As [`Batch::partition`], with `also` judging each valid record in turn (a receiver's own
    /// bounds, such as how many minutes one batch may span).
    pub fn partition_by(self, mut also: impl FnMut(&Record) -> Result<(), String>) -> (Batch, Vec<Diagnostic>) {
        let mut diagnostics = Vec::new();
        let mut valid = Vec::with_capacity(self.records.len());
        for (index, record) in self.records.into_iter().enumerate() {
            match record.validate().and_then(|()| also(&record)) {
                Ok(()) => valid.push(record),
                Err(reason) => diagnostics.push(Diagnostic { index, reason }),
            }
        }
        (Batch { records: valid, ..self }, diagnostics)
    }
}
