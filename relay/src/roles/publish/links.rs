//! One connected UDP socket per relay, and what to do while a relay is not
//! there.
//!
//! A connected socket lets a missing relay be told apart: the kernel
//! reports the ICMP "port unreachable" a down relay's host answers with as
//! ECONNREFUSED on that relay's socket (an unconnected socket never hears
//! of it), and a host it cannot route to as EHOSTUNREACH / ENETUNREACH.
//!
//! A live broadcast outlives its relays: a refusing relay is never a
//! reason to stop while input flows. Its datagrams are dropped, not queued
//! (a relay that comes back wants the live edge, not what it missed), and
//! one of them is sent as a probe after a backoff that doubles from
//! [`FIRST_RETRY`] to [`LAST_RETRY`]. A probe that leaves reopens the flow
//! at once (so a relay that is back gets the stream within [`LAST_RETRY`]);
//! if the relay is still down, the next send reports it and the backoff
//! goes on. Once a second the caller prints [`Links::outages`].

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::time::Duration;

use anyhow::Context;
use shoal_proto::Time;

/// The first wait before a refusing relay is tried again.
const FIRST_RETRY: Duration = Duration::from_millis(100);

/// The longest wait between tries: a relay that comes back gets the stream
/// within this.
pub(super) const LAST_RETRY: Duration = Duration::from_secs(1);

/// A relay that has taken datagrams for this long without a refusal is
/// back: its outage is over and its backoff starts again from the first.
const SETTLED: Duration = Duration::from_millis(1500);

/// An outage is reported once it has lasted this long: a lone refusal (a
/// relay restarting) is not worth a line.
const WORTH_SAYING: Duration = Duration::from_secs(1);

#[derive(Debug)]
struct Link {
    addr: SocketAddr,
    socket: UdpSocket,
    /// The current outage, if the relay has refused and not yet settled.
    outage: Option<Outage>,
    /// The wait before the next try, after the next refusal.
    backoff: Duration,
    /// Datagrams dropped because the relay was refusing.
    dropped: u64,
}

#[derive(Debug)]
struct Outage {
    since: Time,
    last_refusal: Time,
    /// No datagram goes to the relay before this: the backoff.
    retry_at: Option<Time>,
    error: io::Error,
    /// Whether it was reported as down, so its end is reported too.
    reported: bool,
}

/// What became of one datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fate {
    /// It left.
    Left,
    /// Its relay was refusing and not due for a try: dropped.
    Dropped,
    /// The send failed (the relay refused it, or another error).
    Failed,
}

/// A relay's state as the once-a-second report tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Report {
    /// Down for this long and still refusing.
    Down(SocketAddr, Duration),
    /// Back after an outage this long.
    Back(SocketAddr, Duration),
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
                outage: None,
                backoff: FIRST_RETRY,
                dropped: 0,
            });
        }
        Ok(Self(links))
    }

    /// Sends `payload` to the relay `dst`, unless it is refusing and not
    /// due for a try.
    pub(super) fn send(&mut self, now: Time, dst: SocketAddr, payload: &[u8]) -> Fate {
        let Some(link) = self.0.iter_mut().find(|l| l.addr == dst) else {
            return Fate::Failed;
        };
        link.send(now, payload)
    }

    /// Datagrams dropped, over all relays, because they were refusing.
    pub(super) fn dropped(&self) -> u64 {
        self.0.iter().map(|l| l.dropped).sum()
    }

    /// Each relay down for [`WORTH_SAYING`] or more, and each one just
    /// back from such an outage (once).
    pub(super) fn outages(&mut self, now: Time) -> Vec<Report> {
        let mut out = Vec::new();
        for link in &mut self.0 {
            let Some(outage) = &mut link.outage else {
                continue;
            };
            if now.saturating_since(outage.last_refusal) >= SETTLED {
                if outage.reported {
                    let lasted = outage.last_refusal.saturating_since(outage.since);
                    out.push(Report::Back(link.addr, lasted));
                }
                link.outage = None;
                link.backoff = FIRST_RETRY;
            } else if now.saturating_since(outage.since) >= WORTH_SAYING {
                outage.reported = true;
                out.push(Report::Down(link.addr, now.saturating_since(outage.since)));
            }
        }
        out
    }

    /// At the end of input: the error, if every relay was refusing then,
    /// so a broadcast that reached no one does not end in success.
    pub(super) fn refused_at_end(&self, now: Time) -> Option<String> {
        let all = self.0.iter().all(|l| {
            l.outage
                .as_ref()
                .is_some_and(|o| now.saturating_since(o.last_refusal) < SETTLED)
        });
        (all && !self.0.is_empty()).then(|| self.message())
    }

    fn message(&self) -> String {
        let list: Vec<String> = self
            .0
            .iter()
            .map(|l| match &l.outage {
                Some(o) => format!("{} ({})", l.addr, o.error),
                None => l.addr.to_string(),
            })
            .collect();
        format!(
            "no relay took the end of the stream: {}; is shoal relay running there? Start one with shoal relay, or fix --relay",
            list.join(", ")
        )
    }
}

