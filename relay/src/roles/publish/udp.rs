//! `--input udp://HOST:PORT[?source=IP&max_rate=RATE]`: what `shoal
//! publish` takes from a UDP port.
//!
//! A listening port takes datagrams from anyone who can reach it, and
//! whatever it takes is signed and sent to every relay under the stream's
//! key. So the URL may name the senders to take (ffmpeg's syntax:
//! `sources=IP,IP`, and `source=` for one; `IP:PORT` narrows to one
//! socket), and a rate cap bounds what even an allowed sender can push
//! through (default [`DEFAULT_MAX_RATE`]). What either turns away is
//! dropped, not queued, and counted in [`Drops`], which the status line
//! reports.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The cap when `max_rate` is not given, in bits per second: well above
/// any live stream shoal carries (3-20 Mbit/s), low enough that a stray
/// flood cannot turn the publisher into a 1 Gbit/s source.
pub const DEFAULT_MAX_RATE: u64 = 100_000_000;

/// How much a sender may burst above the cap: this long at the cap rate
/// (a keyframe arrives faster than the stream's average).
const BURST: Duration = Duration::from_millis(250);

/// A parsed `udp://` input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UdpUrl {
    /// Where to listen.
    pub listen: SocketAddr,
    /// The senders taken; empty takes any.
    pub sources: Vec<Allowed>,
    /// The cap in bits per second; `None` is no cap (`max_rate=off`).
    pub max_rate: Option<u64>,
}

/// One sender a `source=` or `sources=` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allowed {
    /// Any port on this address.
    Ip(IpAddr),
    /// Exactly this socket.
    Socket(SocketAddr),
}

/// What the filters turned away, shared between the reader thread and the
/// status line.
#[derive(Debug, Default)]
pub struct Drops {
    /// Datagrams from a sender not in `source=` / `sources=`.
    pub other_source: AtomicU64,
    /// Datagrams over `max_rate`.
    pub over_rate: AtomicU64,
}

impl Drops {
    /// The counts now: (other source, over rate).
    pub fn read(&self) -> (u64, u64) {
        (
            self.other_source.load(Ordering::Relaxed),
            self.over_rate.load(Ordering::Relaxed),
        )
    }
}

impl UdpUrl {
    /// Parses what follows `udp://`. `text` is the whole `--input`, for
    /// the error.
    pub fn parse(rest: &str, text: &str) -> anyhow::Result<Self> {
        let (addr, query) = rest.split_once('?').unwrap_or((rest, ""));
        let listen = addr
            .to_socket_addrs()
            .ok()
            .and_then(|mut addrs| addrs.next())
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "--input {text:?}: not an address; use udp://HOST:PORT such as udp://127.0.0.1:5000"
                )
            })?;
        let mut url = Self {
            listen,
            sources: Vec::new(),
            max_rate: Some(DEFAULT_MAX_RATE),
        };
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match key {
                "source" | "sources" => {
                    for one in value.split(',') {
                        url.sources.push(parse_allowed(one).ok_or_else(|| {
                            anyhow::anyhow!(
                                "--input {text:?}: {key}={value:?} is not a list of IP \
                                 addresses; use {key}=IP[,IP...] such as {key}=127.0.0.1"
                            )
                        })?);
                    }
                }
                "max_rate" => {
                    url.max_rate = parse_rate(value).ok_or_else(|| {
                        anyhow::anyhow!(
                            "--input {text:?}: max_rate={value:?} is not a rate; use bits per \
                             second such as max_rate=20Mbit, 800kbit, or off"
                        )
                    })?;
                }
                _ => anyhow::bail!(
                    "--input {text:?}: unknown option {key:?}; udp:// takes source=IP[,IP...], \
                     sources=IP[,IP...] and max_rate=RATE (such as 20Mbit); remove the others"
                ),
            }
        }
        Ok(url)
    }

    /// Whether a datagram from `from` is taken.
    pub fn allows(&self, from: SocketAddr) -> bool {
        self.sources.is_empty()
            || self.sources.iter().any(|a| match *a {
                Allowed::Ip(ip) => same_ip(ip, from.ip()),
                Allowed::Socket(s) => same_ip(s.ip(), from.ip()) && s.port() == from.port(),
            })
    }
}

/// An IPv4 sender seen on an IPv6 socket arrives as `::ffff:a.b.c.d`.
fn same_ip(a: IpAddr, b: IpAddr) -> bool {
    a.to_canonical() == b.to_canonical()
}

fn parse_allowed(text: &str) -> Option<Allowed> {
    let text = text.trim();
    text.parse()
        .map(Allowed::Ip)
        .or_else(|_| text.parse().map(Allowed::Socket))
        .ok()
}

/// `20Mbit`, `800kbit`, `1.5M`, `2000000` (bits per second), or `off`
/// (`Some(None)`). Zero is not a rate.
fn parse_rate(text: &str) -> Option<Option<u64>> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("off") {
        return Some(None);
    }
    let lower = text.to_ascii_lowercase();
    let unit = lower
        .strip_suffix("bit")
        .or_else(|| lower.strip_suffix("bps"))
        .unwrap_or(&lower);
    let (number, scale) = match unit.chars().last()? {
        'k' => (&unit[..unit.len() - 1], 1e3),
        'm' => (&unit[..unit.len() - 1], 1e6),
        'g' => (&unit[..unit.len() - 1], 1e9),
        _ => (unit, 1.0),
    };
    let value: f64 = number.trim().parse().ok()?;
    let bits = value * scale;
    (bits.is_finite() && bits >= 1.0 && bits < u64::MAX as f64).then_some(Some(bits as u64))
}

