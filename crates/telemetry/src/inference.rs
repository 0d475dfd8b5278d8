//! From one inference to telemetry: the output summary of each row, and which feature of the
//! reference profile each input value is. Every client (browser, edge host, native) records runs
//! the same way through these.
//!
//! Tensors reach this module as plain values (`f64` per element, row-major) so that it does not
//! depend on the runtime: a "row" is one index of the leading (batch) axis.

use std::borrow::Borrow;

use crate::profile::{Profile, Summarizer, Value};
use crate::schema::{EngineKind, Output, Prediction, Record};

/// One tensor of a run, flattened: `rows` × `width` values.
#[derive(Debug, Clone, Copy)]
pub struct Flat<'a> {
    pub name: &'a str,
    pub values: &'a [f64],
    /// Elements per row: the product of the non-batch dims (1 for a `[N]` tensor).
    pub width: usize,
    /// Whether the element type is an integer (a class index, not a score).
    pub integral: bool,
}

impl Flat<'_> {
    pub fn rows(&self) -> usize {
        self.values.len().checked_div(self.width).unwrap_or(0)
    }
}

/// A tensor's values as telemetry reads them, owned: what a client builds from its own tensor type
/// to get a [`Flat`] view.
#[derive(Debug, Clone, PartialEq)]
pub struct FlatTensor {
    pub name: String,
    pub shape: Vec<usize>,
    pub values: Vec<f64>,
    pub integral: bool,
}

impl FlatTensor {
    pub fn as_flat(&self) -> Flat<'_> {
        let (_, width) = rows_and_width(&self.shape);
        Flat { name: &self.name, values: &self.values, width, integral: self.integral }
    }
}

/// Rows and per-row width of a tensor shape: the leading axis is the batch (a scalar is one row).
pub fn rows_and_width(shape: &[usize]) -> (usize, usize) {
    match shape {
        [] => (1, 1),
        [rows, rest @ ..] => (*rows, rest.iter().product()),
    }
}

/// The summary of each row of a model output: a row of several scores is the class with the
/// highest (named by `classes` where given, else by its index); a single integer is a class index;
/// a single float is a regression value.
pub fn summarize_outputs(output: Flat<'_>, classes: Option<&[String]>) -> Vec<Output> {
    let class_name = |i: usize| classes.and_then(|c| c.get(i)).cloned().unwrap_or_else(|| i.to_string());
    if output.width == 0 {
        return Vec::new();
    }
    output
        .values
        .chunks_exact(output.width)
        .map(|row| match row {
            [v] if output.integral && *v >= 0.0 => Output::Class { label: class_name(*v as usize), score: 1.0 },
            [v] if output.integral => Output::Class { label: v.to_string(), score: 1.0 },
            [v] => Output::Value(*v),
            scores => {
                let (best, score) = scores
                    .iter()
                    .copied()
                    .enumerate()
                    .fold((0, f64::NEG_INFINITY), |(bi, bv), (i, v)| if v > bv { (i, v) } else { (bi, bv) });
                Output::Class { label: class_name(best), score: score as f32 }
            }
        })
        .collect()
}

/// Where the features of a reference profile are in a model's inputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeatureMap {
    /// Each feature is an input of its name, one value per row (tabular models).
    ByName,
    /// The features are, in order, the elements of each row of one input (a feature vector or an
    /// image): `width` of them.
    Columns { input: String, width: usize },
}

impl FeatureMap {
    /// Matches a profile to a model's inputs, given as (name, per-row width); `None` when neither
    /// every feature names a one-value input nor one input has a row as wide as the profile.
    pub fn new(profile: &Profile, inputs: &[(&str, usize)]) -> Option<FeatureMap> {
        if profile.features.is_empty() {
            return None;
        }
        let by_name =
            profile.features.iter().all(|f| inputs.iter().any(|(name, width)| *name == f.name && *width == 1));
        if by_name {
            return Some(FeatureMap::ByName);
        }
        let width = profile.features.len();
        inputs
            .iter()
            .find(|(_, w)| *w == width)
            .map(|(name, _)| FeatureMap::Columns { input: (*name).to_owned(), width })
    }

