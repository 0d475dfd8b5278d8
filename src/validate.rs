//! `sextant validate`: a model on a fresh labelled data set before it ships. The monitoring
//! crate's metrics (classification with Wilson intervals; regression MAE, RMSE, R²), challengers
//! through the same rows with an exact paired test against the model (McNemar for classes, the
//! sign test on absolute errors for values), the comparison with the baseline its profile promises
//! (`--profile`, built with `profile build --model`), what running it costs here, a CI gate
//! (`--fail-under`, `--fail-over`, `--fail-if-worse`) and a model card a reviewer can sign off
//! (`--report OUT.md`).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use analysis::performance::{ClassificationMetrics, Confusion, Estimate, Regression, RegressionMetrics};
use anyhow::{Context, Result, bail};
use runtime::{Session, Tensor, TensorData};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::drift::class_name;
use crate::options::{Backend, load_model};
use crate::table::{Table, is_missing};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The model to validate.
    model: PathBuf,
    /// Labelled data: CSV with a header row.
    data: PathBuf,
    /// The column holding the truth: the class, or the value for a regression.
    #[arg(long)]
    target: String,
    /// Feature columns in the order of the model's input (default: every other column, in file order).
    #[arg(long, value_delimiter = ',')]
    columns: Option<Vec<String>>,
    /// The output holding the prediction (default: the model's last output): class labels
    /// (integers), scores whose argmax is the class, or one value a row (a regression).
    #[arg(long)]
    output: Option<String>,
    /// A challenger: the same rows through it, compared with the model (repeatable).
    #[arg(long = "against", value_name = "OTHER.onnx")]
    against: Vec<PathBuf>,
    /// The model's reference profile (`sextant profile build`): the data's drift against it is
    /// reported, so a validation set unlike production data is flagged.
    #[arg(long, value_name = "PROFILE.json")]
    profile: Option<PathBuf>,
    /// Rows per inference.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..=65536))]
    batch: u32,
    /// Engine: auto, gpu or cpu.
    #[arg(long, value_enum, default_value = "cpu")]
    backend: Backend,
    /// Exit 1 when the model's metric is under the value (accuracy, macro_f1, weighted_f1,
    /// macro_precision, macro_recall; r2 for a regression), e.g. `--fail-under accuracy=0.9`.
    #[arg(long = "fail-under", value_name = "METRIC=VALUE", value_parser = parse_gate)]
    fail_under: Vec<(Metric, f64)>,
    /// Exit 1 when a regression's error is over the value (mae, rmse), e.g. `--fail-over mae=40`.
    #[arg(long = "fail-over", value_name = "METRIC=VALUE", value_parser = parse_gate)]
    fail_over: Vec<(Metric, f64)>,
    /// Exit 1 when the model is significantly worse than a challenger (`--against`, e.g. the model
    /// in production) or than the baseline its profile promises (`--profile`).
    #[arg(long)]
    fail_if_worse: bool,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
    /// Write a model card: Markdown, or one self-contained HTML page for a name ending in `.html`.
    #[arg(long, value_name = "OUT.md|OUT.html")]
    report: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
enum Metric {
    Accuracy,
    MacroF1,
    WeightedF1,
    MacroPrecision,
    MacroRecall,
    R2,
    Mae,
    Rmse,
}

impl Metric {
    /// The metric's value, when it applies to the model's task.
    fn of(self, metrics: &Metrics) -> Option<f64> {
        match (self, metrics) {
            (Metric::Accuracy, Metrics::Classification(m)) => Some(m.accuracy.value),
            (Metric::MacroF1, Metrics::Classification(m)) => Some(m.macro_avg.f1),
            (Metric::WeightedF1, Metrics::Classification(m)) => Some(m.weighted_avg.f1),
            (Metric::MacroPrecision, Metrics::Classification(m)) => Some(m.macro_avg.precision),
            (Metric::MacroRecall, Metrics::Classification(m)) => Some(m.macro_avg.recall),
            (Metric::R2, Metrics::Regression(m)) => Some(m.r2),
            (Metric::Mae, Metrics::Regression(m)) => Some(m.mae),
            (Metric::Rmse, Metrics::Regression(m)) => Some(m.rmse),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Metric::Accuracy => "accuracy",
            Metric::MacroF1 => "macro_f1",
            Metric::WeightedF1 => "weighted_f1",
            Metric::MacroPrecision => "macro_precision",
            Metric::MacroRecall => "macro_recall",
            Metric::R2 => "r2",
            Metric::Mae => "mae",
            Metric::Rmse => "rmse",
        }
    }

