//! Serves an axum [`Router`] over HTTP/1 so that nobody holds the server by holding connections.
//!
//! `axum::serve` sets no timer and no cap: a client that opens connections and never finishes
//! their headers (or leaves keep-alive connections idle, or stops reading its answers) holds each
//! one, and a file descriptor, for as long as it likes. Here:
//!
//! - each request's headers must arrive within `header_timeout_s` of the connection being ready
//!   for them — an idle keep-alive connection is closed after as long;
//! - a connection lives at most `max_lifetime_s`: then it is closed after the request in progress,
//!   and cut off `drain_s` later if that request has not finished (a client that stops reading);
//! - at most `max_connections` are open at once (beyond, new ones wait in the listen backlog and
//!   are taken as others close), and at most `max_connections_per_ip` from one address (beyond,
//!   closed at once: one client cannot take every connection).
//!
//! Request bodies are the handlers' to bound (in size and in time): they know what they expect.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use serde::{Deserialize, Serialize};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

/// How many connections a server keeps, and for how long (`[connections]` in the collector's
/// and the edge host's config files).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Connections open at once; beyond, new ones wait to be accepted.
    pub max_connections: usize,
    /// Connections open at once from one IP address (0: no cap). Leave it at 0 behind a proxy,
    /// where every client has the proxy's address.
    pub max_connections_per_ip: usize,
    /// Seconds a client has to send a request's headers once the connection is ready for them.
    pub header_timeout_s: u32,
    /// Seconds a connection may stay open; then it is closed after its request in progress.
    pub max_lifetime_s: u32,
    /// Seconds a request in progress may take to finish once its connection is to close (its
    /// lifetime is up, or the server is stopping).
    pub drain_s: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 512,
            max_connections_per_ip: 0,
            header_timeout_s: 10,
            max_lifetime_s: 600,
            drain_s: 30,
        }
    }
}

impl Limits {
    /// What the type cannot say: every bound above zero (but the per-address cap, which 0 turns off).
    pub fn validate(&self) -> Result<(), String> {
        if self.max_connections == 0 || self.header_timeout_s == 0 || self.max_lifetime_s == 0 {
            return Err("connections.max_connections, header_timeout_s and max_lifetime_s must be above 0".into());
        }
        Ok(())
    }

    fn seconds(s: u32) -> Duration {
        Duration::from_secs(s.into())
    }
}

/// Serves `router` on `listener` within `limits` until `shutdown` resolves; then stops
/// accepting, lets the requests in progress finish (at most `drain_s`) and returns.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // A permit per open connection (counted in a u32 when waiting for all of them).
    let slots = limits.max_connections.clamp(1, Semaphore::MAX_PERMITS.min(u32::MAX as usize));
    let open = Arc::new(Semaphore::new(slots));
    let shares = Shares::default();
    let (stop, stopping) = watch::channel(());
    let mut shutdown = pin!(shutdown);
    loop {
        let permit = tokio::select! {
            biased;
            () = &mut shutdown => break,
            permit = open.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    accept_error(e).await;
                    continue;
                }
            },
        };
        let Some(share) = shares.take(peer.ip(), limits.max_connections_per_ip) else {
            tracing::debug!(%peer, limit = limits.max_connections_per_ip, "closed a connection over the per-address cap");
            continue;
        };
        let held = Held { _permit: permit, _share: share };
        tokio::spawn(connection(stream, peer, router.clone(), limits, stopping.clone(), held));
    }
    drop(listener);
    drop(stop);
    // Every connection gives its permit back when it ends: all of them back means all done.
    let all = u32::try_from(slots).unwrap_or(u32::MAX);
    if tokio::time::timeout(Limits::seconds(limits.drain_s), open.acquire_many(all)).await.is_err() {
        tracing::warn!(drain_s = limits.drain_s, "stopped with requests still in progress after the drain time");
    }
    Ok(())
}

/// Errors of one connection (the peer went away) are the peer's; others (out of file
/// descriptors) are the process's: wait a little rather than spin.
async fn accept_error(e: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(e.kind(), ConnectionAborted | ConnectionRefused | ConnectionReset) {
        return;
    }
    tracing::error!(error = %e, "cannot accept connections; trying again in 1 s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// What an open connection holds until it ends.
struct Held {
    _permit: OwnedSemaphorePermit,
    _share: Share,
}

async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    limits: Limits,
    mut stopping: watch::Receiver<()>,
    _held: Held,
) {
    // Answers are small and latency matters more than packets.
    let _ = stream.set_nodelay(true);
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(Limits::seconds(limits.header_timeout_s));
    let mut conn = pin!(builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(router)));
    tokio::select! {
        result = conn.as_mut() => return finished(peer, result),
        _ = stopping.changed() => {}
        () = tokio::time::sleep(Limits::seconds(limits.max_lifetime_s)) => {}
    }
    conn.as_mut().graceful_shutdown();
    match tokio::time::timeout(Limits::seconds(limits.drain_s), conn).await {
        Ok(result) => finished(peer, result),
        Err(_) => tracing::debug!(%peer, "cut off a connection whose request did not finish in the drain time"),
    }
}

fn finished(peer: SocketAddr, result: Result<(), hyper::Error>) {
    if let Err(e) = result {
        // Header timeouts, resets, malformed requests: the peer's doing, worth a debug line.
        tracing::debug!(%peer, error = %e, "connection ended");
    }
}

/// Connections open per address.
#[derive(Debug, Default, Clone)]
struct Shares(Arc<Mutex<HashMap<IpAddr, usize>>>);

impl Shares {
    /// A share for `ip`, unless it holds `cap` already (0: no cap).
    fn take(&self, ip: IpAddr, cap: usize) -> Option<Share> {
        if cap == 0 {
            return Some(Share(None));
        }
        let mut open = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let count = open.entry(ip).or_default();
        if *count >= cap {
            return None;
        }
        *count += 1;
        Some(Share(Some((self.clone(), ip))))
    }
}

/// One connection's place in its address's count; given back when dropped.
struct Share(Option<(Shares, IpAddr)>);

impl Drop for Share {
    fn drop(&mut self) {
        let Some((shares, ip)) = self.0.take() else { return };
        let mut open = shares.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = open.get_mut(&ip) {
            *count -= 1;
            if *count == 0 {
                open.remove(&ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_cap_each_address_and_are_given_back() {
        let shares = Shares::default();
        let (a, b): (IpAddr, IpAddr) = ([10, 0, 0, 1].into(), [10, 0, 0, 2].into());
        let first = shares.take(a, 2).unwrap();
        let second = shares.take(a, 2).unwrap();
        assert!(shares.take(a, 2).is_none(), "a third from one address is over the cap");
        assert!(shares.take(b, 2).is_some(), "another address has its own count");
        drop(first);
        assert!(shares.take(a, 2).is_some(), "a closed connection gives its share back");
        drop(second);
        assert!(shares.take(a, 0).is_some(), "0: no cap");
        assert!(shares.0.lock().unwrap().values().all(|&n| n <= 2));
    }

    #[test]
    fn limits_must_be_above_zero() {
        assert!(Limits::default().validate().is_ok());
        let zero = Limits { header_timeout_s: 0, ..Limits::default() };
        assert!(zero.validate().unwrap_err().contains("header_timeout_s"));
    }
}
