//! `sextant drift REFERENCE.csv CURRENT.csv`: the collector's drift, integrity and performance
//! analysis on two files, for pipelines that check data before deploying.
//!
//! The reference is profiled exactly as `sextant profile build` does, the current file is counted
//! against it exactly as a deployment's `Summarizer` does, and the verdicts come from the same
//! `analysis` crate the collector uses; with the raw values at hand, numbers get exact KS and
//! Wasserstein instead of binned ones.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;

use analysis::drift::{Column, DatasetDrift, Policy};
use analysis::histogram::Histogram;
use analysis::integrity::{self, Finding, Issue, Thresholds};
use analysis::performance::{ClassificationMetrics, Confusion, Regression, RegressionMetrics};
use analysis::window::Window;
use anyhow::{Context, Result, bail};
use rayon::prelude::*;
use serde::Serialize;
use telemetry::{FeatureKind, FeatureProfile, PROFILE_VERSION, Profile, Record, Summarizer, Value};

use crate::profile::{BINS, MAX_CATEGORIES, profile_column};
use crate::table::{Table, is_missing};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The reference data (training or validation), CSV with a header row.
    reference: PathBuf,
    /// The data to check against it, CSV with the same columns.
    current: PathBuf,
    /// The ground-truth column: left out of drift, used for performance with --prediction.
    #[arg(long)]
    target: Option<String>,
    /// The model's prediction column: left out of drift, used for performance with --target.
    #[arg(long)]
    prediction: Option<String>,
    /// Quantile bins per numeric column (for the binned statistics and the reference profile).
    #[arg(long, default_value_t = BINS, value_parser = clap::value_parser!(u16).range(2..=1000))]
    bins: u16,
    /// Print one JSON object (`columns`, `dataset_drift`, `integrity`, `performance`).
    #[arg(long)]
    json: bool,
    /// Exit with status 1 when the data set drifted.
    #[arg(long)]
    fail_on_drift: bool,
    /// Also write the report as one self-contained HTML page (tables and histograms).
    #[arg(long, value_name = "OUT")]
    html: Option<PathBuf>,
}

#[derive(Debug, Serialize)]
struct Report {
    reference: Source,
    current: Source,
    #[serde(flatten)]
    drift: DatasetDrift,
    integrity: Vec<Finding>,
    performance: Option<Performance>,
    /// Reference vs current counts per bin of every judged column, for plotting.
    histograms: Vec<Histogram>,
    timings: Timings,
}

/// Where the command's time went, for benchmarks.
#[derive(Debug, Serialize)]
struct Timings {
    read_ms: f64,
    analysis_ms: f64,
}

#[derive(Debug, Serialize)]
struct Source {
    path: String,
    rows: usize,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "snake_case")]
enum Performance {
    Classification { reference: Box<ClassificationMetrics>, current: Box<ClassificationMetrics> },
    Regression { reference: RegressionMetrics, current: RegressionMetrics },
}

