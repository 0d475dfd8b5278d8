//! `sextant validate`: a model on a fresh labelled data set before it ships. Classification
//! metrics with Wilson intervals (the monitoring crate's own), challengers through the same rows
//! with an exact McNemar test against the model, what running it costs here, a CI gate
//! (`--fail-under`) and a model card a reviewer can sign off (`--report OUT.md`).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use analysis::performance::{ClassificationMetrics, Confusion, Estimate};
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
    /// The column holding the true class.
    #[arg(long)]
    target: String,
    /// Feature columns in the order of the model's input (default: every other column, in file order).
    #[arg(long, value_delimiter = ',')]
    columns: Option<Vec<String>>,
    /// The output holding the prediction (default: the model's last output): class labels
    /// (integers), or scores whose argmax is the class.
    #[arg(long)]
    output: Option<String>,
    /// A challenger: the same rows through it, compared with the model (repeatable).
    #[arg(long = "against", value_name = "OTHER.onnx")]
    against: Vec<PathBuf>,
    /// Rows per inference.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..=65536))]
    batch: u32,
    /// Engine: auto, gpu or cpu.
    #[arg(long, value_enum, default_value = "cpu")]
    backend: Backend,
    /// Exit 1 when the model's metric is under the value (accuracy, macro_f1, weighted_f1,
    /// macro_precision, macro_recall), e.g. `--fail-under accuracy=0.9`.
    #[arg(long = "fail-under", value_name = "METRIC=VALUE", value_parser = parse_gate)]
    fail_under: Vec<(Metric, f64)>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
    /// Write a model card (Markdown).
    #[arg(long, value_name = "OUT.md")]
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
}

impl Metric {
    fn of(self, m: &ClassificationMetrics) -> f64 {
        match self {
            Metric::Accuracy => m.accuracy.value,
            Metric::MacroF1 => m.macro_avg.f1,
            Metric::WeightedF1 => m.weighted_avg.f1,
            Metric::MacroPrecision => m.macro_avg.precision,
            Metric::MacroRecall => m.macro_avg.recall,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Metric::Accuracy => "accuracy",
            Metric::MacroF1 => "macro_f1",
            Metric::WeightedF1 => "weighted_f1",
            Metric::MacroPrecision => "macro_precision",
            Metric::MacroRecall => "macro_recall",
        }
    }
}

const METRICS: [Metric; 5] =
    [Metric::Accuracy, Metric::MacroF1, Metric::WeightedF1, Metric::MacroPrecision, Metric::MacroRecall];

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

/// One model's result on the data.
#[derive(Debug, Serialize)]
struct Evaluation {
    model: String,
    sha256: String,
    bytes: u64,
    engine: String,
    metrics: ClassificationMetrics,
    resources: Resources,
    #[serde(skip)]
    predictions: Vec<String>,
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

/// A challenger against the model: the exact McNemar test on the rows where they disagree.
#[derive(Debug, Serialize)]
struct Comparison {
    challenger: String,
    only_model_right: u64,
    only_challenger_right: u64,
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
    let truth: Vec<String> = truth_cells
        .iter()
        .enumerate()
        .map(|(row, cell)| match is_missing(cell) {
            true => bail!("{data_name}: data row {}, column `{}`: the true class is missing", row + 1, args.target),
            false => Ok(class_name(cell).to_owned()),
        })
        .collect::<Result<_>>()?;

