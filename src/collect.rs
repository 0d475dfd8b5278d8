//! `sextant collect`: the telemetry collector service, and its API keys.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use collector::{Collector, Config, Database, Role, Scope, Token};

#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Args {
    #[command(subcommand)]
    command: Option<KeysCommand>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Address to listen on (port 0 picks a free one; the address is printed).
    #[arg(long)]
    listen: Option<std::net::SocketAddr>,
    /// Allow browser pages from this origin (repeatable), e.g. https://app.example.com.
    #[arg(long = "cors-origin")]
    cors_origins: Vec<String>,
}

#[derive(Debug, clap::Args)]
struct ConfigArgs {
    /// TOML configuration file (see README); flags override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// A SQLite file, or a postgres:// URL [default: sextant.db].
    #[arg(long)]
    database: Option<String>,
}

impl ConfigArgs {
    fn load(&self) -> anyhow::Result<Config> {
        let mut config = match &self.config {
            Some(path) => Config::from_file(path)?,
            None => Config::default(),
        };
        if let Some(database) = &self.database {
            config.database = Database::parse(database);
        }
        Ok(config)
    }
}

#[derive(Debug, clap::Subcommand)]
enum KeysCommand {
    /// Manage API keys: ingest (deployments), read (dashboards), admin (profiles and everything).
    #[command(subcommand)]
    Keys(Keys),
}

#[derive(Debug, clap::Subcommand)]
enum Keys {
    /// Create a key and print its token (shown only this once; the database keeps a digest).
    Create {
        #[arg(long, value_parser = ["ingest", "read", "admin"])]
        role: String,
        /// What the key is for, e.g. the edge node or app that holds it.
        #[arg(long)]
        name: String,
        /// The models an ingest key may write: names, or prefixes ending in `*`
        /// (`--models wine,wine-web`, `--models shop-*`). Batches and labels for other models
        /// are refused (403).
        #[arg(long, conflicts_with = "all_models")]
        models: Option<String>,
        /// An ingest key for every model (a trusted backend's, not a public app's).
        #[arg(long)]
        all_models: bool,
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// List keys (never their tokens).
    List {
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Revoke a key by id; other collector processes stop accepting it within 30 s.
    Revoke {
        id: i64,
        #[command(flatten)]
        config: ConfigArgs,
    },
}

pub fn main(args: Args) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        match args.command {
            None => serve(args.serve).await,
            Some(KeysCommand::Keys(keys)) => manage_keys(keys).await,
        }
    })
}

async fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let mut config = args.config.load()?;
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    config.cors_origins.extend(args.cors_origins);
    let store = collector::open(&config.database, config.postgres_pool_size)
        .await
        .with_context(|| format!("cannot open {}", config.database))?;
    if config.bootstrap_keys {
        bootstrap_keys(&*store, &config.bootstrap_keys_file).await?;
    }
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let address = listener.local_addr()?;
    let database = config.database.to_string();
    let collector = Collector::new(store, config);
    println!("collector listening on http://{address} ({database})");
    std::io::stdout().flush()?;
    collector::serve(collector, listener, shutdown_signal()).await?;
    eprintln!("collector stopped");
    Ok(ExitCode::SUCCESS)
}

/// On a database with no keys at all: creates an ingest (every model), a read and an admin key,
/// and writes their tokens to `path`, created new with mode 0600 (an admin token in stdout would
/// end up in whatever collects logs). Of several processes starting at once on an empty database,
/// one creates them; the others find them and go on.
async fn bootstrap_keys(store: &dyn collector::Store, path: &std::path::Path) -> anyhow::Result<()> {
    let roles = [(Role::Ingest, "bootstrap-ingest"), (Role::Read, "bootstrap-read"), (Role::Admin, "bootstrap-admin")];
    let mut tokens = Vec::with_capacity(roles.len());
    let mut keys = Vec::with_capacity(roles.len());
    for (role, name) in roles {
        let token = Token::generate()?;
        // The bootstrap ingest key is for trying things out: every model.
        keys.push(collector::NewKey { name: name.to_owned(), role, scope: Scope::All, digest: token.digest() });
        tokens.push((role, token));
    }
    if path.exists() {
        if !store.keys().await?.is_empty() {
            return Ok(()); // a restart: the keys were made before
        }
        anyhow::bail!(
            "the bootstrap key file {} exists (an old one is never overwritten: move it away, or set \
             bootstrap_keys_file, or bootstrap_keys = false)",
            path.display()
        );
    }
    let Some(made) = store.create_first_keys(keys).await? else { return Ok(()) };
    let mut text = String::from("# Sextant collector bootstrap keys: shown nowhere else; keep this file private.\n");
    for (role, token) in &tokens {
        text.push_str(&format!("{:<6} key: {}\n", role.as_str(), token.secret()));
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let written =
        options.open(path).and_then(|mut file| file.write_all(text.as_bytes()).and_then(|()| file.sync_all()));
    if let Err(e) = written {
        // Tokens nobody can read are no use to anyone: take the keys back.
        for key in &made {
            store.revoke_key(key.id).await?;
        }
        return Err(e).with_context(|| {
            format!(
                "cannot write the bootstrap key file {}; the keys made for it are revoked (create keys with \
                 `sextant collect keys create`)",
                path.display()
            )
        });
    }
    println!(
        "no API keys yet; created an ingest, a read and an admin key: their tokens are in {} (mode 0600)",
        path.display()
    );
    Ok(())
}

/// Ctrl-C or SIGTERM: stop accepting, finish what is in flight.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = terminate => {}
    }
}

async fn manage_keys(keys: Keys) -> anyhow::Result<ExitCode> {
    let open = |config: &ConfigArgs| -> anyhow::Result<Config> { config.load() };
    match keys {
        Keys::Create { role, name, models, all_models, config } => {
            let role = Role::parse(&role).context("unknown role")?;
            let scope = match (role, models) {
                (Role::Ingest, Some(models)) => Scope::parse(&models).map_err(|e| anyhow::anyhow!("--models: {e}"))?,
                (Role::Ingest, None) if all_models => Scope::All,
                (Role::Ingest, None) => anyhow::bail!(
                    "an ingest key needs the models it may write: `--models NAME[,NAME|PREFIX*…]`, or `--all-models`"
                ),
                (_, Some(_)) => anyhow::bail!("--models scopes ingest keys; {} keys read every model", role.as_str()),
                (_, None) => Scope::All,
            };
            let config = open(&config)?;
            let store = collector::open(&config.database, 1).await?;
            let token = Token::generate()?;
            let key = store.create_key(name, role, scope, token.digest()).await?;
            eprintln!(
                "created {} key {} ({:?}, {}); the token is shown only now:",
                role.as_str(),
                key.id,
                key.name,
                key.scope
            );
            println!("{}", token.secret());
        }
        Keys::List { config } => {
            let config = open(&config)?;
            let store = collector::open(&config.database, 1).await?;
            println!("{:>4}  {:<7} {:<10} {:<24} scope", "id", "role", "state", "name");
            for key in store.keys().await? {
                let state = if key.revoked_ms.is_some() { "revoked" } else { "live" };
                println!("{:>4}  {:<7} {:<10} {:<24} {}", key.id, key.role.as_str(), state, key.name, key.scope);
            }
        }
        Keys::Revoke { id, config } => {
            let config = open(&config)?;
            let store = collector::open(&config.database, 1).await?;
            if !store.revoke_key(id).await? {
                anyhow::bail!("there is no live key with id {id}");
            }
            println!("revoked key {id}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