    /// Errors: a gate caps them from above (`--fail-over`); scores are floored (`--fail-under`).
    fn is_error(self) -> bool {
        matches!(self, Metric::Mae | Metric::Rmse)
    }
}

const METRICS: [Metric; 8] = [
    Metric::Accuracy,
    Metric::MacroF1,
    Metric::WeightedF1,
    Metric::MacroPrecision,
    Metric::MacroRecall,
    Metric::R2,
    Metric::Mae,
    Metric::Rmse,
];

fn parse_gate(text: &str) -> Result<(Metric, f64)> {
    let Some((name, value)) = text.split_once('=') else { bail!("expected METRIC=VALUE, got `{text}`") };
    let names: Vec<&str> = METRICS.iter().map(|m| m.name()).collect();
    let metric = METRICS
        .into_iter()
        .find(|m| m.name() == name.trim())
        .with_context(|| format!("unknown metric `{name}`; one of {names:?}"))?;
    let value: f64 = value.trim().parse().with_context(|| format!("`{value}` is not a number"))?;
    Ok((metric, value))
}

/// One model run over the data.
#[derive(Debug, Serialize)]
struct Ran {
    model: String,
    sha256: String,
    bytes: u64,
    engine: String,
    resources: Resources,
    #[serde(skip)]
    predictions: Predictions,
}

/// One model's result on the data.
#[derive(Debug, Serialize)]
struct Evaluation {
    #[serde(flatten)]
    ran: Ran,
    metrics: Metrics,
}

/// Each row's prediction: a class, or a value.
#[derive(Debug)]
enum Predictions {
    Classes(Vec<String>),
    Values(Vec<f64>),
}

impl Predictions {
    fn append(&mut self, more: Predictions) -> Result<()> {
        match (self, more) {
            (Predictions::Classes(a), Predictions::Classes(b)) => a.extend(b),
            (Predictions::Values(a), Predictions::Values(b)) => a.extend(b),
            _ => bail!("the output changed between classes and values from one batch to the next"),
        }
        Ok(())
    }
}

#[derive(Debug, Serialize)]
#[serde(tag = "task", rename_all = "snake_case")]
enum Metrics {
    Classification(ClassificationMetrics),
    Regression(RegressionMetrics),
}

/// What running the model costs on this machine.
#[derive(Debug, Serialize)]
struct Resources {
    load_ms: f64,
    batch1_p50_ms: f64,
    batch1_p99_ms: f64,
    batch: u32,
    batch_p50_ms: f64,
    /// The process's peak resident memory after loading and running it (Linux), MiB.
    peak_rss_mib: Option<f64>,
}

/// A challenger against the model: an exact paired test on the rows where one does better —
/// McNemar (only one of them right) for classes, the sign test (a smaller absolute error) for values.
#[derive(Debug, Serialize)]
struct Comparison {
    challenger: String,
    test: &'static str,
    model_better: u64,
    challenger_better: u64,
    p_value: f64,
    verdict: &'static str,
}

/// The model on this data against what it scored when its profile was built (two independent
/// samples: the two-proportion z-test on accuracy, Welch's t-test on absolute errors).
#[derive(Debug, Serialize)]
struct Promise {
    /// Whether the profile's baseline was measured on this very model file.
    same_model: bool,
    baseline_rows: u64,
    metric: &'static str,
    promised: f64,
    measured: f64,
    test: &'static str,
    p_value: f64,
    verdict: &'static str,
}

#[derive(Debug, Serialize)]
struct Report {
    data: String,
    data_sha256: String,
    rows: usize,
    target: String,
    columns: Vec<String>,
    model: Evaluation,
    challengers: Vec<Evaluation>,
    comparisons: Vec<Comparison>,
    /// The data against the reference profile, with `--profile`.
    #[serde(skip_serializing_if = "Option::is_none")]
    drift: Option<analysis::drift::DatasetDrift>,
    /// Against the baseline the profile promises, when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    promise: Option<Promise>,
    /// Why the gate refused the model (empty: it passed).
    failed: Vec<String>,
    validated_at: String,
    tool: String,
}

