//! Webhook delivery: every alert event (firing, resolved) is a stored delivery per webhook URL,
//! POSTed as JSON and retried with exponential backoff until a 2xx or the last attempt.
//!
//! A delivery is claimed by moving its next attempt one lease ahead before sending, so a crash
//! mid-send retries it after the lease, and two collector processes never send it at once. The
//! attempt is recorded only if the lease is still this claim's (a compare and set in the store).

use std::time::Duration;

use serde::Serialize;

use super::{AlertRow, AlertState, Attempt, Due};
use crate::store::Store;

/// How long a claimed delivery is reserved for the claimant.
const LEASE_MS: i64 = 30_000;
const TIMEOUT: Duration = Duration::from_secs(10);
const FIRST_RETRY_MS: i64 = 1_000;
const MAX_RETRY_MS: i64 = 300_000;
const BATCH: usize = 16;

/// The JSON a webhook receives.
#[derive(Debug, Serialize)]
pub struct Event<'a> {
    pub event: AlertState,
    pub alert: &'a AlertRow,
}

/// The wait before attempt `attempts + 1`: 1 s, 2 s, 4 s, ... capped at 5 minutes.
pub fn backoff_ms(attempts: i64) -> i64 {
    let doublings = u32::try_from(attempts.clamp(0, 20)).unwrap_or(20);
    FIRST_RETRY_MS.saturating_mul(1 << doublings).min(MAX_RETRY_MS)
}

/// Sends what is due; returns how many deliveries it attempted.
pub async fn deliver_due(
    store: &dyn Store,
    client: &reqwest::Client,
    max_attempts: u32,
    allow_private: bool,
    now_ms: i64,
) -> Result<usize, crate::StoreError> {
    let due = store.claim_deliveries(now_ms, LEASE_MS, BATCH).await?;
    let attempted = due.len();
    // All at once, each within TIMEOUT: the batch ends well inside the lease (sent one after
    // another, 16 slow receivers outlived it and another process sent them again).
    let mut sends = tokio::task::JoinSet::new();
    for delivery in due {
        let client = client.clone();
        sends.spawn(async move {
            let attempt = send(&client, &delivery, max_attempts, allow_private).await;
            (delivery, attempt)
        });
    }
    while let Some(sent) = sends.join_next().await {
        // A send that panicked keeps its claim: the lease runs out and it is sent again.
        let Ok((delivery, attempt)) = sent else { continue };
        match &attempt {
            Attempt::Delivered { .. } => {
                tracing::info!(url = %delivery.url, alert = delivery.alert.id, "webhook delivered")
            }
            Attempt::Retry { error, .. } => {
                tracing::warn!(url = %delivery.url, alert = delivery.alert.id, %error, "webhook failed; will retry")
            }
            Attempt::Failed { error } => {
                tracing::error!(url = %delivery.url, alert = delivery.alert.id, %error, "webhook failed; giving up")
            }
        }
        if !store.finish_delivery(&delivery, attempt).await? {
            tracing::warn!(url = %delivery.url, alert = delivery.alert.id, "the delivery's lease ran out before its \
                attempt was recorded; the process that claimed it since records it");
        }
    }
    Ok(attempted)
}

/// The client webhooks are sent with: no redirects (a receiver cannot bounce the collector's
/// POST to another host), each send within [`TIMEOUT`], names resolved to public addresses only
/// unless private ones are allowed ([`super::target`]).
fn client(allow_private: bool) -> Result<reqwest::Client, tls::TlsError> {
    let mut builder = tls::http_client()?.redirect(reqwest::redirect::Policy::none()).timeout(TIMEOUT);
    if !allow_private {
        builder = builder.dns_resolver(std::sync::Arc::new(super::target::PublicOnly));
    }
    builder.build().map_err(tls::TlsError::client)
}

