//! `sextant demo`: the whole loop on one machine. A collector on SQLite (with the dashboard), an
//! edge host serving the wine model through the tabular guest, the web demo, and a traffic
//! generator: clean traffic first, then drift at the edge (a shifted feature), a broken feed at
//! the page (a new category, a renamed field) and a concept shift (labels change for the same
//! inputs). The alerts are printed as the collector fires them; Ctrl-C stops everything.
//!
//! `cargo xtask demo` builds what this needs (guests, `pkg/`) and runs it. The folder it works in
//! (`--dir`) holds the database, the edge host's configuration, its spool, and two files scripts
//! and tests read: `demo.json` (addresses and keys, once everything serves) and `sent.json` (every
//! prediction id and label sent, at the end).

mod scenario;
mod traffic;
mod watch;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use collector::alerts::{Metric, Rule, Severity};
use collector::monitor::Width;
use collector::{Collector, Database, Role, Scope, Token};
use serde::Serialize;
use telemetry::{Batcher, BatcherConfig, ModelRef, Source, SourceKind};
use tokio::net::TcpListener;
use tokio::sync::watch as signal;

use crate::profile::{BINS, MAX_CATEGORIES};
use crate::table::Table;
use scenario::{Data, EDGE_MODEL, PAGE_MODEL, VERSION};
use traffic::{Clients, EdgeRoute, Labeller};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Working folder: database, edge configuration and spool, demo.json, sent.json. Emptied at start.
    #[arg(long, default_value = "target/demo")]
    dir: PathBuf,
    /// The repository checkout: the example model and data, www/ and pkg/.
    #[arg(long, default_value = env!("CARGO_MANIFEST_DIR"))]
    root: PathBuf,
    /// Folder holding the guest components (tabular.wasm); `cargo xtask demo` builds them.
    /// Without it the edge clients call the model over OIP.
    #[arg(long)]
    guests: Option<PathBuf>,
    /// Where the collector (API and dashboard) listens; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:7878")]
    collector_listen: SocketAddr,
    #[arg(long, default_value = "127.0.0.1:8090")]
    edge_listen: SocketAddr,
    /// Where the web demo listens (it needs pkg/: `cargo xtask web`).
    #[arg(long, default_value = "127.0.0.1:8080")]
    web_listen: SocketAddr,
    /// Seconds of clean traffic before the drift starts.
    #[arg(long, default_value_t = 45)]
    clean_s: u64,
    /// Stop this many seconds after the drift started (default: run until Ctrl-C).
    #[arg(long)]
    drift_s: Option<u64>,
    /// Calls a second through the edge host (the page makes half as many predictions).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(2..=500))]
    rate: u32,
}

/// `{dir}/demo.json`: where everything is, written once it all serves.
#[derive(Debug, Serialize)]
struct Running {
    collector: String,
    dashboard: String,
    edge: String,
    edge_route: String,
    web: Option<String>,
    ingest_key: String,
    read_key: String,
    admin_key: String,
}

pub fn main(args: Args) -> Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(run(args))
}

