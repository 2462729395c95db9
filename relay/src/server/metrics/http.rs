//! A tiny HTTP/1.1 responder for `GET /metrics`, on one thread.
//!
//! Connections are answered one at a time and closed after one response:
//! a scrape every few seconds needs no more. Each request head must arrive
//! whole within [`REQUEST_TIME`] and [`MAX_REQUEST`] bytes, so a slow or
//! hostile client holds the endpoint for at most that long.

use std::io::{self, Read as _, Write as _};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::MetricsHub;

/// Longest request head read, in bytes; longer requests are closed.
const MAX_REQUEST: usize = 8 * 1024;

/// Time a client has to send its request head, and to take the response.
const REQUEST_TIME: Duration = Duration::from_secs(2);

const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Serves `hub` as Prometheus text at `GET /metrics` on `addr` (port 0
/// picks a free port) from a thread of its own, named `shoal-metrics`.
/// Returns the bound address and the thread, which runs until the process
/// exits. Other paths get 404, other methods 405, unreadable requests 400
/// or a closed connection.
pub fn serve(addr: SocketAddr, hub: MetricsHub) -> io::Result<(SocketAddr, JoinHandle<()>)> {
    let listener = TcpListener::bind(addr)?;
    let bound = listener.local_addr()?;
    let thread = thread::Builder::new()
        .name("shoal-metrics".to_owned())
        .spawn(move || accept_loop(&listener, &hub))?;
    Ok((bound, thread))
}

fn accept_loop(listener: &TcpListener, hub: &MetricsHub) {
    loop {
        match listener.accept() {
            Ok((stream, peer)) => {
                // A bug in rendering must not take the endpoint down.
                match catch_unwind(AssertUnwindSafe(|| answer(stream, hub))) {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => tracing::debug!(%peer, "metrics request failed: {e}"),
                    Err(_) => tracing::error!(%peer, "metrics request panicked"),
                }
            }
            Err(e) => {
                // Out of descriptors and the like: back off rather than spin.
                tracing::debug!("metrics accept failed: {e}");
                thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

fn answer(mut stream: TcpStream, hub: &MetricsHub) -> io::Result<()> {
    stream.set_write_timeout(Some(REQUEST_TIME))?;
    let Some(head) = read_head(&mut stream)? else {
        return Ok(());
    };
    let response = respond(&head, hub);
    stream.write_all(&response)?;
    stream.flush()?;
    stream.shutdown(Shutdown::Write)
}

/// The request head (up to the blank line), or `None` if the client
/// closed, took too long or sent too much.
fn read_head(stream: &mut TcpStream) -> io::Result<Option<Vec<u8>>> {
    let deadline = Instant::now() + REQUEST_TIME;
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(None);
        }
        stream.set_read_timeout(Some(left))?;
        let n = match stream.read(&mut buf) {
            Ok(0) => return Ok(None),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        head.extend_from_slice(buf.get(..n).unwrap_or_default());
        if let Some(end) = head_end(&head) {
            head.truncate(end);
            return Ok(Some(head));
        }
        if head.len() > MAX_REQUEST {
            return Ok(None);
        }
    }
}

/// Where the head ends: after the first empty line (CRLF or bare LF).
fn head_end(bytes: &[u8]) -> Option<usize> {
    let crlf = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4);
    let lf = bytes.windows(2).position(|w| w == b"\n\n").map(|i| i + 2);
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The whole response to one request head.
fn respond(head: &[u8], hub: &MetricsHub) -> Vec<u8> {
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = std::str::from_utf8(line).unwrap_or_default();
    let mut parts = line.split_ascii_whitespace();
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return response("400 Bad Request", "text/plain", "bad request\n", true);
    };
    if !version.starts_with("HTTP/1.") {
        return response("400 Bad Request", "text/plain", "bad request\n", true);
    }
    let path = target.split('?').next().unwrap_or_default();
    if path != "/metrics" {
        return response(
            "404 Not Found",
            "text/plain",
            "not found; metrics are at /metrics\n",
            true,
        );
    }
    match method {
        "GET" => response("200 OK", CONTENT_TYPE, &hub.render(), true),
        "HEAD" => response("200 OK", CONTENT_TYPE, &hub.render(), false),
        _ => response(
            "405 Method Not Allowed\r\nAllow: GET, HEAD",
            "text/plain",
            "use GET\n",
            true,
        ),
    }
}

fn response(status: &str, content_type: &str, body: &str, with_body: bool) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if with_body {
        out.extend_from_slice(body.as_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::tests::snapshot;
    use super::*;

    fn exchange(addr: SocketAddr, request: &[u8]) -> String {
        let mut stream = TcpStream::connect(addr).expect("connects");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout set");
        stream.write_all(request).expect("request sent");
        let mut reply = Vec::new();
        // A reset after an unread request is also a closed connection.
        let _ = stream.read_to_end(&mut reply);
        String::from_utf8(reply).expect("utf-8 reply")
    }

    fn server() -> SocketAddr {
        let hub = MetricsHub::new(2);
        let mut snap = snapshot(1);
        snap.relay.forwarded = 42;
        hub.publish(snap);
        let (addr, _thread) = serve("127.0.0.1:0".parse().expect("literal"), hub).expect("serves");
        assert_ne!(addr.port(), 0);
        addr
    }

    #[test]
    fn get_metrics_returns_the_metrics() {
        let addr = server();
        let reply = exchange(
            addr,
            b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nAccept: */*\r\n\r\n",
        );
        let (head, body) = reply.split_once("\r\n\r\n").expect("a head and a body");
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        assert!(
            head.contains("Content-Type: text/plain; version=0.0.4"),
            "{head}"
        );
        assert!(
            head.contains(&format!("Content-Length: {}\r\n", body.len())),
            "{head}"
        );
        assert!(
            body.contains("shoal_relay_forwarded_total{worker=\"1\"} 42\n"),
            "{body}"
        );
        assert!(
            body.contains("# TYPE shoal_relay_forwarded_total counter\n"),
            "{body}"
        );

        // The server keeps answering, one connection after another.
        let again = exchange(addr, b"GET /metrics?x=1 HTTP/1.0\n\n");
        assert!(again.starts_with("HTTP/1.1 200 OK\r\n"), "{again}");
    }

    #[test]
    fn other_requests_are_refused() {
        let addr = server();
        let reply = exchange(addr, b"GET /other HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(reply.starts_with("HTTP/1.1 404 Not Found\r\n"), "{reply}");
        let reply = exchange(addr, b"POST /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(
            reply.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"),
            "{reply}"
        );
        let reply = exchange(addr, b"HEAD /metrics HTTP/1.1\r\n\r\n");
        assert!(
            reply.starts_with("HTTP/1.1 200 OK\r\n") && reply.ends_with("\r\n\r\n"),
            "{reply}"
        );
        let reply = exchange(addr, b"nonsense\r\n\r\n");
        assert!(reply.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{reply}");
        let reply = exchange(addr, &[0xff; 64 * 1024]);
        assert_eq!(reply, "", "an oversized request is closed unanswered");
        let reply = exchange(addr, b"GET /metrics HTTP/1.1\r\n\r\n");
        assert!(
            reply.starts_with("HTTP/1.1 200 OK\r\n"),
            "still serving: {reply}"
        );
    }

    #[test]
    fn request_heads_end_at_the_first_blank_line() {
        assert_eq!(head_end(b"GET / HTTP/1.1\r\n\r\nbody"), Some(18));
        assert_eq!(head_end(b"GET / HTTP/1.1\n\n"), Some(16));
        assert_eq!(head_end(b"GET / HTTP/1.1\r\n"), None);
    }
}