/// A token bucket over bits: the rate cap.
#[derive(Debug)]
pub struct RateCap {
    rate: u64,
    depth: f64,
    tokens: f64,
    at: Instant,
}

impl RateCap {
    /// A full bucket for `rate` bits per second.
    pub fn new(rate: u64, now: Instant) -> Self {
        let depth = (rate as f64 * BURST.as_secs_f64()).max(8.0 * 65_536.0);
        Self {
            rate,
            depth,
            tokens: depth,
            at: now,
        }
    }

    /// Whether a datagram of `len` bytes fits now; takes its bits if so.
    pub fn admit(&mut self, now: Instant, len: usize) -> bool {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.at = now;
        self.tokens = (self.tokens + elapsed * self.rate as f64).min(self.depth);
        let bits = (len * 8) as f64;
        if self.tokens >= bits {
            self.tokens -= bits;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(rest: &str) -> anyhow::Result<UdpUrl> {
        UdpUrl::parse(rest, &format!("udp://{rest}"))
    }

    #[test]
    fn urls_parse_like_ffmpeg() {
        let url = parse("127.0.0.1:5000").expect("plain");
        assert_eq!(url.listen, SocketAddr::from(([127, 0, 0, 1], 5000)));
        assert!(url.sources.is_empty());
        assert_eq!(url.max_rate, Some(DEFAULT_MAX_RATE));

        let url = parse("127.0.0.1:5000?sources=10.0.0.1,10.0.0.2&max_rate=20Mbit")
            .expect("sources and a cap");
        assert_eq!(
            url.sources,
            vec![
                Allowed::Ip([10, 0, 0, 1].into()),
                Allowed::Ip([10, 0, 0, 2].into())
            ]
        );
        assert_eq!(url.max_rate, Some(20_000_000));

        let url = parse("127.0.0.1:5000?source=127.0.0.1:6000&max_rate=off").expect("one");
        assert_eq!(
            url.sources,
            vec![Allowed::Socket(SocketAddr::from(([127, 0, 0, 1], 6000)))]
        );
        assert_eq!(url.max_rate, None);
    }

    #[test]
    fn bad_queries_name_the_fix() {
        let err = |rest: &str| parse(rest).err().map(|e| e.to_string()).unwrap_or_default();
        let unknown = err("127.0.0.1:5000?fifo_size=100");
        assert!(
            unknown.contains("unknown option \"fifo_size\""),
            "{unknown}"
        );
        assert!(unknown.contains("remove the others"), "{unknown}");
        assert!(err("127.0.0.1:5000?source=nowhere").contains("source=IP[,IP...]"));
        assert!(err("127.0.0.1:5000?sources=").contains("sources=IP[,IP...]"));
        assert!(err("127.0.0.1:5000?max_rate=fast").contains("such as max_rate=20Mbit"));
        assert!(err("127.0.0.1:5000?max_rate=0").contains("not a rate"));
    }

    #[test]
    fn rates_parse() {
        assert_eq!(parse_rate("20Mbit"), Some(Some(20_000_000)));
        assert_eq!(parse_rate("800kbit"), Some(Some(800_000)));
        assert_eq!(parse_rate("1.5M"), Some(Some(1_500_000)));
        assert_eq!(parse_rate("1Gbps"), Some(Some(1_000_000_000)));
        assert_eq!(parse_rate("2000000"), Some(Some(2_000_000)));
        assert_eq!(parse_rate("OFF"), Some(None));
        for bad in ["", "k", "-1M", "0", "x", "1e30G"] {
            assert_eq!(parse_rate(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_filter_takes_named_senders_only() {
        let url = parse("0.0.0.0:5000?sources=127.0.0.1,10.0.0.9:7000").expect("parse");
        assert!(url.allows("127.0.0.1:40000".parse().expect("addr")));
        assert!(url.allows("[::ffff:127.0.0.1]:40000".parse().expect("addr")));
        assert!(!url.allows("127.0.0.2:40000".parse().expect("addr")));
        assert!(url.allows("10.0.0.9:7000".parse().expect("addr")));
        assert!(!url.allows("10.0.0.9:7001".parse().expect("addr")));
        assert!(
            parse("0.0.0.0:5000")
                .expect("any")
                .allows("192.0.2.1:1".parse().expect("addr"))
        );
    }

    #[test]
    fn the_cap_passes_its_burst_then_its_rate() {
        let t0 = Instant::now();
        // 8 Mbit/s: a 250 ms burst is 2 Mbit, 250,000 bytes.
        let mut cap = RateCap::new(8_000_000, t0);
        let passed = (0..400).filter(|_| cap.admit(t0, 1000)).count();
        assert_eq!(passed, 250);
        // 10 ms later: 80,000 bits more, 10 datagrams of 1000 bytes.
        let t1 = t0 + Duration::from_millis(10);
        let passed = (0..100).filter(|_| cap.admit(t1, 1000)).count();
        assert_eq!(passed, 10);
    }
}