async fn run(args: Args) -> Result<ExitCode> {
    let started = Instant::now();
    // Absolute: the edge host's configuration file names paths relative to itself.
    let root = args.root.canonicalize().with_context(|| format!("no repository at {}", args.root.display()))?;
    let model_path = root.join("crates/runtime/test_data/models/wine_tabular/model.onnx");
    let wine_csv = root.join("crates/runtime/test_data/datasets/wine.csv");
    let wine_table = Table::read(&wine_csv)?;
    let data = Data::from_table(&wine_table, &wine_csv)?;
    let guest = match &args.guests {
        Some(dir) if !dir.join("tabular.wasm").is_file() => {
            bail!("{} has no tabular.wasm: build the guests (cargo xtask demo does)", dir.display())
        }
        Some(dir) => Some(dir.join("tabular.wasm").canonicalize()?),
        None => None,
    };
    let dir = fresh_dir(&args.dir)?;

    // Every listener first, so each address is known before anything is configured.
    let bind = |addr: SocketAddr| async move {
        TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr} (is a demo already running?)"))
    };
    let (collector_listener, edge_listener) = (bind(args.collector_listen).await?, bind(args.edge_listen).await?);
    let collector_url = format!("http://{}", collector_listener.local_addr()?);
    let edge_url = format!("http://{}", edge_listener.local_addr()?);
    let token = |role| Token::generate().map(|t| (role, t));
    let (ingest, read, admin) = (token(Role::Ingest)?, token(Role::Read)?, token(Role::Admin)?);
    // The web demo (digits in a real browser), its telemetry to the same collector.
    let web = match crate::web::router(&root, None, Some((&collector_url, ingest.1.secret()))) {
        Ok(app) => {
            let listener = bind(args.web_listen).await?;
            Some((format!("http://{}", listener.local_addr()?), listener, app))
        }
        Err(e) => {
            println!("no web demo: {e:#}");
            None
        }
    };

    // The collector, with the keys above and rules on one-minute windows.
    let database = Database::Sqlite(dir.join("demo.db"));
    let store = collector::open(&database, 1).await.with_context(|| format!("cannot open {database}"))?;
    for (role, token) in [&ingest, &read, &admin] {
        store.create_key(format!("demo-{}", role.as_str()), *role, Scope::All, token.digest()).await?;
    }
    let origins = web.iter().map(|(url, ..)| url.clone()).collect();
    let collector = Collector::new(store, collector_config(database, origins)?);
    let (stop_collector, stopped) = signal::channel(false);
    let collector_task = tokio::spawn(collector::serve(collector, collector_listener, until(stopped)));

    // Reference profiles: the training data for the edge; the page's records (with a region).
    let http = tls::client()?;
    let wine_profile = crate::profile::build(&wine_table, Some(scenario::TARGET), usize::from(BINS), MAX_CATEGORIES)?;
    let page_csv = dir.join("wine-web-reference.csv");
    let mut rng = <rand::rngs::SmallRng as rand::SeedableRng>::seed_from_u64(1);
    std::fs::write(&page_csv, scenario::page_reference_csv(&data, &mut rng))?;
    let page_profile =
        crate::profile::build(&Table::read(&page_csv)?, Some(scenario::TARGET), usize::from(BINS), MAX_CATEGORIES)?;
    for (model, profile) in [(EDGE_MODEL, &wine_profile), (PAGE_MODEL, &page_profile)] {
        let url = format!("{collector_url}/v1/models/{model}/versions/{VERSION}/profile");
        let response = http.put(&url).bearer_auth(admin.1.secret()).json(profile).send().await?;
        response.error_for_status().with_context(|| format!("PUT {url}"))?;
    }

    // The edge host, from a configuration file like any other.
    let edge_config = dir.join("edge.toml");
    std::fs::write(
        &edge_config,
        edge_toml(&edge_url, &model_path, guest.as_deref(), &data, &collector_url, &ingest.1),
    )?;
    let config = edge::Config::load(&edge_config)?;
    let (stop_edge, stopped) = signal::channel(false);
    let edge_task = tokio::spawn(async move { edge::serve(&config, edge_listener, until(stopped)).await });
    ready(&http, &format!("{edge_url}/v2/health/ready"), &edge_task).await?;
    let route = match guest {
        Some(_) => EdgeRoute::Module(format!("{edge_url}/wine")),
        None => EdgeRoute::Oip(format!("{edge_url}/v2/models/{EDGE_MODEL}/infer")),
    };

    let (stop_web, stopped) = signal::channel(false);
    let web_task = web.map(|(url, listener, app)| {
        let task = tokio::spawn(async move { axum::serve(listener, app).with_graceful_shutdown(until(stopped)).await });
        (url, task)
    });

    // The page client's own session and telemetry, as the browser package would set them up.
    let model_bytes = std::fs::read(&model_path).with_context(|| format!("while reading {}", model_path.display()))?;
    let model = runtime::Model::from_bytes(&model_bytes)?;
    let options = runtime::SessionOptions { backend: runtime::BackendChoice::Cpu, ..Default::default() };
    let session = runtime::Session::new(&model, &options).await?;
    let source =
        Source { kind: SourceKind::Browser, node: "demo-page".into(), sdk_version: env!("CARGO_PKG_VERSION").into() };
    let model_ref =
        ModelRef { name: PAGE_MODEL.into(), version: VERSION.into(), hash: edge::content_hash(&model_bytes) };
    let batcher =
        Batcher::new(BatcherConfig::default(), source, model_ref, format!("demo-page-{}", std::process::id()));
    let shipper = telemetry_client::Shipper::spawn(
        batcher,
        telemetry_client::HttpTransport::new(&collector_url, ingest.1.secret())?,
    );

    let running = Running {
        dashboard: format!("{collector_url}/dashboard/?key={}&window=1m&refresh=10", read.1.secret()),
        collector: collector_url.clone(),
        edge: edge_url.clone(),
        edge_route: match &route {
            EdgeRoute::Module(url) | EdgeRoute::Oip(url) => url.clone(),
        },
        web: web_task.as_ref().map(|(url, _)| url.clone()),
        ingest_key: ingest.1.secret().to_owned(),
        read_key: read.1.secret().to_owned(),
        admin_key: admin.1.secret().to_owned(),
    };
    // Written before anything is printed: a script that sees the banner finds the file.
    std::fs::write(dir.join("demo.json"), serde_json::to_string_pretty(&running)?)?;
    banner(&running, &dir, &args, started);

    let clients = Clients::new(data, http.clone());
    let labeller = Labeller::new(&collector_url, ingest.1.secret());
    let page_rate = (args.rate / 2).max(1);
    let tasks = vec![
        tokio::spawn(traffic::edge_client(clients.clone(), route, args.rate, labeller.clone(), 11)),
        tokio::spawn(labeller.clone().run(clients.clone())),
    ];
    let page = tokio::spawn(traffic::page_client(clients.clone(), session, page_profile, shipper, page_rate, 12));
    let watcher = watch::Watcher::new(&collector_url, read.1.secret(), http.clone());
    let watching = tokio::spawn(watcher.clone().run(clients.clone(), started));

    let mut interrupted = std::pin::pin!(tokio::signal::ctrl_c());
    let interrupted_early = tokio::select! {
        _ = tokio::time::sleep(Duration::from_secs(args.clean_s)) => false,
        _ = &mut interrupted => true,
    };
    if !interrupted_early {
        clients.start_drift();
        println!(
            "\nphase: drift (at {} s). At the edge `{}` is {} higher; the page's records now come partly from region \
             `{}` and name `{}` `{}`; and cultivar {} is graded {} from now on. Expect alerts within about two \
             minutes (windows are whole minutes).\n",
            started.elapsed().as_secs(),
            scenario::SHIFTED,
            scenario::SHIFT,
            scenario::NEW_REGION,
            scenario::RENAMED.0,
            scenario::RENAMED.1,
            scenario::CONCEPT_SHIFT.0,
            scenario::CONCEPT_SHIFT.1,
        );
        match args.drift_s {
            Some(seconds) => {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(seconds)) => {}
                    _ = &mut interrupted => {}
                }
            }
            None => {
                let _ = interrupted.await;
            }
        }
    }

    println!("\nstopping: the clients, then the edge host (its last telemetry), the web demo, the collector");
    clients.stop();
    for task in tasks {
        task.await?;
    }
    let page_result = page.await?;
    watching.await?;
    let _ = stop_edge.send(true);
    edge_task.await?.context("the edge host")?;
    if let Err(e) = watcher.print_alerts().await {
        eprintln!("  watcher: {e:#}");
    }
    let exact = tally(&clients, &watcher).await?;
    let sent = serde_json::to_string(&*clients.sent.lock().unwrap_or_else(std::sync::PoisonError::into_inner))?;
    std::fs::write(dir.join("sent.json"), sent)?;
    if let Some((_, task)) = web_task {
        let _ = stop_web.send(true);
        task.await?.context("the web demo")?;
    }
    let _ = stop_collector.send(true);
    collector_task.await?.context("the collector")?;
    page_result.context("the page client")?;
    println!("stopped after {} s; everything is in {}", started.elapsed().as_secs(), dir.display());
    Ok(if exact { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// Resolves once `stopped` turns true (or its sender is gone).
async fn until(mut stopped: signal::Receiver<bool>) {
    let _ = stopped.wait_for(|s| *s).await;
}

/// The demo folder, emptied: only a folder the demo made (it holds `.sextant-demo`) or an empty
/// one is used, so a mistyped `--dir` never deletes anything else.
fn fresh_dir(dir: &Path) -> Result<PathBuf> {
    let marker = dir.join(".sextant-demo");
    if dir.exists() {
        let empty = std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))?.next().is_none();
        if !empty && !marker.exists() {
            bail!("{} is not empty and was not made by `sextant demo`: choose another --dir", dir.display());
        }
        std::fs::remove_dir_all(dir).with_context(|| format!("cannot empty {}", dir.display()))?;
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    std::fs::write(&marker, "made by `sextant demo`; emptied at each start\n")?;
    Ok(dir.to_owned())
}

/// The collector's configuration: the demo's database and CORS origin, its keys made by the demo,
/// and rules on one-minute windows evaluated every 5 s, so a change shows within two minutes.
fn collector_config(database: Database, cors_origins: Vec<String>) -> Result<collector::Config> {
    let rule = |name: &str, metric, severity, threshold| Rule {
        name: name.into(),
        metric,
        threshold,
        window: Width::MINUTE,
        min_samples: 100,
        severity,
        model: None,
    };
    let mut config = collector::Config { database, cors_origins, bootstrap_keys: false, ..Default::default() };
    config.monitoring.window = Width::MINUTE;
    config.monitoring.evaluate_every = Width::parse("5s").map_err(anyhow::Error::msg)?;
    config.monitoring.rules = vec![
        rule("feature-drift", Metric::FeatureDrift, Severity::Warning, None),
        rule("prediction-drift", Metric::PredictionDrift, Severity::Warning, None),
        rule("data-integrity", Metric::Integrity, Severity::Warning, None),
        rule("accuracy", Metric::Accuracy, Severity::Critical, Some(0.85)),
        rule("error-rate", Metric::ErrorRate, Severity::Critical, Some(0.05)),
    ];
    Ok(config)
}

/// The edge host's configuration file (`sextant edge --config` reads the same).
fn edge_toml(edge: &str, model: &Path, guest: Option<&Path>, data: &Data, collector: &str, ingest: &Token) -> String {
    let quote = |s: &str| serde_json::Value::String(s.to_owned()).to_string();
    let path = |p: &Path| quote(&p.display().to_string());
    let mut toml = format!(
        "# Written by `sextant demo`: `sextant edge --config edge.toml` serves the same.\n\
         node = \"demo-gateway\"\nlisten = {}\n\n\
         [[models]]\nname = {}\npath = {}\nversion = {}\nclasses = [\"0\", \"1\", \"2\"]\noutput = \"probabilities\"\n",
        quote(edge.trim_start_matches("http://")),
        quote(EDGE_MODEL),
        path(model),
        quote(VERSION),
    );
    if let Some(guest) = guest {
        toml += &format!(
            "\n[[modules]]\nname = \"wine-app\"\npath = {}\nroute = \"/wine\"\ngraphs = [{}]\n\
             env = {{ FEATURES = {}, GRAPH = {}, CLASSES = \"0,1,2\" }}\n",
            path(guest),
            quote(EDGE_MODEL),
            quote(&data.features.join(",")),
            quote(EDGE_MODEL),
        );
    }
    toml +=
        &format!("\n[collector]\nurl = {}\nkey = {}\nspool = \"spool\"\n", quote(collector), quote(ingest.secret()));
    toml
}

/// Waits until `url` answers 200 (the edge host has loaded its models and modules).
async fn ready<T>(http: &reqwest::Client, url: &str, task: &tokio::task::JoinHandle<T>) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(300);
    while Instant::now() < deadline {
        if task.is_finished() {
            bail!("the edge host stopped while loading (see the error above)");
        }
        if http.get(url).send().await.is_ok_and(|r| r.status().is_success()) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    bail!("the edge host was not ready within 300 s ({url})")
}

fn banner(running: &Running, dir: &Path, args: &Args, started: Instant) {
    println!("\nSextant demo: ready in {:.1} s; its files are in {}\n", started.elapsed().as_secs_f64(), dir.display());
    println!("  dashboard   {}", running.dashboard);
    println!("  edge host   {}/v2  (the wine model; its app at {})", running.edge, running.edge_route);
    match &running.web {
        Some(web) => println!("  web demo    {web}/  (digits in your browser, reporting to the collector)"),
        None => println!("  web demo    not served: build pkg/ with `cargo xtask web`"),
    }
    println!("  keys        ingest {}  read {}  admin {}", running.ingest_key, running.read_key, running.admin_key);
    println!(
        "\nphase: clean ({} s). Edge clients call the wine app {} times a second, a simulated page (the browser \
         package's telemetry path, run natively) predicts {} times a second; ground truth follows for 90%.\n",
        args.clean_s,
        args.rate,
        (args.rate / 2).max(1)
    );
}

/// Prints what was sent and what the collector stored, per model; true when they agree.
async fn tally(clients: &Arc<Clients>, watcher: &watch::Watcher) -> Result<bool> {
    let stored = watcher.stored().await?;
    let mut exact = true;
    for (model, (predictions, labels)) in clients.counts() {
        let kept = stored.get(&model).copied().unwrap_or(0);
        let same = usize::try_from(kept).is_ok_and(|k| k == predictions);
        exact &= same;
        println!(
            "  {model}: {predictions} predictions sent, {kept} stored{}; {labels} labels sent",
            if same { " (each exactly once)" } else { " — MISMATCH" }
        );
    }
    Ok(exact)
}