/// The significance level for calling a difference a win or a loss.
const ALPHA: f64 = 0.05;

pub fn main(args: Args) -> Result<ExitCode> {
    let table = Table::read(&args.data)?;
    let data_name = args.data.display().to_string();
    let truth_cells = table
        .column(&args.target)
        .with_context(|| format!("{data_name}: no target column `{}`; columns are {:?}", args.target, table.headers))?;
    let columns: Vec<String> = match &args.columns {
        Some(columns) => columns.clone(),
        None => table.headers.iter().filter(|h| **h != args.target).cloned().collect(),
    };
    if let Some(missing) = columns.iter().find(|c| table.column(c).is_none()) {
        bail!("{data_name}: no column `{missing}`; columns are {:?}", table.headers);
    }
    let features = features(&table, &columns, &data_name)?;
    let rows = truth_cells.len();
    let options = RunOptions { output: args.output.clone(), batch: args.batch, backend: args.backend };
    let ran = run(&args.model, &features, columns.len(), rows, &options)?;
    let truth = Truth::read(truth_cells, &ran.predictions, &data_name, &args.target)?;
    let evaluate = |ran: Ran| -> Result<Evaluation> {
        let metrics = truth.metrics(&ran.predictions).with_context(|| ran.model.clone())?;
        Ok(Evaluation { ran, metrics })
    };
    let model = evaluate(ran)?;
    let challengers = args
        .against
        .iter()
        .map(|path| evaluate(run(path, &features, columns.len(), rows, &options)?))
        .collect::<Result<Vec<_>>>()?;
    let comparisons: Vec<Comparison> = challengers.iter().map(|c| compare(&model, c, &truth)).collect();
    let profile = match &args.profile {
        None => None,
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("while reading {}", path.display()))?;
            let profile: telemetry::Profile = serde_json::from_str(&text)
                .with_context(|| format!("{} is not a reference profile", path.display()))?;
            Some(profile)
        }
    };
    let target = args.target.as_str();
    let drift = profile.as_ref().map(|p| crate::drift::against_profile(p, &table, &|name| name == target));
    let promise = match profile.as_ref().and_then(|p| p.baseline.as_ref()) {
        Some(baseline) => Some(promise(&model, baseline)?),
        None => None,
    };
    let failed = gate(&args, &model, &comparisons, promise.as_ref())?;
    let report = Report {
        data: data_name,
        data_sha256: sha256_file(&args.data)?,
        rows,
        target: args.target.clone(),
        columns,
        model,
        challengers,
        comparisons,
        drift,
        promise,
        failed,
        validated_at: utc_now(),
        tool: format!("sextant {}", env!("CARGO_PKG_VERSION")),
    };
    if let Some(path) = &args.report {
        let card = model_card(&report);
        let html = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("html") || e.eq_ignore_ascii_case("htm"));
        let card = if html {
            crate::html::markdown_page(&format!("Model card: {}", report.model.ran.model), &card)
        } else {
            card
        };
        std::fs::write(path, card).with_context(|| format!("while writing {}", path.display()))?;
    }
    match args.json {
        true => println!("{}", serde_json::to_string_pretty(&report)?),
        false => print!("{}", model_card(&report)),
    }
    if report.failed.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    for reason in &report.failed {
        eprintln!("validation failed: {reason}");
    }
    Ok(ExitCode::FAILURE)
}

