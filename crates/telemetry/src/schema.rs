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

impl Record {
    /// Checks what the type system cannot: ids present, numbers finite, texts bounded.
    pub fn validate(&self) -> Result<(), String> {
        const MAX_TEXT: usize = 4096;
        let text = |what: &str, s: &str| match s.len() {
            0 => Err(format!("{what} is empty")),
            n if n > MAX_TEXT => Err(format!("{what} is {n} bytes, over the limit of {MAX_TEXT}")),
            _ => Ok(()),
        };
        let finite =
            |what: &str, v: f64| if v.is_finite() { Ok(()) } else { Err(format!("{what} is {v}, not finite")) };
        match self {
            Record::Prediction(p) => {
                text("prediction id", &p.id)?;
                match &p.output {
                    Output::Class { label, score } => {
                        text("class label", label)?;
                        finite("score", f64::from(*score))
                    }
                    Output::TopK(classes) if classes.is_empty() => Err("top-k output is empty".to_owned()),
                    Output::TopK(classes) => classes.iter().try_for_each(|c| {
                        text("class label", &c.label)?;
                        finite("score", f64::from(c.score))
                    }),
                    Output::Value(v) => finite("output value", *v),
                }
            }
            Record::Features(summary) => {
                let sample = |s: &Sample| match s {
                    Sample::Number(v) => finite("sample", *v),
                    Sample::Category(c) => text("sample", c),
                };
                summary.features.iter().try_for_each(|f| {
                    text("feature name", &f.name)?;
                    f.samples.iter().try_for_each(sample)
                })?;
                summary.unexpected_fields.iter().try_for_each(|f| {
                    text("field name", &f.name)?;
                    f.samples.iter().try_for_each(sample)
                })
            }
            Record::Label(label) => {
                text("prediction id", &label.prediction_id)?;
                match &label.truth {
                    Truth::Class(c) => text("true class", c),
                    Truth::Value(v) => finite("true value", *v),
                }
            }
            Record::Error(error) => text("error message", &error.message),
        }
    }
}

impl Batch {
    /// Splits the records into those that validate and a diagnostic for each that does not: a
    /// batch with some bad records still delivers the good ones.
    pub fn partition(self) -> (Batch, Vec<Diagnostic>) {
        let mut diagnostics = Vec::new();
        let mut valid = Vec::with_capacity(self.records.len());
        for (index, record) in self.records.into_iter().enumerate() {
            match record.validate() {
                Ok(()) => valid.push(record),
                Err(reason) => diagnostics.push(Diagnostic { index, reason }),
            }
        }
        (Batch { records: valid, ..self }, diagnostics)
    }
}