async fn send(client: &reqwest::Client, delivery: &Due, max_attempts: u32, allow_private: bool) -> Attempt {
    // The config was checked at start; a delivery queued under another config is checked here.
    if let Err(error) = super::target::check_url(&delivery.url, allow_private) {
        return Attempt::Failed { error };
    }
    let body = match serde_json::to_vec(&Event { event: delivery.event, alert: &delivery.alert }) {
        Ok(body) => body,
        Err(e) => return Attempt::Failed { error: format!("cannot encode the event: {e}") },
    };
    let result = client.post(&delivery.url).header("content-type", "application/json").body(body).send().await;
    let error = match result {
        Ok(response) if response.status().is_success() => return Attempt::Delivered { at_ms: crate::now_ms() },
        Ok(response) => format!("HTTP {}", response.status()),
        Err(e) => format!("{e}"),
    };
    let attempts = delivery.attempts + 1;
    if attempts >= i64::from(max_attempts) {
        Attempt::Failed { error: format!("{error} (attempt {attempts} of {max_attempts})") }
    } else {
        Attempt::Retry { next_attempt_ms: crate::now_ms() + backoff_ms(delivery.attempts), error }
    }
}

/// Delivers webhooks every half second until the collector stops.
pub async fn run(collector: std::sync::Arc<crate::Collector>) {
    let monitoring = &collector.config().monitoring;
    let (allow_private, max_attempts) = (monitoring.webhook_allow_private, monitoring.webhook_max_attempts.max(1));
    // (The configuration was checked at start: this fails only if the platform changed since.)
    let client = loop {
        match client(allow_private) {
            Ok(client) => break client,
            Err(e) => tracing::error!(error = %e, "cannot send webhooks; deliveries wait, trying again in a minute"),
        }
        tokio::time::sleep(Duration::from_secs(60)).await;
    };
    loop {
        match deliver_due(collector.store(), &client, max_attempts, allow_private, crate::now_ms()).await {
            // More may be waiting: go on at once.
            Ok(n) if n > 0 => continue,
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "webhook delivery pass failed"),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn a_receiver_cannot_redirect_the_post_elsewhere() {
        let elsewhere = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let receiver = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (to, url) = (elsewhere.local_addr().unwrap(), format!("http://{}/hook", receiver.local_addr().unwrap()));
        tokio::spawn(async move {
            let (mut conn, _) = receiver.accept().await.unwrap();
            let mut request = [0u8; 4096];
            let _ = conn.read(&mut request).await;
            let answer =
                format!("HTTP/1.1 307 Temporary Redirect\r\nlocation: http://{to}/\r\ncontent-length: 0\r\n\r\n");
            conn.write_all(answer.as_bytes()).await.unwrap();
        });
        let alert = AlertRow {
            id: 1,
            rule: "r".into(),
            model: "m".into(),
            version: "1".into(),
            subject: String::new(),
            metric: "accuracy".into(),
            severity: "critical".into(),
            state: AlertState::Firing,
            value: None,
            threshold: None,
            message: String::new(),
            window_start_ms: 0,
            started_ms: 0,
            resolved_ms: None,
            deliveries: Vec::new(),
        };
        let due = Due { id: 1, event: AlertState::Firing, url, attempts: 0, lease_until_ms: 0, alert };
        let refused = send(&client(false).unwrap(), &due, 3, false).await;
        assert!(
            matches!(&refused, Attempt::Failed { error } if error.contains("webhook_allow_private")),
            "a loopback receiver is refused unless allowed: {refused:?}"
        );
        let attempt = send(&client(true).unwrap(), &due, 3, true).await;
        assert!(matches!(&attempt, Attempt::Retry { error, .. } if error.contains("307")), "{attempt:?}");
        let followed = tokio::time::timeout(Duration::from_millis(300), elsewhere.accept()).await;
        assert!(followed.is_err(), "the redirect was followed");
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let waits: Vec<i64> = (0..4).map(super::backoff_ms).collect();
        assert_eq!(waits, [1_000, 2_000, 4_000, 8_000]);
        assert_eq!(super::backoff_ms(40), 300_000);
    }
}
