//! `sextant profile build`: the reference profile of a data set, which deployments count against.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};

use crate::table::{Column, Table, is_missing};
use telemetry::{CategoryProfile, FeatureKind, FeatureProfile, NumberProfile, PROFILE_VERSION, Profile};

/// Quantile bins per numeric column, unless asked otherwise (`profile build`, `drift`, the demo).
pub(crate) const BINS: u16 = 10;
/// Most frequent categories kept per column; the rest count as "other".
pub(crate) const MAX_CATEGORIES: usize = 50;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Profile a CSV file with a header row: quantile bins per numeric column, a category
    /// dictionary per other column, missing rates and moments.
    Build(BuildArgs),
}

#[derive(Debug, clap::Args)]
struct BuildArgs {
    /// The data, as CSV with a header row.
    data: PathBuf,
    /// The target column: profiled separately, not as a feature.
    #[arg(long)]
    target: Option<String>,
    /// Where to write the profile (JSON).
    #[arg(long)]
    out: PathBuf,
    /// Quantile bins per numeric column.
    #[arg(long, default_value_t = BINS, value_parser = clap::value_parser!(u16).range(1..=1000))]
    bins: u16,
    /// Most frequent values kept per categorical column; the rest count as "other".
    #[arg(long, default_value_t = MAX_CATEGORIES)]
    max_categories: usize,
    /// The model the profile is for: its scores on these rows (every column but the target a
    /// feature) become the profile's baseline, which `sextant validate --profile` holds it to.
    #[arg(long, requires = "target", value_name = "MODEL.onnx")]
    model: Option<PathBuf>,
}

pub fn main(args: Args) -> Result<ExitCode> {
    let Command::Build(args) = args.command;
    let table = Table::read(&args.data)?;
    let mut profile = build(&table, args.target.as_deref(), usize::from(args.bins), args.max_categories)?;
    if let (Some(model), Some(target)) = (&args.model, &args.target) {
        profile.baseline = Some(crate::validate::baseline(model, &table, target)?);
    }
    let json = serde_json::to_string_pretty(&profile)?;
    std::fs::write(&args.out, json).with_context(|| format!("while writing {}", args.out.display()))?;
    let numeric = profile.features.iter().chain(&profile.target).filter(|f| matches!(f.kind, FeatureKind::Number(_)));
    let numeric = numeric.count();
    let all = profile.features.len() + usize::from(profile.target.is_some());
    println!(
        "profiled {} rows: {} features ({numeric} numeric, {} categorical, counting the target){} -> {}",
        profile.rows,
        profile.features.len(),
        all - numeric,
        args.target.as_ref().map(|t| format!(", target `{t}`")).unwrap_or_default(),
        args.out.display()
    );
    if let Some(baseline) = &profile.baseline {
        let scores = match baseline.metrics {
            telemetry::BaselineMetrics::Classification { accuracy, macro_f1 } => {
                format!("accuracy {accuracy:.4}, macro F1 {macro_f1:.4}")
            }
            telemetry::BaselineMetrics::Regression { mae, rmse, r2, .. } => {
                format!("MAE {mae:.4}, RMSE {rmse:.4}, R² {r2:.4}")
            }
        };
        println!("baseline of {}: {scores} on {} rows", baseline.model, baseline.rows);
    }
    Ok(ExitCode::SUCCESS)
}

/// The reference profile of a table: every column a feature, except `target` (profiled as the
/// target: its classes, or its values).
pub(crate) fn build(table: &Table, target: Option<&str>, bins: usize, max_categories: usize) -> Result<Profile> {
    if let Some(target) = target
        && table.column(target).is_none()
    {
        bail!("target column `{target}` is not in the header; columns are {:?}", table.headers);
    }
    let mut profile = Profile {
        baseline: None,
        profile_version: PROFILE_VERSION,
        rows: table.rows() as u64,
        features: Vec::new(),
        target: None,
    };
    for (name, cells) in table.headers.iter().zip(&table.columns) {
        let is_target = Some(name.as_str()) == target;
        let (feature, _) = profile_column(name, cells, bins, max_categories, is_target);
        if is_target {
            profile.target = Some(feature);
        } else {
            profile.features.push(feature);
        }
    }
    Ok(profile)
}

/// A column is numeric when every present cell parses as a finite number, except a target of a few
/// integer values: that is a set of classes, profiled as categories.
pub(crate) fn profile_column(
    name: &str,
    cells: &Column,
    bins: usize,
    max_categories: usize,
    target: bool,
) -> (FeatureProfile, Option<Vec<f64>>) {
    let present = cells.iter().filter(|c| !is_missing(c));
    let present_count = present.clone().count();
    let missing_rate = (cells.len() - present_count) as f64 / cells.len() as f64;
    let numbers: Option<Vec<f64>> = present.clone().map(|c| c.parse::<f64>().ok().filter(|v| v.is_finite())).collect();
    let classes = target
        && numbers.as_ref().is_some_and(|n| {
            n.iter().all(|v| v.fract() == 0.0)
                && n.iter().map(|&v| v as i64).collect::<std::collections::BTreeSet<i64>>().len() <= max_categories
        });
    let mut numbers = if classes { None } else { numbers };
    // Sorted once here: the quantiles below and any exact statistic later find them in order.
    if let Some(n) = &mut numbers {
        n.sort_unstable_by(f64::total_cmp);
    }
    let kind = match numbers.as_deref().and_then(|n| NumberProfile::build(n, bins)) {
        Some(number) => FeatureKind::Number(number),
        None => FeatureKind::Category(CategoryProfile::build(present, max_categories)),
    };
    let numbers = if matches!(kind, FeatureKind::Number(_)) { numbers } else { None };
    (FeatureProfile { name: name.to_owned(), missing_rate, kind }, numbers)
}