pub fn main(args: Args) -> Result<ExitCode> {
    let started = std::time::Instant::now();
    // The two files, the reference's columns and the current numbers' sorting are independent:
    // each runs on its own core (rayon), the analysis after them is sequential.
    let (reference, current) = rayon::join(|| Table::read(&args.reference), || Table::read(&args.current));
    let (reference, current) = (reference?, current?);
    let read_ms = started.elapsed().as_secs_f64() * 1e3;
    let started = std::time::Instant::now();
    for column in [&args.target, &args.prediction].into_iter().flatten() {
        for (table, path) in [(&reference, &args.reference), (&current, &args.current)] {
            if table.column(column).is_none() {
                bail!("column `{column}` is not in {}; its columns are {:?}", path.display(), table.headers);
            }
        }
    }
    let skipped = |name: &str| Some(name) == args.target.as_deref() || Some(name) == args.prediction.as_deref();

    let columns: Vec<_> = reference.headers.iter().zip(&reference.columns).filter(|(name, _)| !skipped(name)).collect();
    let (features, mut reference_numbers): (Vec<FeatureProfile>, Vec<Option<Vec<f64>>>) = columns
        .par_iter()
        .map(|(name, cells)| profile_column(name, cells, usize::from(args.bins), MAX_CATEGORIES, false))
        .unzip();
    let profile = Profile {
        baseline: None,
        profile_version: PROFILE_VERSION,
        rows: reference.rows() as u64,
        features,
        target: None,
    };
    let (window, mut current_numbers) = summarize(&profile, &current, &skipped);
    // Sorted here in parallel, the exact statistics' own sorts find them in order.
    current_numbers.par_iter_mut().for_each(|(_, values)| values.sort_unstable_by(f64::total_cmp));

    let mut columns = Vec::new();
    let mut histograms = Vec::new();
    for (feature, reference_numbers) in profile.features.iter().zip(&mut reference_numbers) {
        let Some(counts) = window.features.get(&feature.name).filter(|c| c.missing < window.rows) else { continue };
        let raw = reference_numbers.take().zip(current_numbers.remove(&feature.name));
        columns.push(Column { profile: feature, current: &counts.bins, raw });
        histograms.push(Histogram::new(feature, counts.bins.clone(), Vec::new()));
    }
    let drift = analysis::drift::analyse(columns, &Policy::default());

    let renamed = |missing: &str, candidate: &str| -> Option<f64> {
        let feature = profile.features.iter().find(|f| f.name == missing)?;
        let cells = current.column(candidate)?;
        let alone = Profile {
            baseline: None,
            profile_version: PROFILE_VERSION,
            rows: profile.rows,
            features: vec![FeatureProfile { name: candidate.to_owned(), ..feature.clone() }],
            target: None,
        };
        let mut summarizer = Summarizer::new(&alone, 0);
        summarizer.add_rows(cells.len() as u64);
        summarizer.observe_column(candidate, cells.iter().map(|c| value(&feature.kind, c)));
        let Record::Features(summary) = summarizer.take(0) else { return None };
        let reference_counts = match &feature.kind {
            FeatureKind::Number(n) => &n.counts,
            FeatureKind::Category(c) => &c.counts,
        };
        Some(analysis::distance::psi(reference_counts, &summary.features.first()?.bins))
    };
    let mut findings = integrity::check(&profile, &window, &Thresholds::default(), &renamed);
    for finding in findings.iter_mut().filter(|f| f.issue == Issue::TypeMismatch) {
        if let Some((row, cell)) = current
            .column(&finding.feature)
            .and_then(|cells| cells.iter().enumerate().find(|(_, c)| !is_missing(c) && c.parse::<f64>().is_err()))
        {
            finding.detail += &format!(" (first at data row {}, column `{}`: {cell:?})", row + 1, finding.feature);
        }
    }

    let performance = match (&args.target, &args.prediction) {
        (Some(target), Some(prediction)) => Some(performance(&reference, &current, target, prediction)?),
        _ => None,
    };
    let timings = Timings { read_ms, analysis_ms: started.elapsed().as_secs_f64() * 1e3 };
    let report = Report {
        reference: Source { path: args.reference.display().to_string(), rows: reference.rows() },
        current: Source { path: args.current.display().to_string(), rows: current.rows() },
        drift,
        integrity: findings,
        performance,
        histograms,
        timings,
    };
    if let Some(path) = &args.html {
        let title = format!("Drift: {} vs {}", report.current.path, report.reference.path);
        std::fs::write(path, crate::html::drift_report(&title, &report)?)
            .with_context(|| format!("while writing the HTML report to {}", path.display()))?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_human(&report);
    }
    Ok(if args.fail_on_drift && report.drift.dataset_drift { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

/// The drift of `table` against a stored reference profile: binned statistics only (a profile
/// keeps counts, not the raw reference values). What `sextant validate --profile` flags.
pub(crate) fn against_profile(profile: &Profile, table: &Table, skipped: &dyn Fn(&str) -> bool) -> DatasetDrift {
    let (window, _) = summarize(profile, table, skipped);
    let columns: Vec<Column<'_>> = profile
        .features
        .iter()
        .filter_map(|feature| {
            let counts = window.features.get(&feature.name).filter(|c| c.missing < window.rows)?;
            Some(Column { profile: feature, current: &counts.bins, raw: None })
        })
        .collect();
    analysis::drift::analyse(columns, &Policy::default())
}

/// Counts the current table against the profile, column by column, as a deployment would; also
/// returns each numeric feature's finite values, parsed once.
fn summarize(profile: &Profile, table: &Table, skipped: &dyn Fn(&str) -> bool) -> (Window, HashMap<String, Vec<f64>>) {
    let mut summarizer = Summarizer::new(profile, 5);
    summarizer.add_rows(table.rows() as u64);
    let mut numbers = HashMap::new();
    for (name, cells) in table.headers.iter().zip(&table.columns).filter(|(name, _)| !skipped(name)) {
        match profile.features.iter().find(|f| &f.name == name) {
            Some(feature) => {
                let values: Vec<Value<'_>> = cells.iter().map(|c| value(&feature.kind, c)).collect();
                summarizer.observe_column(name, values.iter().copied());
                if let FeatureKind::Number(_) = feature.kind {
                    let finite = values.iter().filter_map(|v| match v {
                        Value::Number(x) if x.is_finite() => Some(*x),
                        _ => None,
                    });
                    numbers.insert(name.clone(), finite.collect());
                }
            }
            None => summarizer.observe_column(name, cells.iter().map(text)),
        }
    }
    let mut window = Window::default();
    if let Record::Features(summary) = summarizer.take(0) {
        window.add(&summary);
    }
    (window, numbers)
}

/// A cell as the profile's kind reads it: numbers parse, categories stay text.
fn value<'a>(kind: &FeatureKind, cell: &'a str) -> Value<'a> {
    match kind {
        _ if is_missing(cell) => Value::Missing,
        FeatureKind::Number(_) => cell.parse::<f64>().map_or(Value::Text(cell), Value::Number),
        FeatureKind::Category(_) => Value::Text(cell),
    }
}

fn text(cell: &str) -> Value<'_> {
    if is_missing(cell) { Value::Missing } else { Value::Text(cell) }
}