/// Why the gate refuses the model (empty: it passes).
fn gate(args: &Args, model: &Evaluation, comparisons: &[Comparison], promise: Option<&Promise>) -> Result<Vec<String>> {
    let task = if matches!(model.metrics, Metrics::Regression(_)) { "regression" } else { "classification" };
    let mut failed = Vec::new();
    for (gates, over) in [(&args.fail_under, false), (&args.fail_over, true)] {
        for &(metric, limit) in gates {
            if metric.is_error() != over {
                let (flag, other) =
                    if over { ("--fail-over", "--fail-under") } else { ("--fail-under", "--fail-over") };
                bail!(
                    "{flag} takes {}; `{}` belongs in {other}",
                    if over { "errors" } else { "scores" },
                    metric.name()
                );
            }
            let value = metric
                .of(&model.metrics)
                .with_context(|| format!("`{}` does not apply to a {task} model", metric.name()))?;
            match over {
                false if value < limit => failed.push(format!("{} is {value:.4}, under {limit}", metric.name())),
                true if value > limit => failed.push(format!("{} is {value:.4}, over {limit}", metric.name())),
                _ => {}
            }
        }
    }
    if args.fail_if_worse {
        for c in comparisons.iter().filter(|c| c.verdict == CHALLENGER_BETTER) {
            failed.push(format!(
                "worse than `{}` ({}: better on {} rows, worse on {}; p = {:.3e})",
                c.challenger, c.test, c.model_better, c.challenger_better, c.p_value
            ));
        }
        if let Some(p) = promise.filter(|p| p.verdict == WORSE_THAN_PROMISED) {
            failed.push(format!(
                "{} {:.4} is significantly worse than the promised {:.4} ({}, p = {:.3e})",
                p.metric, p.measured, p.promised, p.test, p.p_value
            ));
        }
    }
    Ok(failed)
}

const CHALLENGER_BETTER: &str = "challenger better";
const WORSE_THAN_PROMISED: &str = "worse than promised";

/// The model's result here against its profile's baseline.
fn promise(model: &Evaluation, baseline: &telemetry::Baseline) -> Result<Promise> {
    use telemetry::BaselineMetrics;
    let (metric, test, promised, measured, p_value, lower_is_better) = match (&model.metrics, baseline.metrics) {
        (Metrics::Classification(m), BaselineMetrics::Classification { accuracy, .. }) => {
            let n = m.accuracy.n;
            let right = |a: f64, n: u64| (a * n as f64).round() as u64;
            let p = analysis::difference::two_proportions_p(
                right(m.accuracy.value, n),
                n,
                right(accuracy, baseline.rows),
                baseline.rows,
            );
            ("accuracy", "two-proportion z-test", accuracy, m.accuracy.value, p, false)
        }
        (Metrics::Regression(m), BaselineMetrics::Regression { mae, abs_error_sd, .. }) => {
            let p = analysis::difference::welch_p(m.mae, abs_error_sd_of(m), m.n, mae, abs_error_sd, baseline.rows);
            ("MAE", "Welch's t-test on absolute errors", mae, m.mae, p, true)
        }
        (Metrics::Classification(_), _) => bail!("the profile's baseline is a regression's; the model is a classifier"),
        (Metrics::Regression(_), _) => bail!("the profile's baseline is a classifier's; the model is a regression"),
    };
    let worse = if lower_is_better { measured > promised } else { measured < promised };
    let verdict = match (p_value < ALPHA, worse) {
        (false, _) => "as promised (no significant difference)",
        (true, true) => WORSE_THAN_PROMISED,
        (true, false) => "better than promised",
    };
    Ok(Promise {
        same_model: baseline.model == format!("sha256:{}", model.ran.sha256),
        baseline_rows: baseline.rows,
        metric,
        promised,
        measured,
        test,
        p_value,
        verdict,
    })
}

/// The sample standard deviation of the absolute errors, from MAE and RMSE.
fn abs_error_sd_of(m: &RegressionMetrics) -> f64 {
    let n = m.n as f64;
    let variance = (m.rmse * m.rmse - m.mae * m.mae).max(0.0);
    if m.n > 1 { (variance * n / (n - 1.0)).sqrt() } else { 0.0 }
}

/// What the model scores on a labelled table (every column but `target` a feature, in file order):
/// the baseline `sextant profile build --model` stores in the profile.
pub(crate) fn baseline(path: &Path, table: &Table, target: &str) -> Result<telemetry::Baseline> {
    let name = path.display().to_string();
    let truth_cells = table.column(target).with_context(|| format!("no target column `{target}`"))?;
    let columns: Vec<String> = table.headers.iter().filter(|h| *h != target).cloned().collect();
    let features = features(table, &columns, "the profiled data")?;
    let options = RunOptions { output: None, batch: 256, backend: Backend::Cpu };
    let ran = run(path, &features, columns.len(), truth_cells.len(), &options)?;
    let truth = Truth::read(truth_cells, &ran.predictions, "the profiled data", target)?;
    let metrics = match truth.metrics(&ran.predictions).with_context(|| name.clone())? {
        Metrics::Classification(m) => {
            telemetry::BaselineMetrics::Classification { accuracy: m.accuracy.value, macro_f1: m.macro_avg.f1 }
        }
        Metrics::Regression(m) => telemetry::BaselineMetrics::Regression {
            mae: m.mae,
            rmse: m.rmse,
            r2: m.r2,
            abs_error_sd: abs_error_sd_of(&m),
        },
    };
    Ok(telemetry::Baseline { model: format!("sha256:{}", ran.sha256), rows: truth_cells.len() as u64, metrics })
}

