//! Configuration: a TOML file, flags on top, and defaults that run with none of either.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::alerts::Rule;
use crate::monitor::Width;

/// Everything `sextant collect` can be told. Every field has a default, so an empty file (or none)
/// runs a local collector on SQLite.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub listen: SocketAddr,
    /// A SQLite file path, or a `postgres://` URL.
    pub database: Database,
    /// Batches and label uploads being decoded or stored at once; beyond this, 429.
    pub max_in_flight: usize,
    /// Reads (`GET /v1/…`) answered at once; one more waits up to 5 s for a slot, then gets 503.
    pub max_reads_in_flight: usize,
    /// The `Retry-After` sent with 429 and 503 answers, in seconds.
    pub retry_after_s: u32,
    /// Largest request body, before decompression.
    pub max_body_bytes: usize,
    /// Largest batch after decompression.
    pub max_decoded_bytes: usize,
    pub max_records_per_batch: usize,
    /// Memory the uploads being decoded at once may take, estimated from their decoded size
    /// (at least one largest upload's); beyond, 429.
    pub decode_budget_bytes: usize,
    /// Seconds an upload's body may take to arrive (it holds an upload slot meanwhile); beyond, 408.
    pub body_timeout_s: u32,
    /// Model versions (name, version, hash) one key may register, by sending the first batch of
    /// each; beyond, 403. Every evaluator pass and gauge walks every model version.
    pub max_model_versions_per_key: usize,
    /// Connections: how many, from one address, and how long (`[connections]`).
    pub connections: serve::Limits,
    /// Records timed further back than this by the collector's clock are refused, each with the
    /// reason: a client cannot backfill years of windows.
    pub accept_past: Width,
    /// Records timed further ahead than this are refused: a client cannot plant next week's
    /// windows (a clock may run a little fast).
    pub accept_future: Width,
    /// `/metrics` only for read keys (Prometheus sends one as `bearer_token`): its model names
    /// and versions are visible to whoever reaches the port otherwise.
    pub metrics_need_key: bool,
    /// Origins whose pages may send telemetry and read (CORS). Empty: no browser access.
    pub cors_origins: Vec<String>,
    /// PostgreSQL connections per collector process.
    pub postgres_pool_size: usize,
    /// On a database with no API keys, create an ingest (every model), a read and an admin key,
    /// so a local collector works with no setup. Their tokens go to `bootstrap_keys_file`, never
    /// to the log.
    pub bootstrap_keys: bool,
    /// Where bootstrap tokens are written: created new, readable by this user only (0600).
    pub bootstrap_keys_file: std::path::PathBuf,
    pub monitoring: Monitoring,
}

/// Windows, alert rules and webhooks (`[monitoring]`, `[[monitoring.rules]]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Monitoring {
    /// The window the read API and the Prometheus gauges use when none is asked for.
    pub window: Width,
    /// How often alert rules are evaluated.
    pub evaluate_every: Width,
    /// URLs that receive every alert event as a JSON POST.
    pub webhooks: Vec<String>,
    /// Attempts per delivery before it is marked failed (backoff doubles from 1 s, up to 5 min).
    pub webhook_max_attempts: u32,
    /// Webhooks to loopback, private and link-local addresses (by URL or by what the name
    /// resolves to) are refused unless this is set: such a receiver must be meant.
    pub webhook_allow_private: bool,
    /// Written to the database at start-up (replacing stored rules of the same name); rules added
    /// through the API are kept. Absent: [`Rule::defaults`]; `rules = []`: none.
    pub rules: Vec<Rule>,
}

impl Default for Monitoring {
    fn default() -> Self {
        Monitoring {
            window: Width::HOUR,
            evaluate_every: Width::parse("30s").unwrap_or(Width::MINUTE),
            webhooks: Vec::new(),
            webhook_max_attempts: 8,
            webhook_allow_private: false,
            rules: Rule::defaults(),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        let limits = telemetry::Limits::default();
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 7878)),
            database: Database::Sqlite(PathBuf::from("sextant.db")),
            max_in_flight: 64,
            max_reads_in_flight: 16,
            retry_after_s: 1,
            max_body_bytes: limits.max_body_bytes,
            max_decoded_bytes: limits.max_decoded_bytes,
            max_records_per_batch: limits.max_records,
            decode_budget_bytes: 1 << 30,
            body_timeout_s: 30,
            max_model_versions_per_key: 256,
            connections: serve::Limits::default(),
            metrics_need_key: false,
            accept_past: Width::parse("7d").unwrap_or(Width::HOUR),
            accept_future: Width::parse("5m").unwrap_or(Width::MINUTE),
            cors_origins: Vec::new(),
            postgres_pool_size: 8,
            bootstrap_keys: true,
            bootstrap_keys_file: "sextant-bootstrap-keys.txt".into(),
            monitoring: Monitoring::default(),
        }
    }
}