fn performance(reference: &Table, current: &Table, target: &str, prediction: &str) -> Result<Performance> {
    let target_cells = reference.column(target).ok_or_else(|| anyhow::anyhow!("no column `{target}`"))?;
    let classes = matches!(
        profile_column(target, target_cells, usize::from(BINS), MAX_CATEGORIES, true).0.kind,
        FeatureKind::Category(_)
    );
    let pairs = |table: &Table| -> Vec<(usize, (String, String))> {
        let (Some(truth), Some(predicted)) = (table.column(target), table.column(prediction)) else {
            return Vec::new();
        };
        truth
            .iter()
            .zip(predicted.iter())
            .enumerate()
            .filter(|(_, (t, p))| !is_missing(t) && !is_missing(p))
            .map(|(i, (t, p))| (i, (t.to_owned(), p.to_owned())))
            .collect()
    };
    if classes {
        let confusion = |table: &Table| {
            let mut confusion = Confusion::default();
            for (_, (t, p)) in pairs(table) {
                confusion.add(class_name(&t), class_name(&p));
            }
            Box::new(confusion.metrics())
        };
        return Ok(Performance::Classification { reference: confusion(reference), current: confusion(current) });
    }
    let regression = |table: &Table, file: &str| -> Result<RegressionMetrics> {
        let mut sums = Regression::default();
        for (row, (t, p)) in pairs(table) {
            let parse = |cell: &str, column: &str| {
                cell.parse::<f64>().map_err(|_| {
                    anyhow::anyhow!(
                        "{file}: data row {}, column `{column}`: expected a number, found {cell:?}",
                        row + 1
                    )
                })
            };
            sums.add(parse(&t, target)?, parse(&p, prediction)?);
        }
        Ok(sums.metrics())
    };
    Ok(Performance::Regression {
        reference: regression(reference, "reference")?,
        current: regression(current, "current")?,
    })
}

/// "1.0" and "1" are the same class.
pub(crate) fn class_name(cell: &str) -> &str {
    cell.strip_suffix(".0").unwrap_or(cell)
}

fn print_human(report: &Report) {
    let d = &report.drift;
    println!(
        "reference {} ({} rows) vs current {} ({} rows)",
        report.reference.path, report.reference.rows, report.current.path, report.current.rows
    );
    println!("\n{:<24} {:<9} {:<19} {:>10} {:>9}  verdict", "column", "kind", "statistic", "value", "threshold");
    for c in &d.columns {
        let verdict = if c.insufficient_data {
            "too few rows"
        } else if c.drift {
            "DRIFT"
        } else {
            "ok"
        };
        let kind = format!("{:?}", c.kind).to_lowercase();
        let statistic = serde_json::to_value(c.statistic).ok().and_then(|v| v.as_str().map(str::to_owned));
        println!(
            "{:<24} {:<9} {:<19} {:>10.4} {:>9}  {verdict}",
            c.name,
            kind,
            statistic.unwrap_or_default(),
            c.value,
            c.threshold
        );
    }
    println!(
        "\ndata set: {} of {} columns drifted ({:.0}%): {}",
        d.drifted_columns,
        d.columns.len(),
        d.share * 100.0,
        if d.dataset_drift { "DRIFT" } else { "no drift" }
    );
    for c in d.columns.iter().filter(|c| c.drift) {
        println!("  {}: {}", c.name, c.explanation);
    }
    if !report.integrity.is_empty() {
        println!("\nintegrity:");
        for f in &report.integrity {
            println!("  {} ({:?}): {}", f.feature, f.issue, f.detail);
        }
    }
    match &report.performance {
        Some(Performance::Classification { reference, current }) => {
            println!("\nperformance (95% Wilson intervals):");
            for (name, m) in [("reference", reference), ("current", current)] {
                println!(
                    "  {name:<9} n={:<7} accuracy {:.3} [{:.3}, {:.3}]  macro precision {:.3} recall {:.3} F1 {:.3}",
                    m.n,
                    m.accuracy.value,
                    m.accuracy.low,
                    m.accuracy.high,
                    m.macro_avg.precision,
                    m.macro_avg.recall,
                    m.macro_avg.f1
                );
            }
        }
        Some(Performance::Regression { reference, current }) => {
            println!("\nperformance:");
            for (name, m) in [("reference", reference), ("current", current)] {
                println!("  {name:<9} n={:<7} MAE {:.4}  RMSE {:.4}  R² {:.4}", m.n, m.mae, m.rmse, m.r2);
            }
        }
        None => {}
    }
}