/// How a model is run over the rows.
#[derive(Debug)]
struct RunOptions {
    /// The prediction's output (default: the last).
    output: Option<String>,
    batch: u32,
    backend: Backend,
}

/// The feature columns as one row-major matrix; a cell that is not a number is named by row and column.
fn features(table: &Table, columns: &[String], data: &str) -> Result<Vec<f32>> {
    let rows = table.rows();
    let mut values = vec![0.0f32; rows * columns.len()];
    for (j, name) in columns.iter().enumerate() {
        let Some(cells) = table.column(name) else { bail!("{data}: no column `{name}`") };
        for (i, cell) in cells.iter().enumerate() {
            values[i * columns.len() + j] = cell.parse::<f32>().ok().filter(|v| v.is_finite()).with_context(|| {
                format!("{data}: data row {}, column `{name}`: expected a number, found {cell:?}", i + 1)
            })?;
        }
    }
    Ok(values)
}

fn run(path: &Path, features: &[f32], width: usize, rows: usize, args: &RunOptions) -> Result<Ran> {
    let name = path.display().to_string();
    let model = load_model(path)?;
    let input = match model.inputs() {
        [input] => input.clone(),
        inputs => bail!("{name}: validation feeds one input of [rows, features]; the model has {}", inputs.len()),
    };
    match input.row_width() {
        Some(w) if w == width => {}
        Some(w) => bail!(
            "{name}: input `{}` takes {w} features a row; the data gives {width} columns (choose them with --columns)",
            input.name
        ),
        None => bail!("{name}: input `{}` has no fixed row width ({:?})", input.name, input.shape),
    }
    let output = match &args.output {
        Some(o) => o.clone(),
        None => model.outputs().last().map(|o| o.name.clone()).context("the model has no outputs")?,
    };
    if !model.outputs().iter().any(|o| o.name == output) {
        let names: Vec<&str> = model.outputs().iter().map(|o| o.name.as_str()).collect();
        bail!("{name}: no output `{output}`; the model has {names:?}");
    }
    let options = runtime::SessionOptions { backend: args.backend.into(), ..runtime::SessionOptions::default() };
    let started = Instant::now();
    let session =
        pollster::block_on(Session::new(&model, &options)).with_context(|| format!("while preparing {name}"))?;
    let load = started.elapsed();

    let progress = indicatif::ProgressBar::new(rows as u64).with_message(name.clone());
    let batch = args.batch as usize;
    let mut predictions: Option<Predictions> = None;
    for start in (0..rows).step_by(batch) {
        let n = batch.min(rows - start);
        let tensor = Tensor::new(&[n, width], features[start * width..(start + n) * width].to_vec())?;
        let outputs = pollster::block_on(session.run(vec![(input.name.clone(), tensor)]))
            .with_context(|| format!("{name}: rows {}–{}", start + 1, start + n))?;
        let (_, out) = outputs.iter().find(|(o, _)| *o == output).context("the output went missing")?;
        let batch = predict(out, n).with_context(|| format!("{name}: output `{output}`"))?;
        match &mut predictions {
            Some(all) => all.append(batch)?,
            None => predictions = Some(batch),
        }
        progress.inc(n as u64);
    }
    progress.finish_and_clear();

    let predictions = predictions.context("the data has no rows")?;
    let one = |n: usize| Tensor::new(&[n, width], features[..n * width].to_vec());
    let (p50, p99) = latency(&session, &[(input.name.clone(), one(1)?)], 30)?;
    let (batch_p50, _) = latency(&session, &[(input.name.clone(), one(batch.min(rows))?)], 10)?;
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    Ok(Ran {
        sha256: sha256_file(path)?,
        bytes: std::fs::metadata(path)?.len(),
        engine: session.engine().to_string(),
        model: name,
        resources: Resources {
            load_ms: ms(load),
            batch1_p50_ms: ms(p50),
            batch1_p99_ms: ms(p99),
            batch: batch.min(rows) as u32,
            batch_p50_ms: ms(batch_p50),
            peak_rss_mib: peak_rss_mib(),
        },
        predictions,
    })
}

