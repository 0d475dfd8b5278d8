//! `sextant inspect`: what a model is, and which engines can run it.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use runtime::{BackendChoice, Model, Session, ValueInfo};
use serde_json::json;

use crate::options::{SessionArgs, load_model};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The ONNX model.
    model: PathBuf,
    #[command(flatten)]
    session: SessionArgs,
    /// Print as JSON.
    #[arg(long)]
    json: bool,
}

pub fn main(args: Args) -> Result<ExitCode> {
    let model = load_model(&args.model)?;
    let engines: Vec<(&str, Result<String, String>)> = [("cpu", BackendChoice::Cpu), ("gpu", BackendChoice::Gpu)]
        .into_iter()
        .map(|(name, backend)| {
            let options = args.session.options(backend, Default::default());
            let verdict = match pollster::block_on(Session::new(&model, &options)) {
                Ok(session) => Ok(session.report().adapter.clone().filter(|_| name == "gpu").unwrap_or_default()),
                Err(error) => Err(error.to_string()),
            };
            (name, verdict)
        })
        .collect();

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
        println!("{}", serde_json::to_string_pretty(&describe(&model, engines))?);
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
