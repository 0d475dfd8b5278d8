//! API keys: bearer tokens, stored only as SHA-256 digests.
//!
//! A token is `sxt_` followed by 64 hex digits (256 random bits). It is shown once, when created;
//! the database keeps its digest, so a leaked database does not leak working keys.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Send batches and labels, and fetch reference profiles: what a deployment holds.
    Ingest,
    /// Read stored telemetry: what a dashboard or an analyst holds.
    Read,
    /// Everything, including uploading reference profiles.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Ingest => "ingest",
            Role::Read => "read",
            Role::Admin => "admin",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "ingest" => Some(Role::Ingest),
            "read" => Some(Role::Read),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }

    /// Whether a key of this role may do what `needed` allows.
    pub fn allows(self, needed: Role) -> bool {
        self == Role::Admin || self == needed
    }
}

/// A secret token, as the client sends it.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<secret>)")
    }
}

impl Token {
    pub fn generate() -> Result<Token, getrandom::Error> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes)?;
        let mut text = String::with_capacity(4 + 64);
        text.push_str("sxt_");
        for b in bytes {
            text.push_str(&format!("{b:02x}"));
        }
        Ok(Token(text))
    }

    pub fn from_secret(text: impl Into<String>) -> Token {
        Token(text.into())
    }

    pub fn secret(&self) -> &str {
        &self.0
    }

    pub fn digest(&self) -> String {
        digest(&self.0)
    }
}

/// The hex SHA-256 of a presented token: what the database is searched by.
pub fn digest(token: &str) -> String {
    Sha256::digest(token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// The models an ingest key may write: a public key (a browser app's) holds only its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Every model: read and admin keys, and ingest keys created with `--all-models`.
    All,
    /// Model names, each exact or a prefix ending in `*` (`wine`, `wine-*`).
    Models(Vec<String>),
}

impl Scope {
    /// Parses `wine,wine-web` or `shop-*`: names as `telemetry::check_name` allows them, each
    /// optionally ending in `*`.
    pub fn parse(text: &str) -> Result<Scope, String> {
        let patterns: Vec<String> = text.split(',').map(|p| p.trim().to_owned()).collect();
        for pattern in &patterns {
            let name = pattern.strip_suffix('*').unwrap_or(pattern);
            if pattern == "*" {
                return Err("`*` alone is every model: ask for that with `--all-models`".into());
            }
            telemetry::check_name("a model pattern", name)?;
        }
        Ok(Scope::Models(patterns))
    }

    pub fn allows(&self, model: &str) -> bool {
        match self {
            Scope::All => true,
            Scope::Models(patterns) => patterns.iter().any(|p| match p.strip_suffix('*') {
                Some(prefix) => model.starts_with(prefix),
                None => model == p,
            }),
        }
    }

    /// As the `api_keys.models` column stores it: null for every model.
    pub fn to_column(&self) -> Option<String> {
        match self {
            Scope::All => None,
            Scope::Models(patterns) => Some(patterns.join(",")),
        }
    }

    /// Back from the column. A stored list that no longer parses allows nothing: least power.
    pub fn from_column(column: Option<&str>) -> Scope {
        match column {
            None => Scope::All,
            Some(text) => Scope::parse(text).unwrap_or(Scope::Models(Vec::new())),
        }
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Scope::All => f.write_str("every model"),
            Scope::Models(patterns) => write!(f, "models {}", patterns.join(", ")),
        }
    }
}

/// A stored key, without its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyInfo {
    pub id: i64,
    pub name: String,
    pub role: Role,
    /// What it may write (ingest keys); read and admin keys see everything.
    pub scope: Scope,
    pub created_ms: i64,
    pub revoked_ms: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_match_and_round_trip() {
        let scope = Scope::parse("wine, shop-*").unwrap();
        assert!(scope.allows("wine"));
        assert!(scope.allows("shop-cart"));
        assert!(!scope.allows("wine2"));
        assert!(!scope.allows("victim"));
        assert_eq!(Scope::from_column(scope.to_column().as_deref()), scope);
        assert_eq!(Scope::from_column(None), Scope::All);
        assert!(Scope::All.allows("anything"));
        assert!(Scope::parse("*").unwrap_err().contains("--all-models"));
        assert!(Scope::parse("wine,").is_err());
        assert!(Scope::parse("a b").is_err());
        // A hand-edited column that does not parse allows nothing.
        assert!(!Scope::from_column(Some("bad name")).allows("bad name"));
    }

    #[test]
    fn tokens_are_random_and_only_their_digest_is_kept() {
        let (a, b) = (Token::generate().unwrap(), Token::generate().unwrap());
        assert_ne!(a, b);
        assert!(a.secret().starts_with("sxt_") && a.secret().len() == 68);
        assert_eq!(a.digest().len(), 64);
        assert_eq!(a.digest(), digest(a.secret()));
        assert!(!format!("{a:?}").contains(&a.secret()[4..]), "Debug must not print the secret");
        // SHA-256 of "abc", the FIPS 180-2 test vector.
        assert_eq!(digest("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn admin_allows_everything_and_others_only_themselves() {
        assert!(Role::Admin.allows(Role::Read) && Role::Admin.allows(Role::Ingest));
        assert!(Role::Ingest.allows(Role::Ingest) && !Role::Ingest.allows(Role::Read));
        assert!(!Role::Read.allows(Role::Admin));
    }
}