/// Each row's prediction: an integer label as it is, the argmax of a row of scores, or one value.
fn predict(tensor: &Tensor, rows: usize) -> Result<Predictions> {
    let width = tensor.len().checked_div(rows).unwrap_or(0);
    let argmax = |row: &[f32]| (0..row.len()).fold(0, |b, i| if row[i] > row[b] { i } else { b }).to_string();
    match tensor.data() {
        TensorData::I64(v) if width == 1 => Ok(Predictions::Classes(v.iter().map(i64::to_string).collect())),
        TensorData::I32(v) if width == 1 => Ok(Predictions::Classes(v.iter().map(i32::to_string).collect())),
        TensorData::F32(v) if width > 1 => Ok(Predictions::Classes(v.chunks(width).map(argmax).collect())),
        TensorData::F32(v) if width == 1 => Ok(Predictions::Values(v.iter().map(|&x| f64::from(x)).collect())),
        TensorData::F64(v) if width == 1 => Ok(Predictions::Values(v.clone())),
        other => bail!(
            "expected integer class labels or one value a row, or several scores a row; found {} with {width} a row",
            other.dtype()
        ),
    }
}

/// The truth column, read as the model's task needs it.
enum Truth {
    Classes(Vec<String>),
    Values(Vec<f64>),
}

impl Truth {
    fn read(cells: &crate::table::Column, predictions: &Predictions, data: &str, target: &str) -> Result<Truth> {
        let at = |row: usize| format!("{data}: data row {}, column `{target}`", row + 1);
        let mut classes = Vec::new();
        let mut values = Vec::new();
        for (row, cell) in cells.iter().enumerate() {
            if is_missing(cell) {
                bail!("{}: the truth is missing", at(row));
            }
            match predictions {
                Predictions::Classes(_) => classes.push(class_name(cell).to_owned()),
                Predictions::Values(_) => values.push(
                    cell.parse::<f64>()
                        .ok()
                        .filter(|v| v.is_finite())
                        .with_context(|| format!("{}: expected a number, found {cell:?}", at(row)))?,
                ),
            }
        }
        Ok(match predictions {
            Predictions::Classes(_) => Truth::Classes(classes),
            Predictions::Values(_) => Truth::Values(values),
        })
    }

    fn metrics(&self, predictions: &Predictions) -> Result<Metrics> {
        match (self, predictions) {
            (Truth::Classes(truth), Predictions::Classes(predicted)) => {
                let mut confusion = Confusion::default();
                for (t, p) in truth.iter().zip(predicted) {
                    confusion.add(t, p);
                }
                Ok(Metrics::Classification(confusion.metrics()))
            }
            (Truth::Values(truth), Predictions::Values(predicted)) => {
                let mut sums = Regression::default();
                for (t, p) in truth.iter().zip(predicted) {
                    sums.add(*t, *p);
                }
                Ok(Metrics::Regression(sums.metrics()))
            }
            (Truth::Classes(_), Predictions::Values(_)) => bail!("it predicts values; the model predicts classes"),
            (Truth::Values(_), Predictions::Classes(_)) => bail!("it predicts classes; the model predicts values"),
        }
    }
}

/// (p50, p99) over `runs` after two warm-up runs.
pub(crate) fn latency(session: &Session, inputs: &[(String, Tensor)], runs: usize) -> Result<(Duration, Duration)> {
    let runs = runs.max(1);
    let mut samples = Vec::with_capacity(runs);
    for i in 0..runs + 2 {
        let started = Instant::now();
        pollster::block_on(session.run(inputs.to_vec()))?;
        if i >= 2 {
            samples.push(started.elapsed());
        }
    }
    samples.sort();
    let at = |p: f64| samples[((samples.len() - 1) as f64 * p).round() as usize];
    Ok((at(0.5), at(0.99)))
}

