//! `sextant edge`: the edge host (see the `edge` crate): models from a TOML file, served over the
//! Open Inference Protocol until Ctrl-C.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    /// The host's TOML configuration (see crates/edge/src/config.rs).
    #[arg(long, required = true)]
    config: Option<PathBuf>,
    /// Listen here instead of the file's `listen` (port 0 picks a free one; the address is printed).
    #[arg(long)]
    listen: Option<std::net::SocketAddr>,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Make a bearer token for the config's `[auth]`: prints the token (for callers) and its
    /// digest (for the file, which never holds the token).
    Token,
}

pub fn main(args: Args) -> anyhow::Result<ExitCode> {
    if let Some(Command::Token) = args.command {
        let token = edge::generate_token();
        println!("token:  {token}\ndigest: {}", edge::digest(&token));
        return Ok(ExitCode::SUCCESS);
    }
    let Some(path) = &args.config else { anyhow::bail!("--config is required") };
    let mut config = edge::Config::load(path)?;
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("while binding {}", config.listen))?;
        // The first line is a contract: tests and scripts read the URL from it.
        println!("edge host {} serving on http://{}/v2", config.node, listener.local_addr()?);
        edge::serve(&config, listener, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .context("while loading the models")
    })?;
    Ok(ExitCode::SUCCESS)
}
