//! One connected UDP socket per relay, so that a relay that is not there
//! can be told apart: the kernel reports the ICMP "port unreachable" a
//! down relay's host answers with as ECONNREFUSED on that relay's socket
//! (an unconnected socket never hears of it), and a host it cannot route to
//! as EHOSTUNREACH / ENETUNREACH.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::time::Duration;

use anyhow::Context;
use shoal_proto::Time;

/// A relay refusing for this long, with nothing getting through to any
/// other relay, ends the publish with an error.
pub(super) const GIVE_UP: Duration = Duration::from_secs(3);

/// How recent a refusal must be for the relay to count as refusing now.
const RECENT: Duration = Duration::from_millis(1500);

#[derive(Debug)]
struct Link {
    addr: SocketAddr,
    socket: UdpSocket,
    /// Since when it has been refusing without a break.
    refusing_since: Option<Time>,
    last_refusal: Option<Time>,
    last_error: Option<io::Error>,
}

/// The sockets, one per relay.
#[derive(Debug)]
pub(super) struct Links(Vec<Link>);

impl Links {
    pub(super) fn open(relays: &[SocketAddr]) -> anyhow::Result<Self> {
        let mut links = Vec::new();
        for &addr in relays {
            let local = if addr.is_ipv4() {
                SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0))
            } else {
                SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0))
            };
            let socket = UdpSocket::bind(local).context("cannot open a UDP socket")?;
            socket
                .connect(addr)
                .with_context(|| format!("--relay {addr}: cannot send there"))?;
            links.push(Link {
                addr,
                socket,
                refusing_since: None,
                last_refusal: None,
                last_error: None,
            });
        }
        Ok(Self(links))
    }

    /// Sends `payload` to the relay `dst`; returns whether it left.
    pub(super) fn send(&mut self, now: Time, dst: SocketAddr, payload: &[u8]) -> bool {
        let Some(link) = self.0.iter_mut().find(|l| l.addr == dst) else {
            return false;
        };
        match link.socket.send(payload) {
            Ok(_) => {
                // A refused relay's socket alternates (the error is reported
                // once per ICMP), so only a quiet spell clears the state.
                if link
                    .last_refusal
                    .is_none_or(|t| now.saturating_since(t) > RECENT)
                {
                    link.refusing_since = None;
                }
                true
            }
            Err(e) => {
                if refusal(&e) {
                    link.refusing_since.get_or_insert(now);
                    link.last_refusal = Some(now);
                    link.last_error = Some(e);
                }
                false
            }
        }
    }

    /// If every relay has been refusing for [`GIVE_UP`], the error that
    /// says so.
    pub(super) fn all_refusing(&self, now: Time) -> Option<String> {
        let all = self.0.iter().all(|l| {
            l.refusing_since
                .is_some_and(|t| now.saturating_since(t) >= GIVE_UP)
                && l.last_refusal
                    .is_some_and(|t| now.saturating_since(t) <= RECENT)
        });
        (all && !self.0.is_empty()).then(|| self.message())
    }

    fn message(&self) -> String {
        let list: Vec<String> = self
            .0
            .iter()
            .map(|l| match &l.last_error {
                Some(e) => format!("{} ({e})", l.addr),
                None => l.addr.to_string(),
            })
            .collect();
        format!(
            "no relay takes the stream: {}; is shoal relay running there? Start one with shoal relay, or fix --relay",
            list.join(", ")
        )
    }

    /// At the end of an input shorter than [`GIVE_UP`]: the error, if
    /// every relay was still refusing.
    pub(super) fn refused_at_end(&self, now: Time) -> Option<String> {
        let all = self.0.iter().all(|l| {
            l.last_refusal
                .is_some_and(|t| now.saturating_since(t) <= RECENT)
        });
        (all && !self.0.is_empty()).then(|| self.message())
    }
}

fn refusal(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ECONNREFUSED | libc::EHOSTUNREACH | libc::ENETUNREACH)
    )
}
