//! Who may call a route: the key a request presents, looked up by digest (cached briefly).

use std::time::Instant;

use axum::http::{HeaderMap, StatusCode, header};

use super::error::ApiError;
use super::{Collector, KEY_CACHE_TTL};
use crate::keys::{self, KeyInfo, Role};

impl Collector {
    /// The key a request presents, if it may do what one of the `needed` roles allows.
    pub(super) async fn authorize(&self, headers: &HeaderMap, needed: &[Role]) -> Result<KeyInfo, ApiError> {
        let token = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        self.authorize_token(token, needed).await
    }

    pub(super) async fn authorize_token(&self, token: Option<&str>, needed: &[Role]) -> Result<KeyInfo, ApiError> {
        let token = token.ok_or_else(|| {
            self.metrics.refused("unauthorized");
            ApiError::new(StatusCode::UNAUTHORIZED, "missing_key", "send an API key as `Authorization: Bearer …`")
        })?;
        let digest = keys::digest(token);
        let cached = self.key_cache.read().ok().and_then(|cache| {
            cache.get(&digest).filter(|(_, at)| at.elapsed() < KEY_CACHE_TTL).map(|(key, _)| key.clone())
        });
        let key = match cached {
            Some(key) => Some(key),
            None => {
                let found = self.store.find_key(digest.clone()).await.map_err(ApiError::storage)?;
                if let (Some(key), Ok(mut cache)) = (&found, self.key_cache.write()) {
                    cache.insert(digest, (key.clone(), Instant::now()));
                }
                found
            }
        };
        let Some(key) = key else {
            self.metrics.refused("unauthorized");
            return Err(ApiError::new(StatusCode::UNAUTHORIZED, "unknown_key", "the API key is unknown or revoked"));
        };
        if !needed.iter().any(|&role| key.role.allows(role)) {
            self.metrics.refused("forbidden");
            let needed: Vec<&str> = needed.iter().map(|r| r.as_str()).collect();
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "wrong_role",
                format!("this needs a {} key; key {:?} is a {} key", needed.join(" or "), key.name, key.role.as_str()),
            ));
        }
        Ok(key)
    }
}
