//! `sextant check`: every available engine on the same input, and how far they disagree.

use std::process::ExitCode;

use anyhow::{Context, Result};
use runtime::{BackendChoice, Session, Tolerance, compare, free_dims_of};
use serde_json::json;

use crate::options::{ModelInputs, SessionArgs, load_model};
use crate::tensor_files::inputs_or_synthetic;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    target: ModelInputs,
    #[command(flatten)]
    session: SessionArgs,
    /// Print as JSON.
    #[arg(long)]
    json: bool,
}

/// Exit status 1 when the GPU ran and disagrees with the CPU beyond 1e-4 (abs or rel).
pub fn main(args: Args) -> Result<ExitCode> {
    let model = load_model(&args.target.model)?;
    let inputs = inputs_or_synthetic(&model, &args.target.inputs, &args.session.dims)?;
    let dims = free_dims_of(model.inputs(), &inputs);
    let cpu = pollster::block_on(Session::new(&model, &args.session.options(BackendChoice::Cpu, dims.clone())))
        .context("while creating the CPU session")?;
    let expected = pollster::block_on(cpu.run(inputs.clone())).context("while running on the CPU")?;
    let gpu = pollster::block_on(Session::new(&model, &args.session.options(BackendChoice::Gpu, dims)));
    let gpu = match gpu {
        Ok(session) => Ok((pollster::block_on(session.run(inputs)).context("while running on the GPU")?, session)),
        Err(refused) => Err(refused.to_string()),
    };

    let mut agree = true;
    let mut rows = Vec::new();
    if let Ok((actual, _)) = &gpu {
        for ((name, expected), (_, actual)) in expected.iter().zip(actual) {
            let comparison = compare(actual, expected, Tolerance::default());
            agree &= comparison.passed();
            rows.push((name.clone(), comparison));
        }
    }
    if args.json {
        let gpu_json = match &gpu {
            Ok((_, session)) => json!({ "ran": true, "adapter": session.report().adapter }),
            Err(reason) => json!({ "ran": false, "reason": reason }),
        };
        let outputs: Vec<_> = rows.iter().map(|(name, c)| json!({ "output": name, "comparison": c })).collect();
        println!(
            "{}",
            serde_json::to_string_pretty(
                &json!({ "cpu": { "ran": true }, "gpu": gpu_json, "outputs": outputs, "agree": agree })
            )?
        );
    } else {
        println!("cpu: ran");
        match &gpu {
            Ok((_, session)) => println!("gpu: ran on {}", session.report().adapter.as_deref().unwrap_or("?")),
            Err(reason) => println!("gpu: not run: {reason}"),
        }
        for (name, comparison) in &rows {
            let verdict = if comparison.passed() { "agree" } else { "DISAGREE" };
            println!("{name}: {verdict}: {}", comparison.summary());
        }
    }
    Ok(if agree { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