    /// Counts the rows of one run's inputs into `summarizer`.
    pub fn observe<P: Borrow<Profile>>(&self, summarizer: &mut Summarizer<P>, inputs: &[Flat<'_>]) {
        match self {
            FeatureMap::ByName => {
                let Some(rows) = inputs.first().map(Flat::rows) else { return };
                summarizer.add_rows(rows as u64);
                let names: Vec<String> = summarizer.profile().features.iter().map(|f| f.name.clone()).collect();
                for input in inputs.iter().filter(|i| i.width == 1 && names.iter().any(|n| n == i.name)) {
                    summarizer.observe_column(input.name, input.values.iter().map(|&v| Value::Number(v)));
                }
            }
            FeatureMap::Columns { input, width } => {
                let Some(input) = inputs.iter().find(|i| i.name == input && i.width == *width) else { return };
                summarizer.add_rows(input.rows() as u64);
                let names: Vec<String> = summarizer.profile().features.iter().map(|f| f.name.clone()).collect();
                for (column, name) in names.iter().enumerate() {
                    let values = input.values.iter().skip(column).step_by(*width).map(|&v| Value::Number(v));
                    summarizer.observe_column(name, values);
                }
            }
        }
    }
}

/// One run as a client saw it: its inputs (only read when [`RunRecorder::wants_inputs`]) and the
/// output [`RunRecorder::summarised_output`] chose.
#[derive(Debug, Clone, Copy)]
pub struct Run<'a> {
    pub inputs: &'a [Flat<'a>],
    pub output: Option<Flat<'a>>,
    pub latency_us: u32,
    pub engine: EngineKind,
}

/// How a client turns runs into records.
#[derive(Debug, Clone, Default)]
pub struct RecorderConfig {
    /// The output whose rows become predictions (default: the model's last output).
    pub output: Option<String>,
    /// Class names by index, for classifier outputs.
    pub classes: Option<Vec<String>>,
    /// A feature summary covers at most this long (ms).
    pub summary_every_ms: i64,
    /// Raw values kept per feature and per summary (0: none, the default). Opt-in: they let the
    /// collector tell a renamed field from a missing one and name new categories.
    pub sample_limit: usize,
}

/// What every client (page, edge host, native app) records for a run: one prediction per row of
/// the summarised output, and the inputs counted against the reference profile, summarised into
/// one record per `summary_every_ms`. No IO, no clock: time comes in, records go out.
///
/// When the profile describes the application's records rather than the model's inputs (a form
/// with named fields and categories, of which the model sees an encoding), the client counts
/// those records with [`RunRecorder::observe_record`] instead.
#[derive(Debug)]
pub struct RunRecorder<P: Borrow<Profile>> {
    /// Where the profile's features are in the model's inputs, when they are there.
    map: Option<FeatureMap>,
    summarizer: Option<Summarizer<P>>,
    config: RecorderConfig,
    summary_since: i64,
}

/// Why [`RunRecorder::observe_record`] counted nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ObserveError {
    #[error("no reference profile: there is nothing to count the record against")]
    NoProfile,
    #[error(
        "the reference profile's features are the model's inputs ({0}), and every run counts them already: \
         counting the record too would count its row twice"
    )]
    InputsCounted(String),
}

impl<P: Borrow<Profile>> RunRecorder<P> {
    /// `inputs` are the model's inputs as (name, per-row width). Without a profile no feature
    /// summaries are made; with one that matches no input ([`RunRecorder::counts_features`]
    /// says), only records given to [`RunRecorder::observe_record`] are counted.
    pub fn new(profile: Option<P>, inputs: &[(&str, usize)], config: RecorderConfig) -> RunRecorder<P> {
        let map = profile.as_ref().and_then(|p| FeatureMap::new(p.borrow(), inputs));
        let summarizer = profile.map(|p| Summarizer::new(p, config.sample_limit));
        RunRecorder { map, summarizer, config, summary_since: 0 }
    }

    /// Whether every run's inputs are counted against the profile.
    pub fn counts_features(&self) -> bool {
        self.map.is_some()
    }

    /// Whether [`Run::inputs`] will be read (copying inputs costs; skip it when not).
    pub fn wants_inputs(&self) -> bool {
        self.map.is_some()
    }

    /// Counts one application record (field name, value) against the profile: its fields the
    /// profile lacks count as unexpected (a rename shows as a missing plus a new field), its
    /// categories the profile never saw as unseen. Returns the feature summary when one is due.
    pub fn observe_record(&mut self, row: &[(&str, Value<'_>)], now_ms: i64) -> Result<Option<Record>, ObserveError> {
        let summarizer = self.summarizer.as_mut().ok_or(ObserveError::NoProfile)?;
        if let Some(map) = &self.map {
            let inputs = match map {
                FeatureMap::ByName => "one input per feature".to_owned(),
                FeatureMap::Columns { input, .. } => format!("the columns of `{input}`"),
            };
            return Err(ObserveError::InputsCounted(inputs));
        }
        if summarizer.rows() == 0 {
            self.summary_since = now_ms;
        }
        summarizer.observe(row);
        Ok(self.take_summary(now_ms, false))
    }

    /// The output whose rows become predictions, among the model's output names.
    pub fn summarised_output<'a>(&self, mut names: impl DoubleEndedIterator<Item = &'a str>) -> Option<&'a str> {
        match &self.config.output {
            Some(wanted) => names.find(|n| n == wanted),
            None => names.next_back(),
        }
    }

