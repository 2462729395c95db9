//! Where to watch: each relay the stream goes to is asked for its web face
//! (QUERY, answered by ABOUT, SPEC §6.14 and §6.15), and the watch URL of
//! each that has one is printed, so that whoever publishes can open it or
//! pass it on.
//!
//! One short-lived thread per relay, with a socket of its own: the links'
//! sockets stay as they are (a receive there would take the ICMP errors by
//! which [`super::links`] tells a relay is down). A relay that does not
//! answer within [`TRIES`] seconds (down, older, or dropping the QUERY) gets
//! no line; one that answers without a web face gets one saying so.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::thread;
use std::time::{Duration, Instant};

use shoal_proto::StreamId;
use shoal_proto::wire::{About, Message, QUERY_LEN, Query};

use crate::roles::udp::{random_seed, wildcard_for};

/// QUERYs sent to a relay before giving up, one a second.
const TRIES: u32 = 5;
/// Time between QUERYs.
const EVERY: Duration = Duration::from_secs(1);

/// Asks every relay in `relays` (as the user wrote it, and resolved) in the
/// background, printing a line per answer to stderr.
pub(super) fn show(relays: &[(String, SocketAddr)], stream: StreamId) {
    for (name, addr) in relays {
        let (owned, addr) = (name.clone(), *addr);
        let spawned = thread::Builder::new()
            .name("shoal-pages".into())
            .spawn(move || {
                if let Some(line) = ask(&owned, addr, stream) {
                    eprintln!("{line}");
                }
            });
        if let Err(e) = spawned {
            eprintln!("shoal publish: cannot ask relay {name} for its page: {e}");
        }
    }
}

/// The line to print for relay `name` at `addr`, once it answered; `None`
/// if it never did.
fn ask(name: &str, addr: SocketAddr, stream: StreamId) -> Option<String> {
    let about = query(addr).ok().flatten()?;
    Some(match watch_url(name, &about, stream) {
        Some(url) => format!("shoal: watch in a browser at {url} (relay {name})"),
        None => format!(
            "shoal: relay {name} has no web page (start it with --http ADDR to let people watch in a browser)"
        ),
    })
}

/// What the relay answered: its port and page, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Answer {
    http_port: u16,
    /// `None` when empty or not safe to show ([`About::page_url`]).
    page: Option<String>,
}

/// Sends QUERYs to `addr` until an ABOUT with their nonce comes back from
/// it, for at most [`TRIES`] seconds.
fn query(addr: SocketAddr) -> io::Result<Option<Answer>> {
    let socket = UdpSocket::bind(wildcard_for(addr))?;
    socket.connect(addr)?;
    let nonce = random_seed();
    let mut datagram = [0; QUERY_LEN];
    let len = Message::Query(Query { nonce })
        .emit(&mut datagram)
        .map_err(|e| io::Error::other(e.to_string()))?;
    let mut buf = [0; 512];
    for _ in 0..TRIES {
        let deadline = Instant::now() + EVERY;
        // A relay that is down makes the send or the receive fail at once;
        // the next try waits out the second either way.
        let _ = socket.send(&datagram[..len]);
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            if left.is_zero() {
                break;
            }
            socket.set_read_timeout(Some(left))?;
            match socket.recv(&mut buf) {
                Ok(n) => {
                    if let Ok(about) = About::parse(&buf[..n])
                        && about.nonce == nonce
                    {
                        return Ok(Some(Answer {
                            http_port: about.http_port,
                            page: about.page_url().map(str::to_owned),
                        }));
                    }
                }
                Err(e) if is_timeout(&e) => break,
                Err(_) => thread::sleep(left),
            }
        }
    }
    Ok(None)
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// The stream's watch page at the relay the user named `name`: the base URL
/// it announced, or else `http://<name's host>:<http_port>/`, then
/// `watch/<stream id>` (SPEC §6.15). `None` when it has no web face.
fn watch_url(name: &str, answer: &Answer, stream: StreamId) -> Option<String> {
    let base = match &answer.page {
        Some(page) => page.clone(),
        None if answer.http_port == 0 => return None,
        None => format!("http://{}:{}/", host_of(name), answer.http_port),
    };
    Some(format!("{base}watch/{stream}"))
}

/// The host part of `HOST:PORT` as the user wrote it (a name stays a name,
/// `[::1]` keeps its brackets), for a URL on the same host.
fn host_of(name: &str) -> &str {
    name.rsplit_once(':').map_or(name, |(host, _)| host)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream() -> StreamId {
        StreamId([0xab; 32])
    }

    #[test]
    fn the_url_is_the_announced_page_or_the_relay_host_and_port() {
        let id = stream().to_string();
        let named = Answer {
            http_port: 8080,
            page: Some("https://live.example.com/".into()),
        };
        assert_eq!(
            watch_url("10.0.0.1:7400", &named, stream()),
            Some(format!("https://live.example.com/watch/{id}"))
        );
        let port_only = Answer {
            http_port: 8080,
            page: None,
        };
        assert_eq!(
            watch_url("relay.example:7400", &port_only, stream()),
            Some(format!("http://relay.example:8080/watch/{id}"))
        );
        assert_eq!(
            watch_url("[::1]:7400", &port_only, stream()),
            Some(format!("http://[::1]:8080/watch/{id}"))
        );
        let none = Answer {
            http_port: 0,
            page: None,
        };
        assert_eq!(watch_url("10.0.0.1:7400", &none, stream()), None);
    }

    #[test]
    fn a_relay_is_asked_and_its_answer_read() {
        let relay = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let addr = relay.local_addr().expect("addr");
        let answering = thread::spawn(move || {
            let mut buf = [0; 512];
            let (n, from) = relay.recv_from(&mut buf).expect("a QUERY");
            let q = Query::parse(&buf[..n]).expect("parses");
            // A stale answer first, which must be ignored.
            let mut out = [0; 256];
            for nonce in [q.nonce ^ 1, q.nonce] {
                let about = Message::About(About {
                    nonce,
                    http_port: 8080,
                    page: b"",
                });
                let len = about.emit(&mut out).expect("fits");
                relay.send_to(&out[..len], from).expect("send");
            }
        });
        let line = ask(&addr.to_string(), addr, stream()).expect("an answer");
        answering.join().expect("answered");
        assert_eq!(
            line,
            format!(
                "shoal: watch in a browser at http://127.0.0.1:8080/watch/{} (relay {addr})",
                stream()
            )
        );
    }
}
