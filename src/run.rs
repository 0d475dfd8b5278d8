//! `sextant run`: one inference on input files.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use runtime::{Session, free_dims_of, npy};
use serde_json::json;

use crate::options::{ModelInputs, SessionArgs, engine_line, load_model, report_json};
use crate::tensor_files::{bind_inputs, file_safe, first_values};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    target: ModelInputs,
    #[command(flatten)]
    session: SessionArgs,
    /// Write each output to DIR/<output name>.npy.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

pub fn main(args: Args) -> Result<ExitCode> {
    let model = load_model(&args.target.model)?;
    let inputs = bind_inputs(&model, &args.target.inputs)?;
    let options = args.session.options(args.session.backend.into(), free_dims_of(model.inputs(), &inputs));
    let session = pollster::block_on(Session::new(&model, &options)).context("while creating the session")?;
    let start = Instant::now();
    let outputs = pollster::block_on(session.run(inputs)).context("while running the model")?;
    let latency = start.elapsed();

    let mut written = Vec::new();
    if let Some(dir) = &args.out {
        std::fs::create_dir_all(dir).with_context(|| format!("while creating {}", dir.display()))?;
        for (name, tensor) in &outputs {
            let path = dir.join(format!("{}.npy", file_safe(name)));
            std::fs::write(&path, npy::encode(tensor)).with_context(|| format!("while writing {}", path.display()))?;
            written.push(Some(path));
        }
    }
    written.resize(outputs.len(), None);

    if args.json {
        let outputs: Vec<_> = outputs
            .iter()
            .zip(&written)
            .map(|((name, t), file)| {
                json!({ "name": name, "dtype": t.dtype(), "shape": t.shape(), "first_values": first_values(t, 8), "file": file })
            })
            .collect();
        let report = json!({
            "session": report_json(session.report()),
            "latency_ms": latency.as_secs_f64() * 1e3,
            "outputs": outputs,
        });
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("{}", engine_line(session.report()));
        println!("latency: {:.3} ms", latency.as_secs_f64() * 1e3);
        for ((name, tensor), file) in outputs.iter().zip(&written) {
            let more = if tensor.len() > 8 { ", …" } else { "" };
            println!("{name}: {} {:?} [{}{more}]", tensor.dtype(), tensor.shape(), first_values(tensor, 8).join(", "));
            if let Some(path) = file {
                println!("  written to {}", path.display());
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
