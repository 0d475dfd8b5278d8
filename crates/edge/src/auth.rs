//! Bearer tokens per route group (`[auth]` in the config file): who may run the models, call the
//! modules, and see the modules' state. A group not listed is open (the health and server
//! metadata routes always are: load balancers probe them). The file holds SHA-256 digests, never
//! tokens: `sextant edge token` makes a token and prints its digest.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::refusal::Refusal;

/// `[auth]`: for each route group, the digests (`sha256:<64 hex>`) of the tokens it takes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// `/v2/models/…`: model metadata, readiness and inference.
    pub inference: Option<Vec<String>>,
    /// Every module's route.
    pub modules: Option<Vec<String>>,
    /// `GET /v2/modules`: each module's state and its last reload error.
    pub admin: Option<Vec<String>>,
}

impl AuthConfig {
    /// The groups, by name, as the config file and refusals name them.
    pub fn groups(&self) -> [(&'static str, Option<&[String]>); 3] {
        [
            ("inference", self.inference.as_deref()),
            ("modules", self.modules.as_deref()),
            ("admin", self.admin.as_deref()),
        ]
    }

    /// Every digest is `sha256:` and 64 lowercase hex digits (a token pasted here by mistake is
    /// refused, naming the fix, rather than never matching).
    pub fn validate(&self) -> Result<(), String> {
        for (group, digests) in self.groups() {
            for digest in digests.unwrap_or_default() {
                if parse_digest(digest).is_none() {
                    return Err(format!(
                        "auth.{group}: {:?} is not a token digest (`sha256:` and 64 hex digits; \
                         `sextant edge token` prints one)",
                        digest.chars().take(12).collect::<String>()
                    ));
                }
            }
        }
        Ok(())
    }

    /// The gate for `group`, if the file gives it tokens.
    pub(crate) fn gate(&self, group: &'static str) -> Option<Gate> {
        let (_, digests) = self.groups().into_iter().find(|(g, _)| *g == group)?;
        let digests = digests?.iter().filter_map(|d| parse_digest(d)).collect();
        Some(Gate { group, digests })
    }
}

fn parse_digest(text: &str) -> Option<[u8; 32]> {
    let hex = text.strip_prefix("sha256:")?;
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// A new random token (`sxe_` and 128 random bits in hex).
pub fn generate_token() -> String {
    format!("sxe_{}", telemetry_client::random_id())
}

/// What the config file holds for `token`.
pub fn digest(token: &str) -> String {
    let hash = Sha256::digest(token.as_bytes());
    format!("sha256:{}", hash.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

/// One route group's tokens, checked before its handlers run.
#[derive(Debug, Clone)]
pub(crate) struct Gate {
    group: &'static str,
    digests: Arc<[[u8; 32]]>,
}

impl Gate {
    fn allows(&self, token: &str) -> bool {
        let presented: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        self.digests.contains(&presented)
    }
}

/// The middleware: the request goes on with a token of the group, else 401 naming what is wanted.
pub(crate) async fn require(State(gate): State<Gate>, request: Request, next: Next) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let message = match presented {
        Some(token) if gate.allows(token.trim()) => return next.run(request).await,
        Some(_) => format!("the bearer token is not one of the {} tokens this host takes", gate.group),
        None => format!("this route ({} group) needs `Authorization: Bearer <token>`", gate.group),
    };
    let mut response = Refusal(StatusCode::UNAUTHORIZED, message).into_response();
    response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_matches_its_digest_and_nothing_else() {
        let token = generate_token();
        let config = AuthConfig { inference: Some(vec![digest(&token)]), ..AuthConfig::default() };
        config.validate().unwrap();
        let gate = config.gate("inference").unwrap();
        assert!(gate.allows(&token));
        assert!(!gate.allows(&generate_token()));
        assert!(config.gate("modules").is_none(), "a group not listed is open");
    }

    #[test]
    fn a_token_pasted_for_a_digest_is_refused_by_name() {
        let config = AuthConfig { admin: Some(vec![generate_token()]), ..AuthConfig::default() };
        let message = config.validate().unwrap_err();
        assert!(message.starts_with("auth.admin: \"sxe_") && message.contains("sextant edge token"), "{message}");
        assert!(!message.contains(&config.admin.unwrap()[0]), "the token is not echoed whole");
    }
}
