//! The TLS every native client uses: the telemetry shipper, the edge host's profile fetch, the
//! collector's webhooks and its PostgreSQL connections. rustls on the ring provider (one crypto
//! library, fast to build), TLS 1.2 and 1.3, certificates and host names verified against the
//! platform's roots (`rustls-platform-verifier`; on Linux the system bundle, or the file named by
//! `SSL_CERT_FILE`, the way to trust a private CA). There is no switch to skip verification.

use std::sync::{Arc, OnceLock};

#[derive(Debug, Clone, thiserror::Error)]
#[error("TLS is unavailable: {0}")]
pub struct TlsError(String);

impl TlsError {
    /// A client that could not be built with the configuration.
    pub fn client(e: impl std::fmt::Display) -> TlsError {
        TlsError(format!("cannot build an HTTPS client: {e}"))
    }
}

/// The client configuration, built once per process (loading the roots takes a moment).
pub fn client_config() -> Result<rustls::ClientConfig, TlsError> {
    static CONFIG: OnceLock<Result<rustls::ClientConfig, TlsError>> = OnceLock::new();
    CONFIG.get_or_init(build).clone()
}

fn build() -> Result<rustls::ClientConfig, TlsError> {
    // ring has no post-quantum key exchange (rustls 0.23.48 deprecates its provider for that);
    // aws-lc-rs has, and takes minutes to build on a small CI machine. Classical X25519 until then.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = rustls_platform_verifier::Verifier::new(provider.clone())
        .map_err(|e| TlsError(format!("cannot load the platform's certificate roots: {e}")))?;
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    Ok(config)
}

/// A reqwest client builder that speaks `https://` with [`client_config`]: the one way this
/// workspace builds an HTTP client (reqwest has no crypto provider of its own here, so
/// `reqwest::Client::new()` would panic; clippy refuses it).
pub fn http_client() -> Result<reqwest::ClientBuilder, TlsError> {
    #[allow(clippy::disallowed_methods)]
    let builder = reqwest::Client::builder();
    Ok(builder.tls_backend_preconfigured(client_config()?))
}

/// An HTTP client with no settings beyond [`http_client`]'s.
pub fn client() -> Result<reqwest::Client, TlsError> {
    http_client()?.build().map_err(TlsError::client)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_client_builds_with_the_platform_roots() {
        let client = super::client();
        assert!(client.is_ok(), "{client:?}");
    }
}