    let model = evaluate(&args.model, &features, columns.len(), &truth, &args)?;
    let mut challengers = Vec::new();
    for path in &args.against {
        challengers.push(evaluate(path, &features, columns.len(), &truth, &args)?);
    }
    let comparisons = challengers.iter().map(|c| compare(&model, c, &truth)).collect();
    let failed: Vec<String> = args
        .fail_under
        .iter()
        .filter(|(metric, floor)| metric.of(&model.metrics) < *floor)
        .map(|(metric, floor)| format!("{} is {:.4}, under {floor}", metric.name(), metric.of(&model.metrics)))
        .collect();
    let report = Report {
        data: data_name,
        data_sha256: sha256_file(&args.data)?,
        rows: truth.len(),
        target: args.target.clone(),
        columns,
        model,
        challengers,
        comparisons,
        failed,
        validated_at: utc_now(),
        tool: format!("sextant {}", env!("CARGO_PKG_VERSION")),
    };
    if let Some(path) = &args.report {
        std::fs::write(path, model_card(&report)).with_context(|| format!("while writing {}", path.display()))?;
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

fn evaluate(path: &Path, features: &[f32], width: usize, truth: &[String], args: &Args) -> Result<Evaluation> {
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

    let rows = truth.len();
    let progress = indicatif::ProgressBar::new(rows as u64).with_message(name.clone());
    let batch = args.batch as usize;
    let mut predictions = Vec::with_capacity(rows);
    for start in (0..rows).step_by(batch) {
        let n = batch.min(rows - start);
        let tensor = Tensor::new(&[n, width], features[start * width..(start + n) * width].to_vec())?;
        let outputs = pollster::block_on(session.run(vec![(input.name.clone(), tensor)]))
            .with_context(|| format!("{name}: rows {}–{}", start + 1, start + n))?;
        let (_, out) = outputs.iter().find(|(o, _)| *o == output).context("the output went missing")?;
        predictions.extend(classes(out, n).with_context(|| format!("{name}: output `{output}`"))?);
        progress.inc(n as u64);
    }
    progress.finish_and_clear();

    let mut confusion = Confusion::default();
    for (t, p) in truth.iter().zip(&predictions) {
        confusion.add(t, p);
    }
    let one = |n: usize| Tensor::new(&[n, width], features[..n * width].to_vec());
    let (p50, p99) = latency(&session, &input.name, &one(1)?, 30)?;
    let (batch_p50, _) = latency(&session, &input.name, &one(batch.min(rows))?, 10)?;
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    Ok(Evaluation {
        sha256: sha256_file(path)?,
        bytes: std::fs::metadata(path)?.len(),
        engine: session.engine().to_string(),
        model: name,
        metrics: confusion.metrics(),
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

/// Each row's class: an integer label as it is, or the argmax of a row of scores.
fn classes(tensor: &Tensor, rows: usize) -> Result<Vec<String>> {
    let width = tensor.len().checked_div(rows).unwrap_or(0);
    match tensor.data() {
        TensorData::I64(v) if width == 1 => Ok(v.iter().map(i64::to_string).collect()),
        TensorData::I32(v) if width == 1 => Ok(v.iter().map(i32::to_string).collect()),
        TensorData::F32(v) if width > 1 => Ok(v
            .chunks(width)
            .map(|row| (0..row.len()).fold(0, |b, i| if row[i] > row[b] { i } else { b }).to_string())
            .collect()),
        other => bail!(
            "expected integer class labels (one a row) or scores (several a row); found {} with {width} a row \
             (regression models are not validated yet)",
            other.dtype()
        ),
    }
}

/// (p50, p99) over `runs` after two warm-up runs.
fn latency(session: &Session, input: &str, tensor: &Tensor, runs: usize) -> Result<(Duration, Duration)> {
    let mut samples = Vec::with_capacity(runs);
    for i in 0..runs + 2 {
        let started = Instant::now();
        pollster::block_on(session.run(vec![(input.to_owned(), tensor.clone())]))?;
        if i >= 2 {
            samples.push(started.elapsed());
        }
    }
    samples.sort();
    let at = |p: f64| samples[((samples.len() - 1) as f64 * p).round() as usize];
    Ok((at(0.5), at(0.99)))
}

fn compare(model: &Evaluation, challenger: &Evaluation, truth: &[String]) -> Comparison {
    let (mut only_model, mut only_challenger) = (0u64, 0u64);
    for ((t, a), b) in truth.iter().zip(&model.predictions).zip(&challenger.predictions) {
        match (a == t, b == t) {
            (true, false) => only_model += 1,
            (false, true) => only_challenger += 1,
            _ => {}
        }
    }
    let p_value = mcnemar_exact(only_model, only_challenger);
    let verdict = match (p_value < ALPHA, only_challenger > only_model) {
        (false, _) => "no significant difference",
        (true, true) => "challenger better",
        (true, false) => "challenger worse",
    };
    Comparison {
        challenger: challenger.model.clone(),
        only_model_right: only_model,
        only_challenger_right: only_challenger,
        p_value,
        verdict,
    }
}

/// Two-sided exact McNemar test: the smaller discordant count against Binomial(b + c, 1/2).
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

fn peak_rss_mib() -> Option<f64> {
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
    let _ = writeln!(out, "# Model card: {}\n", m.model);
    let _ = writeln!(out, "| | |\n| --- | --- |");
    let _ = writeln!(out, "| model | `{}` ({} bytes, sha256 `{}`) |", m.model, m.bytes, m.sha256);
    let _ = writeln!(out, "| data | `{}` ({} rows, sha256 `{}`) |", r.data, r.rows, r.data_sha256);
    let _ =
        writeln!(out, "| target, features | `{}`; {} columns: {} |", r.target, r.columns.len(), r.columns.join(", "));
    let _ = writeln!(out, "| validated | {} by {} |", r.validated_at, r.tool);
    let gate = if r.failed.is_empty() { "passed".to_owned() } else { format!("**failed**: {}", r.failed.join("; ")) };
    let _ = writeln!(out, "| gate | {gate} |\n");
    let _ = writeln!(out, "## Metrics (95% Wilson intervals)\n");
    let _ = writeln!(
        out,
        "accuracy {}; macro F1 {:.4}; weighted F1 {:.4}\n",
        interval(&m.metrics.accuracy),
        m.metrics.macro_avg.f1,
        m.metrics.weighted_avg.f1
    );
    let _ = writeln!(out, "| class | precision | recall | F1 | support |\n| --- | --- | --- | --- | --- |");
    for c in &m.metrics.classes {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.4} | {} |",
            c.label,
            interval(&c.precision),
            interval(&c.recall),
            c.f1,
            c.support
        );
    }
    let _ = writeln!(
        out,
        "\nConfusion matrix (rows: true class; columns: predicted; order {:?}): {:?}\n",
        m.metrics.labels, m.metrics.matrix
    );
    if !r.comparisons.is_empty() {
        let _ = writeln!(out, "## Challengers (exact McNemar test, α = {ALPHA})\n");
        let _ = writeln!(
            out,
            "| model | accuracy | macro F1 | only this right | only the model right | p | verdict |\n| --- | --- | --- | --- | --- | --- | --- |"
        );
        for (c, e) in r.comparisons.iter().zip(&r.challengers) {
            let _ = writeln!(
                out,
                "| `{}` | {} | {:.4} | {} | {} | {:.3e} | {} |",
                c.challenger,
                interval(&e.metrics.accuracy),
                e.metrics.macro_avg.f1,
                c.only_challenger_right,
                c.only_model_right,
                c.p_value,
                c.verdict
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
        let rss = e.resources.peak_rss_mib.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.0} MiB (process)"));
        let res = &e.resources;
        let _ = writeln!(
            out,
            "| `{}` | {} | {:.1} ms | {:.3} / {:.3} ms | {:.3} ms (n = {}) | {rss} |",
            e.model, e.engine, res.load_ms, res.batch1_p50_ms, res.batch1_p99_ms, res.batch_p50_ms, res.batch
        );
    }
    String::from_utf8_lossy(&out).into_owned()
}