fn compare(model: &Evaluation, challenger: &Evaluation, truth: &Truth) -> Comparison {
    let (mut model_better, mut challenger_better) = (0u64, 0u64);
    let mut tally = |a: bool, b: bool| match (a, b) {
        (true, false) => model_better += 1,
        (false, true) => challenger_better += 1,
        _ => {}
    };
    let test = match (truth, &model.ran.predictions, &challenger.ran.predictions) {
        (Truth::Classes(t), Predictions::Classes(a), Predictions::Classes(b)) => {
            for ((t, a), b) in t.iter().zip(a).zip(b) {
                tally(a == t && b != t, b == t && a != t);
            }
            "exact McNemar"
        }
        (Truth::Values(t), Predictions::Values(a), Predictions::Values(b)) => {
            for ((t, a), b) in t.iter().zip(a).zip(b) {
                let (ea, eb) = ((a - t).abs(), (b - t).abs());
                tally(ea < eb, eb < ea);
            }
            "exact sign test on absolute errors"
        }
        // Truth::metrics refused mixed tasks before any comparison.
        _ => "none",
    };
    let p_value = mcnemar_exact(model_better, challenger_better);
    let verdict = match (p_value < ALPHA, challenger_better > model_better) {
        (false, _) => "no significant difference",
        (true, true) => CHALLENGER_BETTER,
        (true, false) => "challenger worse",
    };
    Comparison { challenger: challenger.ran.model.clone(), test, model_better, challenger_better, p_value, verdict }
}

/// Two-sided exact binomial test of `b` against `c` (McNemar on discordant pairs; the sign test):
/// the smaller count against Binomial(b + c, 1/2).
fn mcnemar_exact(b: u64, c: u64) -> f64 {
    let n = b + c;
    if n == 0 {
        return 1.0;
    }
    let k = b.min(c);
    // ln C(n, i) - n ln 2, term by term: no overflow for any n.
    let (mut ln_choose, mut sum) = (0.0f64, 0.0f64);
    for i in 0..=k {
        if i > 0 {
            ln_choose += ((n - i + 1) as f64).ln() - (i as f64).ln();
        }
        sum += (ln_choose - n as f64 * std::f64::consts::LN_2).exp();
    }
    (2.0 * sum).min(1.0)
}

fn sha256_file(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("while reading {}", path.display()))?;
    Ok(Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect())
}

/// The process's peak resident memory (Linux `VmHWM`), MiB.
pub(crate) fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib: f64 =
        status.lines().find_map(|l| l.strip_prefix("VmHWM:"))?.trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kib / 1024.0)
}

/// Now, as `YYYY-MM-DDTHH:MM:SSZ` (civil-from-days, proleptic Gregorian).
fn utc_now() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()) as i64;
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rest / 3600, rest % 3600 / 60, rest % 60)
}

