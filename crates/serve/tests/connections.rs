//! The bounds against a real listener and raw sockets: stalled headers and idle keep-alive
//! connections are closed, the caps hold, and honest requests keep being answered.

// Tests unwrap: a panic is a failure with a message.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use serve::Limits;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: test\r\n\r\n";

struct Server {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

async fn start(limits: Limits) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = Router::new().route("/", get(|| async { "ok" }));
    let (stop, stopped) = oneshot::channel();
    let task = tokio::spawn(serve::serve(listener, router, limits, async {
        let _ = stopped.await;
    }));
    Server { addr, stop: Some(stop), task }
}

fn quick(header_timeout_s: u32) -> Limits {
    Limits { header_timeout_s, drain_s: 1, ..Limits::default() }
}

/// Sends a request on `stream` and reads one answer (its headers and the 2-byte body).
async fn ask(stream: &mut TcpStream) -> String {
    stream.write_all(REQUEST).await.unwrap();
    let mut answer = Vec::new();
    let mut buf = [0; 1024];
    while !answer.ends_with(b"ok") {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf)).await.expect("an answer").unwrap();
        assert!(n > 0, "closed before answering: {:?}", String::from_utf8_lossy(&answer));
        answer.extend_from_slice(&buf[..n]);
    }
    String::from_utf8(answer).unwrap()
}

/// How long until the server closes `stream` (reads hit end of file or a reset).
async fn closed_after(stream: &mut TcpStream, at_most: Duration) -> Duration {
    let started = Instant::now();
    let mut buf = [0; 1024];
    loop {
        match tokio::time::timeout(at_most, stream.read(&mut buf)).await {
            Err(_) => panic!("still open after {at_most:?}"),
            Ok(Ok(0) | Err(_)) => return started.elapsed(),
            Ok(Ok(_)) => {} // hyper may answer 408 first
        }
    }
}

#[tokio::test]
async fn stalled_headers_are_cut_off_while_honest_requests_are_answered() {
    let server = start(quick(1)).await;
    let mut stalled = Vec::new();
    for _ in 0..50 {
        let mut s = TcpStream::connect(server.addr).await.unwrap();
        s.write_all(b"POST / HTTP/1.1\r\nHost: test\r\nX-Slow: ").await.unwrap();
        stalled.push(s);
    }
    let mut honest = TcpStream::connect(server.addr).await.unwrap();
    let answered = Instant::now();
    assert!(ask(&mut honest).await.starts_with("HTTP/1.1 200"));
    assert!(answered.elapsed() < Duration::from_secs(1), "answered beside 50 stalled connections");
    for s in &mut stalled {
        let after = closed_after(s, Duration::from_secs(5)).await;
        assert!(after < Duration::from_secs(3), "closed after the 1 s header timeout, not {after:?}");
    }
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_header_timeout() {
    let server = start(quick(1)).await;
    let mut client = TcpStream::connect(server.addr).await.unwrap();
    ask(&mut client).await;
    ask(&mut client).await; // kept alive between requests…
    let after = closed_after(&mut client, Duration::from_secs(5)).await; // …but not idle forever
    assert!(after >= Duration::from_millis(900) && after < Duration::from_secs(3), "{after:?}");
}

#[tokio::test]
async fn beyond_max_connections_new_ones_wait_until_others_close() {
    let server = start(Limits { max_connections: 2, ..quick(1) }).await;
    let mut held = [TcpStream::connect(server.addr).await.unwrap(), TcpStream::connect(server.addr).await.unwrap()];
    for s in &mut held {
        s.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut third = TcpStream::connect(server.addr).await.unwrap(); // in the backlog
    let started = Instant::now();
    assert!(ask(&mut third).await.starts_with("HTTP/1.1 200"), "served once the stalled ones are cut off");
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(700), "waited for a free connection, {waited:?}");
}

#[tokio::test]
async fn one_address_cannot_take_more_than_its_share() {
    let server = start(Limits { max_connections_per_ip: 2, ..quick(5) }).await;
    let mut first = TcpStream::connect(server.addr).await.unwrap();
    let mut second = TcpStream::connect(server.addr).await.unwrap();
    ask(&mut first).await;
    ask(&mut second).await;
    let mut third = TcpStream::connect(server.addr).await.unwrap();
    let after = closed_after(&mut third, Duration::from_secs(2)).await;
    assert!(after < Duration::from_secs(1), "over the cap: closed at once, {after:?}");
    drop(first);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut again = TcpStream::connect(server.addr).await.unwrap();
    assert!(ask(&mut again).await.starts_with("HTTP/1.1 200"), "a closed connection gives its share back");
}

#[tokio::test]
async fn a_connection_past_its_lifetime_is_closed_after_its_answer() {
    let server = start(Limits { max_lifetime_s: 1, ..quick(30) }).await;
    let mut client = TcpStream::connect(server.addr).await.unwrap();
    ask(&mut client).await;
    let after = closed_after(&mut client, Duration::from_secs(5)).await;
    assert!(after < Duration::from_secs(3), "closed at its 1 s lifetime, not at the 30 s header timeout: {after:?}");
}

#[tokio::test]
async fn shutdown_closes_idle_connections_and_returns() {
    let mut server = start(quick(30)).await;
    let mut idle = TcpStream::connect(server.addr).await.unwrap();
    ask(&mut idle).await;
    let started = Instant::now();
    let _ = server.stop.take().unwrap().send(());
    tokio::time::timeout(Duration::from_secs(5), &mut server.task).await.expect("serve returns").unwrap().unwrap();
    assert!(started.elapsed() < Duration::from_secs(1), "an idle connection does not hold the shutdown");
    closed_after(&mut idle, Duration::from_secs(2)).await;
    assert!(TcpStream::connect(server.addr).await.is_err(), "no longer accepting");
}
