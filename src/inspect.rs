//! `sextant inspect`: what a model is, and which engines can run it.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Result;
use runtime::{BackendChoice, Model, Session, ValueInfo, free_dims_of};
use serde_json::json;

use crate::options::{SessionArgs, load_model};
use crate::tensor_files::inputs_or_synthetic;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The ONNX model.
    model: PathBuf,
    #[command(flatten)]
    session: SessionArgs,
    /// Print as JSON.
    #[arg(long)]
    json: bool,
    /// Also measure what running it costs here, per engine that can: session load time and
    /// latency p50 / p99 at batch 1 (synthetic inputs; free dims 1 unless `--dim`), peak memory.
    #[arg(long)]
    resources: bool,
}

/// What one engine costs on this machine, at batch 1.
#[derive(Debug, serde::Serialize)]
struct Cost {
    load_ms: f64,
    p50_ms: f64,
    p99_ms: f64,
    runs: usize,
}

/// Timed runs per engine for `--resources`.
const RUNS: usize = 20;

/// Builds a session on `backend` with free dims fixed (the GPU needs them) and times it.
fn cost(model: &Model, args: &Args, backend: BackendChoice) -> Result<Cost, String> {
    let inputs = inputs_or_synthetic(model, &[], &args.session.dims).map_err(|e| format!("{e:#}"))?;
    let options = args.session.options(backend, free_dims_of(model.inputs(), &inputs));
    let started = Instant::now();
    let session = pollster::block_on(Session::new(model, &options)).map_err(|e| e.to_string())?;
    let load = started.elapsed();
    let (p50, p99) = crate::validate::latency(&session, &inputs, RUNS).map_err(|e| format!("{e:#}"))?;
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
    Ok(Cost { load_ms: ms(load), p50_ms: ms(p50), p99_ms: ms(p99), runs: RUNS })
}

pub fn main(args: Args) -> Result<ExitCode> {
    let model = load_model(&args.model)?;
    let choices = [("cpu", BackendChoice::Cpu), ("gpu", BackendChoice::Gpu)];
    let engines: Vec<(&str, Result<String, String>)> = choices
        .into_iter()
        .map(|(name, backend)| {
            let options = args.session.options(backend, Default::default());
            let verdict = match pollster::block_on(Session::new(&model, &options)) {
                Ok(session) => Ok(session.report().adapter.clone().filter(|_| name != "cpu").unwrap_or_default()),
                Err(error) => Err(error.to_string()),
            };
            (name, verdict)
        })
        .collect();
    let costs: Vec<(&str, Result<Cost, String>)> = match args.resources {
        false => Vec::new(),
        true => [("cpu", BackendChoice::Cpu), ("gpu", BackendChoice::Gpu)]
            .into_iter()
            .map(|(name, backend)| (name, cost(&model, &args, backend)))
            .collect(),
    };
    let peak_rss_mib = crate::validate::peak_rss_mib();

    if args.json {
        let engines: serde_json::Map<_, _> = engines
            .iter()
            .map(|(name, verdict)| {
                let value = match verdict {
                    Ok(adapter) => json!({ "runnable": true, "adapter": (!adapter.is_empty()).then_some(adapter) }),
                    Err(reason) => json!({ "runnable": false, "reason": reason }),
                };
                (name.to_string(), value)
            })
            .collect();
        let mut report = describe(&model, engines);
        if args.resources {
            let mut resources: serde_json::Map<String, serde_json::Value> = costs
                .iter()
                .map(|(name, cost)| {
                    let value = match cost {
                        Ok(cost) => serde_json::to_value(cost).unwrap_or_default(),
                        Err(reason) => json!({ "reason": reason }),
                    };
                    (name.to_string(), value)
                })
                .collect();
            resources.insert("peak_rss_mib".into(), json!(peak_rss_mib));
            report["resources"] = serde_json::Value::Object(resources);
        }
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(ExitCode::SUCCESS);
    }
    let (producer, producer_version) = model.producer();
    println!("model: {} ({} bytes, ir_version {})", args.model.display(), model.byte_len(), model.ir_version());
    println!("producer: {producer} {producer_version}");
    for (key, value) in model.metadata() {
        println!("metadata: {key} = {value}");
    }
    let opsets: Vec<String> = model
        .opsets()
        .iter()
        .map(|o| format!("{}:{}", if o.domain.is_empty() { "ai.onnx" } else { &o.domain }, o.version))
        .collect();
    println!("opsets: {}", opsets.join(", "));
    println!("inputs:");
    print_values(model.inputs());
    println!("outputs:");
    print_values(model.outputs());
    let ops: Vec<String> = model.op_histogram().iter().map(|(op, n)| format!("{op}×{n}")).collect();
    println!("ops: {}", ops.join(", "));
    for (name, verdict) in engines {
        match verdict {
            Ok(adapter) if adapter.is_empty() => println!("{name}: runnable"),
            Ok(adapter) => println!("{name}: runnable on {adapter}"),
            Err(reason) => println!("{name}: not runnable: {reason}"),
        }
    }
    if args.resources {
        println!("resources here (batch 1, synthetic inputs, {RUNS} runs):");
        for (name, cost) in &costs {
            match cost {
                Ok(c) => println!("  {name}: load {:.1} ms, p50 {:.3} ms, p99 {:.3} ms", c.load_ms, c.p50_ms, c.p99_ms),
                Err(reason) => println!("  {name}: not measured: {reason}"),
            }
        }
        if let Some(mib) = peak_rss_mib {
            println!("  peak memory: {mib:.0} MiB (this process, model and sessions included)");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_values(values: &[ValueInfo]) {
    for v in values {
        println!("  {}: {} {}", v.name, v.type_name, v.shape_text());
    }
}

fn describe(model: &Model, engines: serde_json::Map<String, serde_json::Value>) -> serde_json::Value {
    let (producer, producer_version) = model.producer();
    json!({
        "ir_version": model.ir_version(),
        "producer": { "name": producer, "version": producer_version },
        "graph": model.graph_name(),
        "bytes": model.byte_len(),
        "metadata": model.metadata(),
        "opsets": model.opsets(),
        "inputs": model.inputs(),
        "outputs": model.outputs(),
        "ops": model.op_histogram(),
        "engines": engines,
    })
}