/// The model card: what was validated, on what, with which results, at what cost.
fn model_card(r: &Report) -> String {
    let mut out = Vec::new();
    let m = &r.model;
    let interval = |e: &Estimate| format!("{:.4} [{:.4}, {:.4}]", e.value, e.low, e.high);
    let _ = writeln!(out, "# Model card: {}\n", m.ran.model);
    let _ = writeln!(out, "| | |\n| --- | --- |");
    let _ = writeln!(out, "| model | `{}` ({} bytes, sha256 `{}`) |", m.ran.model, m.ran.bytes, m.ran.sha256);
    let _ = writeln!(out, "| data | `{}` ({} rows, sha256 `{}`) |", r.data, r.rows, r.data_sha256);
    let _ =
        writeln!(out, "| target, features | `{}`; {} columns: {} |", r.target, r.columns.len(), r.columns.join(", "));
    let _ = writeln!(out, "| validated | {} by {} |", r.validated_at, r.tool);
    let gate = if r.failed.is_empty() { "passed".to_owned() } else { format!("**failed**: {}", r.failed.join("; ")) };
    let _ = writeln!(out, "| gate | {gate} |\n");
    match &m.metrics {
        Metrics::Classification(c) => {
            let _ = writeln!(out, "## Metrics (95% Wilson intervals)\n");
            let _ = writeln!(
                out,
                "accuracy {}; macro F1 {:.4}; weighted F1 {:.4}\n",
                interval(&c.accuracy),
                c.macro_avg.f1,
                c.weighted_avg.f1
            );
            let _ = writeln!(out, "| class | precision | recall | F1 | support |\n| --- | --- | --- | --- | --- |");
            for k in &c.classes {
                let (p, rc) = (interval(&k.precision), interval(&k.recall));
                let _ = writeln!(out, "| {} | {p} | {rc} | {:.4} | {} |", k.label, k.f1, k.support);
            }
            let _ = match &c.matrix {
                Some(matrix) => writeln!(
                    out,
                    "\nConfusion matrix (rows: true class; columns: predicted; order {:?}): {:?}\n",
                    c.labels, matrix
                ),
                None => writeln!(out, "\nConfusion matrix: left out ({} classes)\n", c.labels.len()),
            };
        }
        Metrics::Regression(g) => {
            let _ =
                writeln!(out, "## Metrics\n\nMAE {:.4}; RMSE {:.4}; R² {:.4} ({} rows)\n", g.mae, g.rmse, g.r2, g.n);
        }
    }
    if let Some(drift) = &r.drift {
        let drifted: Vec<&str> = drift.columns.iter().filter(|c| c.drift).map(|c| c.name.as_str()).collect();
        let unjudged = drift.columns.iter().filter(|c| c.insufficient_data).count();
        let _ = writeln!(
            out,
            "## Drift against the reference profile\n\n{}: {} of {} columns drifted{}{}\n",
            if drift.dataset_drift { "**the data set drifted**" } else { "no data-set drift" },
            drift.drifted_columns,
            drift.columns.len(),
            if drifted.is_empty() { String::new() } else { format!(" ({})", drifted.join(", ")) },
            match unjudged {
                0 => String::new(),
                n => format!("; {n} without a verdict (fewer rows than the policy's {})", drift.policy.min_rows),
            }
        );
    }
    if let Some(p) = &r.promise {
        let _ = writeln!(
            out,
            "## Against the promise in the profile ({}, α = {ALPHA})\n\n{} {:.4} here against {:.4} on the {} profiled rows: \
             p = {:.3e}, **{}**{}\n",
            p.test,
            p.metric,
            p.measured,
            p.promised,
            p.baseline_rows,
            p.p_value,
            p.verdict,
            if p.same_model { "" } else { " (the baseline was measured on another model file)" }
        );
    }
    if let Some(first) = r.comparisons.first() {
        let _ = writeln!(out, "## Challengers ({}, α = {ALPHA})\n", first.test);
        let _ = writeln!(
            out,
            "| model | metrics | rows where it is better | rows where the model is better | p | verdict |\n\
             | --- | --- | --- | --- | --- | --- |"
        );
        for (c, e) in r.comparisons.iter().zip(&r.challengers) {
            let metrics = match &e.metrics {
                Metrics::Classification(k) => {
                    format!("accuracy {}, macro F1 {:.4}", interval(&k.accuracy), k.macro_avg.f1)
                }
                Metrics::Regression(g) => format!("MAE {:.4}, RMSE {:.4}, R² {:.4}", g.mae, g.rmse, g.r2),
            };
            let _ = writeln!(
                out,
                "| `{}` | {metrics} | {} | {} | {:.3e} | {} |",
                c.challenger, c.challenger_better, c.model_better, c.p_value, c.verdict
            );
        }
        let _ = writeln!(out);
    }
    let _ = writeln!(out, "## Resources on this machine\n");
    let _ = writeln!(
        out,
        "| model | engine | load | batch 1 p50 / p99 | batch n p50 | peak RSS |\n| --- | --- | --- | --- | --- | --- |"
    );
    for e in std::iter::once(m).chain(&r.challengers) {
        let res = &e.ran.resources;
        let rss = res.peak_rss_mib.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.0} MiB (process)"));
        let _ = writeln!(
            out,
            "| `{}` | {} | {:.1} ms | {:.3} / {:.3} ms | {:.3} ms (n = {}) | {rss} |",
            e.ran.model, e.ran.engine, res.load_ms, res.batch1_p50_ms, res.batch1_p99_ms, res.batch_p50_ms, res.batch
        );
    }
    String::from_utf8_lossy(&out).into_owned()
}
