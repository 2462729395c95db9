//! Round-trip times to candidate relays, measured before joining one.
//!
//! Each candidate gets one HELLO (again after [`RESEND_AFTER`] if it has
//! not answered), and its RTT is the time to the CHALLENGE that echoes the
//! HELLO's nonce. A relay answers HELLO without keeping state, and a
//! CHALLENGE is never larger than the HELLO, so probing costs a relay
//! nothing it would not spend on any newcomer. Candidates that have not
//! answered within the patience given are reported as silent.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use shoal_proto::wire::{HELLO_MIN_LEN, Hello, Message, SUPPORTED_VERSIONS};

/// When an unanswered HELLO is sent again.
pub const RESEND_AFTER: Duration = Duration::from_millis(250);

/// The candidates, by round-trip time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ranked {
    /// Those that answered, fastest first.
    pub reachable: Vec<(SocketAddr, Duration)>,
    /// Those that did not, in the order given.
    pub silent: Vec<SocketAddr>,
}

/// Probes every candidate for at most `patience`; returns early once all
/// have answered. IPv4 and IPv6 candidates are probed at once, each
/// family from its own socket.
pub fn rank(candidates: &[SocketAddr], patience: Duration) -> io::Result<Ranked> {
    let (v4, v6): (Vec<SocketAddr>, Vec<SocketAddr>) = candidates.iter().partition(|a| a.is_ipv4());
    let seed = u64::from_le_bytes(crate::os::random_bytes()?);
    let (a, b) = std::thread::scope(|s| {
        let six = s.spawn(|| probe_family(&v6, patience, seed ^ 0x6666));
        (probe_family(&v4, patience, seed), six.join())
    });
    let b = b.map_err(|_| io::Error::other("the IPv6 probe thread panicked"))?;
    let mut answered: Vec<(SocketAddr, Duration)> = Vec::new();
    for got in [a?, b?] {
        answered.extend(got);
    }
    answered.sort_by_key(|&(_, rtt)| rtt);
    let silent = candidates
        .iter()
        .filter(|c| !answered.iter().any(|(a, _)| a == *c))
        .copied()
        .collect();
    Ok(Ranked {
        reachable: answered,
        silent,
    })
}

/// Probes candidates of one family from one socket.
fn probe_family(
    candidates: &[SocketAddr],
    patience: Duration,
    seed: u64,
) -> io::Result<Vec<(SocketAddr, Duration)>> {
    let Some(first) = candidates.first() else {
        return Ok(Vec::new());
    };
    let wildcard: SocketAddr = if first.is_ipv4() {
        SocketAddr::from(([0, 0, 0, 0], 0))
    } else {
        SocketAddr::from(([0u16; 8], 0))
    };
    let socket = UdpSocket::bind(wildcard)?;
    let nonce = |i: usize| seed.wrapping_add((i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let mut sent: Vec<Option<Instant>> = vec![None; candidates.len()];
    let mut rtt: Vec<Option<Duration>> = vec![None; candidates.len()];
    let start = Instant::now();
    let mut buf = [0u8; 2048];
    while rtt.iter().any(Option::is_none) && start.elapsed() < patience {
        for (i, to) in candidates.iter().enumerate() {
            let due = sent[i].is_none_or(|t| t.elapsed() >= RESEND_AFTER);
            if rtt[i].is_none() && due {
                let hello = Message::Hello(Hello {
                    versions: SUPPORTED_VERSIONS,
                    nonce: nonce(i),
                    padded_len: HELLO_MIN_LEN as u16,
                });
                let n = hello
                    .emit(&mut buf)
                    .map_err(|_| io::Error::other("a HELLO does not fit 2048 bytes"))?;
                // A failed send (no route, a refusal) just leaves it silent.
                if socket.send_to(buf.get(..n).unwrap_or_default(), to).is_ok() {
                    sent[i] = Some(Instant::now());
                }
            }
        }
        let next_resend = sent
            .iter()
            .zip(&rtt)
            .filter(|(_, r)| r.is_none())
            .filter_map(|(s, _)| s.map(|t| RESEND_AFTER.saturating_sub(t.elapsed())))
            .min()
            .unwrap_or(RESEND_AFTER);
        let wait = next_resend
            .min(patience.saturating_sub(start.elapsed()))
            .max(Duration::from_millis(1));
        socket.set_read_timeout(Some(wait))?;
        match socket.recv_from(&mut buf) {
            Ok((n, from)) => {
                let at = Instant::now();
                if let Ok(Message::Challenge(c)) = Message::parse(buf.get(..n).unwrap_or_default())
                    && let Some(i) = candidates.iter().position(|&a| a == from)
                    && c.nonce == nonce(i)
                    && rtt[i].is_none()
                    && let Some(t) = sent[i]
                {
                    rtt[i] = Some(at.saturating_duration_since(t));
                }
            }
            Err(e) if is_timeout(&e) => {}
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {}
            Err(e) => return Err(e),
        }
    }
    Ok(candidates
        .iter()
        .zip(rtt)
        .filter_map(|(&a, r)| r.map(|r| (a, r)))
        .collect())
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stand-in relay that answers HELLO with CHALLENGE after `delay`.
    fn fake_relay(delay: Duration) -> (SocketAddr, std::thread::JoinHandle<()>) {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let addr = socket.local_addr().expect("addr");
        socket
            .set_read_timeout(Some(Duration::from_secs(3)))
            .expect("timeout");
        let handle = std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            if let Ok((n, from)) = socket.recv_from(&mut buf)
                && let Ok(Message::Hello(h)) = Message::parse(&buf[..n])
            {
                std::thread::sleep(delay);
                let challenge = Message::Challenge(shoal_proto::wire::Challenge {
                    nonce: h.nonce,
                    cookie: shoal_proto::wire::Cookie {
                        issued_at_us: 0,
                        tag: [0; 16],
                    },
                });
                let n = challenge.emit(&mut buf).expect("fits");
                socket.send_to(&buf[..n], from).expect("send");
            }
        });
        (addr, handle)
    }

    #[test]
    fn ranks_by_round_trip_and_reports_the_silent() {
        let (slow, a) = fake_relay(Duration::from_millis(60));
        let (fast, b) = fake_relay(Duration::ZERO);
        let dead = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let silent = dead.local_addr().expect("addr");
        let ranked = rank(&[slow, silent, fast], Duration::from_millis(600)).expect("probe");
        let order: Vec<SocketAddr> = ranked.reachable.iter().map(|(a, _)| *a).collect();
        assert_eq!(order, vec![fast, slow]);
        assert!(ranked.reachable[1].1 >= Duration::from_millis(60));
        assert_eq!(ranked.silent, vec![silent]);
        a.join().expect("slow relay");
        b.join().expect("fast relay");
    }
}