    /// The records of one run: a prediction per row (ids `{id}`, `{id}-1`, …) and, when one is
    /// due, the feature summary. Returns the prediction ids and the records.
    pub fn record(&mut self, run: &Run<'_>, id: &str, now_ms: i64) -> (Vec<String>, Vec<Record>) {
        let outputs = run.output.map(|o| summarize_outputs(o, self.config.classes.as_deref())).unwrap_or_default();
        let ids: Vec<String> =
            (0..outputs.len()).map(|i| if i == 0 { id.to_owned() } else { format!("{id}-{i}") }).collect();
        let mut records: Vec<Record> = ids
            .iter()
            .zip(outputs)
            .map(|(id, output)| {
                Record::Prediction(Prediction {
                    id: id.clone(),
                    timestamp_ms: now_ms,
                    latency_us: run.latency_us,
                    engine: run.engine,
                    output,
                })
            })
            .collect();
        if let (Some(map), Some(summarizer)) = (&self.map, &mut self.summarizer) {
            if summarizer.rows() == 0 {
                self.summary_since = now_ms;
            }
            map.observe(summarizer, run.inputs);
        }
        records.extend(self.take_summary(now_ms, false));
        (ids, records)
    }

    /// The feature summary of the rows counted so far, when there are any and it is due (or
    /// `force`, e.g. at shutdown); counting starts afresh.
    pub fn take_summary(&mut self, now_ms: i64, force: bool) -> Option<Record> {
        let due = force || now_ms - self.summary_since >= self.config.summary_every_ms;
        let summarizer = self.summarizer.as_mut().filter(|s| s.rows() > 0 && due)?;
        let record = summarizer.take(self.summary_since);
        self.summary_since = now_ms;
        Some(record)
    }

