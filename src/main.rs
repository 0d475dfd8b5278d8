//! `sextant`: the command line over the Sextant runtime.
//!
//! This binary is an edge: it reads files, measures time and prints. The logic it shows lives in the
//! `runtime` crate. The subcommands and their flags are a contract other tools rely on: keep them stable.

mod bench;
mod check;
mod collect;
mod conformance;
mod demo;
mod drift;
mod edge;
mod html;
mod inspect;
mod options;
mod profile;
mod run;
mod table;
mod tensor_files;
mod validate;
mod web;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "sextant", version, about = "Run ONNX models on the best engine proven right for them")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show a model's signature, opsets and ops, and which engines can run it (or why not).
    Inspect(inspect::Args),
    /// Run a model on input files and write its outputs as .npy.
    Run(run::Args),
    /// Measure load time and latency percentiles.
    Bench(bench::Args),
    /// Run every available engine on the same input and report how far they disagree.
    Check(check::Args),
    /// Run ONNX backend test cases (model.onnx + test_data_set_*) on every engine.
    Conformance(conformance::Args),
    /// Build reference profiles that deployments count their inputs against.
    Profile(profile::Args),
    /// Compare a current data set with a reference: drift per column, integrity, performance.
    Drift(drift::Args),
    /// Run the telemetry collector (or manage its API keys).
    Collect(collect::Args),
    /// Serve models over the Open Inference Protocol (KServe v2) and sandboxed wasm modules from a TOML configuration.
    Edge(edge::Args),
    /// Validate a model on labelled data before it ships: metrics, challengers, resources, a CI gate, a model card.
    Validate(validate::Args),
    /// The whole loop on this machine: collector, edge host, web demo and traffic that drifts.
    Demo(demo::Args),
    /// Serve the web demo (www/demo), the browser package (pkg/) and the example models.
    Web(web::Args),
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("SEXTANT_LOG"))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Inspect(args) => inspect::main(args),
        Command::Run(args) => run::main(args),
        Command::Bench(args) => bench::main(args),
        Command::Check(args) => check::main(args),
        Command::Conformance(args) => conformance::main(args),
        Command::Profile(args) => profile::main(args),
        Command::Collect(args) => collect::main(args),
        Command::Drift(args) => drift::main(args),
        Command::Web(args) => web::main(args),
        Command::Demo(args) => demo::main(args),
        Command::Edge(args) => edge::main(args),
        Command::Validate(args) => validate::main(args),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