impl Config {
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
        let config: Config =
            toml::from_str(&text).map_err(|e| ConfigError::Parse { path: path.to_owned(), message: e.to_string() })?;
        let invalid = |message| ConfigError::Parse { path: path.to_owned(), message };
        config.monitoring.window.whole_minutes().map_err(invalid)?;
        config.connections.validate().map_err(invalid)?;
        for url in &config.monitoring.webhooks {
            crate::alerts::target::check_url(url, config.monitoring.webhook_allow_private).map_err(invalid)?;
            if url.starts_with("https://") {
                tls::client_config().map_err(|e| invalid(format!("webhook {url}: {e}")))?;
            }
        }
        for rule in &config.monitoring.rules {
            rule.validate().map_err(invalid)?;
        }
        Ok(config)
    }

    pub fn limits(&self) -> telemetry::Limits {
        telemetry::Limits {
            max_body_bytes: self.max_body_bytes,
            max_decoded_bytes: self.max_decoded_bytes,
            max_records: self.max_records_per_batch,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("config file {path} is not valid: {message}")]
    Parse { path: PathBuf, message: String },
}

/// Where the collector keeps its data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum Database {
    /// One file (WAL mode), for a single collector process.
    Sqlite(PathBuf),
    /// A `postgres://` or `postgresql://` URL, for several collector processes sharing one database.
    Postgres(String),
}

impl Database {
    pub fn parse(text: &str) -> Database {
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            Database::Postgres(text.to_owned())
        } else {
            Database::Sqlite(PathBuf::from(text.strip_prefix("sqlite://").unwrap_or(text)))
        }
    }
}

impl From<String> for Database {
    fn from(text: String) -> Database {
        Database::parse(&text)
    }
}

impl From<Database> for String {
    fn from(db: Database) -> String {
        match db {
            Database::Sqlite(path) => path.display().to_string(),
            Database::Postgres(url) => url,
        }
    }
}

impl std::fmt::Display for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Database::Sqlite(path) => write!(f, "SQLite {}", path.display()),
            // Never print a password that may be in the URL.
            Database::Postgres(url) => match url.split_once('@') {
                Some((_, host)) => write!(f, "PostgreSQL {host}"),
                None => write!(f, "PostgreSQL {url}"),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_file_is_the_defaults_and_urls_pick_the_database() {
        assert_eq!(toml::from_str::<Config>("").unwrap(), Config::default());
        let config: Config = toml::from_str("database = \"postgres://u:secret@db:5432/x\"\nmax_in_flight = 8").unwrap();
        assert_eq!(config.database, Database::Postgres("postgres://u:secret@db:5432/x".into()));
        assert_eq!(config.max_in_flight, 8);
        assert_eq!(config.database.to_string(), "PostgreSQL db:5432/x", "the password is never printed");
        assert_eq!(Database::parse("sqlite://data/t.db"), Database::Sqlite("data/t.db".into()));
    }

    #[test]
    fn monitoring_rules_and_windows_parse() {
        let config: Config = toml::from_str(
            "[monitoring]\nwindow = \"5m\"\nwebhooks = [\"http://127.0.0.1:9/hook\"]\n\
             [[monitoring.rules]]\nname = \"acc\"\nmetric = \"accuracy\"\nthreshold = 0.8\nwindow = \"1d\"\n\
             severity = \"critical\"",
        )
        .unwrap();
        assert_eq!(config.monitoring.window, Width::parse("5m").unwrap());
        assert_eq!(config.monitoring.rules.len(), 1);
        assert_eq!(config.monitoring.rules[0].window.to_string(), "1d");
        assert_eq!(Config::default().monitoring.rules, Rule::defaults());
        let e = toml::from_str::<Config>("[monitoring]\nwindow = \"5 parsecs\"").unwrap_err().to_string();
        assert!(e.contains("expected a number and a unit"), "{e}");
        let e = toml::from_str::<Config>("[[monitoring.rules]]\nname = \"x\"\nmetric = \"accuracy_pct\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown variant `accuracy_pct`"), "{e}");
    }

    #[test]
    fn a_private_webhook_is_a_startup_error_unless_allowed() {
        let dir = std::env::temp_dir().join(format!("sextant-config-webhook-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("collector.toml");
        std::fs::write(&path, "[monitoring]\nwebhooks = [\"http://169.254.169.254/latest\"]\n").unwrap();
        let e = Config::from_file(&path).unwrap_err().to_string();
        assert!(e.contains("169.254.169.254") && e.contains("webhook_allow_private = true"), "{e}");
        let allowed = "[monitoring]\nwebhooks = [\"http://127.0.0.1:9/h\"]\nwebhook_allow_private = true\n";
        std::fs::write(&path, allowed).unwrap();
        assert!(Config::from_file(&path).is_ok());
    }

    #[test]
    fn unknown_fields_are_errors_not_ignored() {
        let e = toml::from_str::<Config>("listen = \"0.0.0.0:1\"\nmax_inflight = 3").unwrap_err().to_string();
        assert!(e.contains("unknown field `max_inflight`"), "{e}");
    }
}
