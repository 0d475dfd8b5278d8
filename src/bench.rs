//! `sextant bench`: load time and latency percentiles.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use runtime::{Session, free_dims_of};
use serde_json::json;

use crate::options::{ModelInputs, SessionArgs, engine_line, load_model, report_json};
use crate::tensor_files::inputs_or_synthetic;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    target: ModelInputs,
    #[command(flatten)]
    session: SessionArgs,
    /// Timed runs.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    iterations: u32,
    /// Untimed runs first.
    #[arg(long, default_value_t = 10)]
    warmup: u32,
    /// Print as JSON.
    #[arg(long)]
    json: bool,
}

pub fn main(args: Args) -> Result<ExitCode> {
    let start = Instant::now();
    // Load time covers reading and parsing the model as well as building the session.
    let model = load_model(&args.target.model)?;
    let inputs = inputs_or_synthetic(&model, &args.target.inputs, &args.session.dims)?;
    let options = args.session.options(args.session.backend.into(), free_dims_of(model.inputs(), &inputs));
    let session = pollster::block_on(Session::new(&model, &options)).context("while creating the session")?;
    let load = start.elapsed();

    let total = u64::from(args.warmup + args.iterations);
    let bar = ProgressBar::new(total).with_style(
        ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {per_sec}")
            .unwrap_or(ProgressStyle::default_bar()),
    );
    bar.set_prefix("warming up");
    let mut latencies = Vec::with_capacity(args.iterations as usize);
    for i in 0..total {
        if i == u64::from(args.warmup) {
            bar.set_prefix("measuring");
        }
        let inputs = inputs.clone();
        let t = Instant::now();
        pollster::block_on(session.run(inputs)).context("while running the model")?;
        if i >= u64::from(args.warmup) {
            latencies.push(t.elapsed());
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() - 1) as f64 * p).round() as usize];
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let mean = latencies.iter().sum::<Duration>() / latencies.len() as u32;
    if args.json {
        let report = json!({
            "model": args.target.model,
            "session": report_json(session.report()),
            "iterations": args.iterations,
            "load_ms": ms(load),
            "latency_ms": { "p50": ms(pct(0.5)), "p90": ms(pct(0.9)), "p99": ms(pct(0.99)), "mean": ms(mean), "min": ms(latencies[0]) },
        });
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("{}", engine_line(session.report()));
        println!("load: {:.3} ms", ms(load));
        println!(
            "latency over {} runs: p50 {:.3} ms, p90 {:.3} ms, p99 {:.3} ms (mean {:.3}, min {:.3})",
            args.iterations,
            ms(pct(0.5)),
            ms(pct(0.9)),
            ms(pct(0.99)),
            ms(mean),
            ms(latencies[0])
        );
    }
    Ok(ExitCode::SUCCESS)
}
