//! `sextant edge`: the edge host (see the `edge` crate): models from a TOML file, served over the
//! Open Inference Protocol until Ctrl-C.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The host's TOML configuration (see crates/edge/src/config.rs).
    #[arg(long)]
    config: PathBuf,
    /// Listen here instead of the file's `listen` (port 0 picks a free one; the address is printed).
    #[arg(long)]
    listen: Option<std::net::SocketAddr>,
}

pub fn main(args: Args) -> anyhow::Result<ExitCode> {
    let mut config = edge::Config::load(&args.config)?;
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