    /// When the pending summary becomes due, if rows are waiting.
    pub fn next_summary_at(&self) -> Option<i64> {
        let summarizer = self.summarizer.as_ref()?;
        (summarizer.rows() > 0).then(|| self.summary_since.saturating_add(self.config.summary_every_ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::{FeatureKind, FeatureProfile, NumberProfile};
    use crate::schema::Record;

    fn flat<'a>(name: &'a str, values: &'a [f64], width: usize, integral: bool) -> Flat<'a> {
        Flat { name, values, width, integral }
    }

    #[test]
    fn outputs_are_classes_or_values() {
        let classes = ["cat".to_owned(), "dog".to_owned()];
        let scores = [0.2, 0.8, 0.9, 0.1];
        assert_eq!(
            summarize_outputs(flat("p", &scores, 2, false), Some(&classes)),
            [Output::Class { label: "dog".into(), score: 0.8 }, Output::Class { label: "cat".into(), score: 0.9 }]
        );
        assert_eq!(
            summarize_outputs(flat("label", &[3.0], 1, true), None),
            [Output::Class { label: "3".into(), score: 1.0 }]
        );
        assert_eq!(
            summarize_outputs(flat("y", &[1.5, -2.0], 1, false), None),
            [Output::Value(1.5), Output::Value(-2.0)]
        );
        assert_eq!(rows_and_width(&[4, 1, 8, 8]), (4, 64));
        assert_eq!(rows_and_width(&[]), (1, 1));
    }

    fn profile(names: &[&str]) -> Profile {
        let values: Vec<f64> = (0..100).map(f64::from).collect();
        Profile {
            baseline: None,
            profile_version: crate::PROFILE_VERSION,
            rows: 100,
            features: names
                .iter()
                .map(|n| FeatureProfile {
                    name: (*n).to_owned(),
                    missing_rate: 0.0,
                    kind: FeatureKind::Number(NumberProfile::build(&values, 4).unwrap()),
                })
                .collect(),
            target: None,
        }
    }

    #[test]
    fn a_recorder_makes_a_prediction_per_row_and_summaries_by_age() {
        let p = profile(&["a", "b"]);
        let config = RecorderConfig { summary_every_ms: 1_000, ..RecorderConfig::default() };
        let mut recorder = RunRecorder::new(Some(&p), &[("x", 2)], config);
        assert!(recorder.counts_features() && recorder.wants_inputs());
        assert_eq!(recorder.summarised_output(["logits", "probs"].into_iter()), Some("probs"));
        let run = |values: &'static [f64]| Run {
            inputs: Box::leak(Box::new([flat("x", values, 2, false)])),
            output: Some(flat("probs", &[0.1, 0.9, 0.8, 0.2], 2, false)),
            latency_us: 5,
            engine: EngineKind::Cpu,
        };
        let (ids, records) = recorder.record(&run(&[1.0, 2.0, 3.0, 4.0]), "p", 10_000);
        assert_eq!(ids, ["p", "p-1"]);
        assert_eq!(records.len(), 2, "two predictions; the summary is not due yet");
        assert_eq!(recorder.next_summary_at(), Some(11_000));
        let (_, records) = recorder.record(&run(&[5.0, 6.0, 7.0, 8.0]), "q", 11_000);
        let Some(Record::Features(summary)) = records.last() else { panic!("a summary is due: {records:?}") };
        assert_eq!((summary.rows, summary.window_start_ms), (4, 10_000));
        assert_eq!(recorder.take_summary(11_500, true), None, "nothing counted since");
    }

    #[test]
    fn features_map_by_name_or_by_column() {
        let p = profile(&["a", "b"]);
        assert_eq!(FeatureMap::new(&p, &[("a", 1), ("b", 1), ("c", 3)]), Some(FeatureMap::ByName));
        assert_eq!(FeatureMap::new(&p, &[("x", 2)]), Some(FeatureMap::Columns { input: "x".into(), width: 2 }));
        assert_eq!(FeatureMap::new(&p, &[("x", 3)]), None);

        let map = FeatureMap::new(&p, &[("x", 2)]).unwrap();
        let mut summarizer = Summarizer::new(&p, 0);
        // Two rows: (0, 500) and (50, 60); 500 is out of the reference range.
        map.observe(&mut summarizer, &[flat("x", &[0.0, 500.0, 50.0, 60.0], 2, false)]);
        let Record::Features(summary) = summarizer.take(0) else { panic!("a features record") };
        assert_eq!(summary.rows, 2);
        assert_eq!(summary.features[1].out_of_range, 1);
        assert_eq!(summary.features[0].missing, 0);
        assert_eq!(summary.features.iter().map(|f| f.bins.iter().sum::<u64>()).collect::<Vec<_>>(), [2, 2]);
    }

    #[test]
    fn application_records_are_counted_when_the_inputs_are_not_the_features() {
        let mut p = profile(&["a"]);
        p.features.push(FeatureProfile {
            name: "region".into(),
            missing_rate: 0.0,
            kind: FeatureKind::Category(crate::profile::CategoryProfile::build(["north", "south"], 10)),
        });
        let config = RecorderConfig { summary_every_ms: 1_000, sample_limit: 4, ..RecorderConfig::default() };
        let mut recorder = RunRecorder::new(Some(&p), &[("x", 7)], config.clone());
        assert!(!recorder.counts_features() && !recorder.wants_inputs());
        let row = |a: f64, region| [("a_renamed", Value::Number(a)), ("region", Value::Text(region))];
        assert_eq!(recorder.observe_record(&row(1.0, "north"), 10_000), Ok(None));
        let summary = recorder.observe_record(&row(2.0, "west"), 11_000).unwrap();
        let Some(Record::Features(summary)) = summary else { panic!("a summary is due: {summary:?}") };
        assert_eq!((summary.rows, summary.window_start_ms), (2, 10_000));
        assert_eq!((summary.features[0].missing, summary.features[1].unseen), (2, 1));
        assert_eq!(summary.unexpected_fields[0].name, "a_renamed");
        assert_eq!(summary.unexpected_fields[0].samples.len(), 2, "opted into samples: a rename can be told");

        let mut counted = RunRecorder::new(Some(&p), &[("x", 2)], config.clone());
        assert!(counted.counts_features());
        let e = counted.observe_record(&row(1.0, "north"), 0).unwrap_err();
        assert!(e.to_string().contains("the columns of `x`"), "{e}");
        let mut none = RunRecorder::<&Profile>::new(None, &[("x", 2)], config);
        assert_eq!(none.observe_record(&row(1.0, "north"), 0), Err(ObserveError::NoProfile));
    }
}