impl Link {
    fn send(&mut self, now: Time, payload: &[u8]) -> Fate {
        if let Some(o) = &self.outage
            && o.retry_at.is_some_and(|t| now < t)
        {
            self.dropped += 1;
            return Fate::Dropped;
        }
        match self.socket.send(payload) {
            Ok(_) => {
                // A probe that left reopens the flow; if the relay is still
                // down, the next send says so.
                if let Some(o) = &mut self.outage {
                    o.retry_at = None;
                }
                Fate::Left
            }
            Err(e) if refusal(&e) => {
                let retry_at = Some(now + self.backoff);
                self.backoff = (self.backoff * 2).min(LAST_RETRY);
                match &mut self.outage {
                    Some(o) => {
                        o.last_refusal = now;
                        o.retry_at = retry_at;
                        o.error = e;
                    }
                    None => {
                        self.outage = Some(Outage {
                            since: now,
                            last_refusal: now,
                            retry_at,
                            error: e,
                            reported: false,
                        });
                    }
                }
                Fate::Failed
            }
            Err(_) => Fate::Failed,
        }
    }
}

fn refusal(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ECONNREFUSED | libc::EHOSTUNREACH | libc::ENETUNREACH)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(ms: u64) -> Time {
        Time::from_micros(1_000_000_000 + ms * 1000)
    }

    /// A port nothing listens on: loopback answers with ICMP at once.
    fn closed_port() -> SocketAddr {
        let s = UdpSocket::bind("127.0.0.1:0").expect("bind");
        s.local_addr().expect("addr")
    }

    /// Sends until the kernel reports the refusal (the ICMP of an earlier
    /// datagram), a bounded number of times.
    fn until_refused(links: &mut Links, at: Time, dst: SocketAddr) {
        for _ in 0..100 {
            if links.send(at, dst, b"x") == Fate::Failed {
                return;
            }
        }
        panic!("loopback never refused {dst}");
    }

    #[test]
    fn a_refusing_relay_is_dropped_then_probed_with_backoff() {
        let dst = closed_port();
        let mut links = Links::open(&[dst]).expect("open");
        until_refused(&mut links, t(0), dst);
        // Within the first backoff: dropped, not sent.
        assert_eq!(links.send(t(50), dst, b"x"), Fate::Dropped);
        assert_eq!(links.dropped(), 1);
        // Due: one probe leaves, and the refusal it earns doubles the wait.
        until_refused(&mut links, t(100), dst);
        assert_eq!(links.send(t(250), dst, b"x"), Fate::Dropped);
        // Too short to be worth a line yet.
        assert_eq!(links.outages(t(250)), vec![]);
        // The backoff never passes LAST_RETRY.
        for i in 0..10 {
            until_refused(&mut links, t(1_000 + i * 1_000), dst);
        }
        assert_eq!(
            links.outages(t(10_500)),
            vec![Report::Down(dst, Duration::from_millis(10_500))]
        );
        assert_ne!(links.send(t(11_000), dst, b"x"), Fate::Dropped);
        assert!(links.refused_at_end(t(11_000)).is_some());
    }

    #[test]
    fn a_relay_that_comes_back_gets_the_stream_and_is_reported_once() {
        let dst = closed_port();
        let mut links = Links::open(&[dst]).expect("open");
        until_refused(&mut links, t(0), dst);
        until_refused(&mut links, t(1_000), dst);
        assert_eq!(
            links.outages(t(1_050)),
            vec![Report::Down(dst, Duration::from_millis(1_050))]
        );
        let relay = UdpSocket::bind(dst).expect("the relay comes back");
        relay
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        // The next try after the backoff reaches it, and so does the rest.
        assert_eq!(links.send(t(1_200), dst, b"probe"), Fate::Left);
        assert_eq!(links.send(t(1_201), dst, b"more"), Fate::Left);
        let mut buf = [0; 16];
        let n = relay.recv(&mut buf).expect("the probe arrives");
        assert_eq!(&buf[..n], b"probe");
        assert_eq!(links.refused_at_end(t(3_000)), None);
        assert_eq!(
            links.outages(t(3_000)),
            vec![Report::Back(dst, Duration::from_secs(1))]
        );
        assert_eq!(links.outages(t(4_000)), vec![]);
    }

    #[test]
    fn a_lone_refusal_is_not_reported() {
        let dst = closed_port();
        let mut links = Links::open(&[dst]).expect("open");
        until_refused(&mut links, t(0), dst);
        let _relay = UdpSocket::bind(dst).expect("the relay comes back");
        assert_eq!(links.send(t(100), dst, b"x"), Fate::Left);
        assert_eq!(links.outages(t(500)), vec![]);
        assert_eq!(links.outages(t(2_000)), vec![]);
        assert_eq!(links.send(t(2_001), dst, b"x"), Fate::Left);
    }
}
