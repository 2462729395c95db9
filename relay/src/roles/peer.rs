//! `shoal peer`: watch a stream as `shoal watch` does and upload part of it
//! to other peers: an ordinary peer in the swarm ([`Peer`]).
//!
//! A [`Peer`] on one UDP socket, on `--listen`, driven by the loop it
//! shares with `shoal watch` ([`ClientLoop`]); it sends to the relay, its
//! neighbours and the peers it serves. Other peers reach it at the
//! socket's address, as the relay sees it.
//!
//! At the end of the stream the output is flushed and the peer goes on
//! serving the peers it feeds, so that they get the last chunks and the
//! end from it too, until it has no timer left or
//! [`LINGER`](super::client_loop::LINGER) passes; then it leaves (LEAVE to
//! the relay and its neighbours, the peers it serves told to go
//! elsewhere) and exits 0. A reader closing our stdout ends it the same
//! way, without the linger. A relay that never answers, or that does not
//! carry the stream, is an error after 5 s.

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use anyhow::Context;
use shoal_proto::peer::{LinkUp, Peer, PeerConfig, PeerStats, Reach};

use super::client_args::ClientArgs;
use super::client_loop::{ClientLoop, bad_key};
use super::output::Output;
use super::udp::{random_seed, wildcard_for};
use crate::os;

/// `shoal peer` flags.
#[derive(Debug, clap::Args)]
pub struct PeerArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// Most this peer uploads to other peers, such as 8Mbit or 500kbit; 0
    /// uploads nothing (a pure viewer).
    #[arg(long, value_name = "RATE", default_value = "8Mbit")]
    pub upload_limit: String,
    /// Longest a chunk may take from publisher to output before it is
    /// given up as lost.
    #[arg(long, value_name = "TIME", default_value = "2s")]
    pub latency: String,
    /// Local UDP address, IP:PORT; other peers reach this peer there
    /// [default: 0.0.0.0:0, or [::]:0 for an IPv6 relay].
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
}

/// Runs `shoal peer`.
pub fn run(args: &PeerArgs) -> anyhow::Result<()> {
    let client = &args.client;
    let flags = client.flags(&args.latency)?;
    let upload_limit = parse_upload_limit(&args.upload_limit)?;
    let (target, join) = client.target_and_join(&flags)?;
    let relay = join.relay;
    let listen = parse_listen(args.listen.as_deref(), relay)?;

    let mut config = PeerConfig::new(relay, flags.stream);
    config.fallbacks = join.fallbacks.clone();
    config.latency = flags.latency;
    config.upload_limit_bps = upload_limit;
    config.token = flags.token.clone();
    // Forgeable cookies would let anyone make this peer send to any
    // address: no stand-in for the OS's randomness here.
    config.cookie_secret = os::random_bytes()
        .context("cannot read /dev/urandom for the upload side's cookie secret")?;
    config.nonce_seed = random_seed();
    config.window.wall_clock = os::wall_clock();
    let started = os::now();
    let peer = Peer::new(config, started).map_err(|e| bad_key(&client.stream, e))?;
    let socket = UdpSocket::bind(listen).map_err(|e| {
        anyhow::anyhow!(
            "--listen {listen}: cannot open a UDP socket there ({e}); use a local address and a free port, or port 0"
        )
    })?;
    let output = Output::open(&target)?;
    ClientLoop::new(peer, socket, output, &flags, &join, client.quiet, started)?.run()
}

/// The line for the `elapsed` seconds from `before` to `stats`.
pub(super) fn status_line(
    latency: Option<Duration>,
    stats: &PeerStats,
    before: &PeerStats,
    elapsed: f64,
) -> String {
    let latency = latency.map_or_else(|| "-".to_owned(), |l| format!("{} ms", l.as_millis()));
    let mbps = |now: u64, then: u64| now.saturating_sub(then) as f64 * 8.0 / elapsed / 1e6;
    let from_peers = stats
        .from_peers_bytes
        .saturating_sub(before.from_peers_bytes);
    let from_relay = stats
        .from_relay_bytes
        .saturating_sub(before.from_relay_bytes);
    let share = match from_peers + from_relay {
        0 => "-".to_owned(),
        total => format!("{:.0}%", 100.0 * from_peers as f64 / total as f64),
    };
    let v = &stats.viewer;
    let [direct, punched, remapped] = stats.working_by_reach;
    format!(
        "latency {latency}, repaired {} by FEC and {} by NACK, lost {}, {:.2} Mbit/s; \
         uploading {:.2} Mbit/s to {} peers, {} neighbours ({direct} direct, {punched} punched, \
         {remapped} remapped; {} unreachable), {share} from peers",
        v.fec_repaired,
        v.nack_repaired,
        v.lost,
        mbps(v.played_bytes, before.viewer.played_bytes),
        mbps(stats.uploaded_bytes, before.uploaded_bytes),
        stats.subscribers,
        stats.working_sources,
        stats.unreachable,
    )
}

/// The line telling the user a download neighbour started working.
pub(super) fn link_line(link: &LinkUp) -> String {
    let reach = match link.reach {
        Reach::Direct => "direct",
        Reach::Punched => "punched",
        Reach::Remapped => "remapped",
    };
    format!(
        "neighbour {} working after {} ms ({reach})",
        link.addr,
        link.after.as_millis()
    )
}

/// `--upload-limit`: a rate such as `8Mbit` or `500kbit`, or 0 for none.
fn parse_upload_limit(text: &str) -> anyhow::Result<u64> {
    if text.trim() == "0" {
        return Ok(0);
    }
    crate::units::bitrate(text)
        .map_err(|why| anyhow::anyhow!("--upload-limit {text:?}: {why}, or 0 to upload nothing"))
}

/// `--listen`: an IP:PORT of the relay's family; none is the wildcard
/// address with a port the OS picks.
fn parse_listen(text: Option<&str>, relay: SocketAddr) -> anyhow::Result<SocketAddr> {
    let Some(text) = text else {
        return Ok(wildcard_for(relay));
    };
    let example = if relay.is_ipv4() {
        "0.0.0.0:7500"
    } else {
        "[::]:7500"
    };
    let addr: SocketAddr = text.trim().parse().map_err(|_| {
        anyhow::anyhow!(
            "--listen {text:?}: not an address; use IP:PORT such as {example} (port 0 lets the OS pick)"
        )
    })?;
    if addr.is_ipv4() != relay.is_ipv4() {
        let (family, other) = if relay.is_ipv4() {
            ("IPv4", "IPv6")
        } else {
            ("IPv6", "IPv4")
        };
        anyhow::bail!(
            "--listen {text:?}: an {other} address cannot reach relay {relay} ({family}); use an {family} address such as {example}"
        );
    }
    Ok(addr)
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoal_proto::viewer::ViewerStats;

    #[test]
    fn upload_limit_parses() {
        assert_eq!(parse_upload_limit("0").ok(), Some(0));
        assert_eq!(parse_upload_limit("8Mbit").ok(), Some(8_000_000));
        assert_eq!(parse_upload_limit("500kbit").ok(), Some(500_000));
        for bad in ["", "lots", "-1Mbit", "10", "8MB"] {
            let err = parse_upload_limit(bad).expect_err(bad).to_string();
            assert!(err.starts_with(&format!("--upload-limit {bad:?}")), "{err}");
            assert!(err.contains("8Mbit") || err.contains("3Mbit"), "{err}");
            assert!(err.ends_with("or 0 to upload nothing"), "{err}");
        }
    }

    #[test]
    fn listen_parses() {
        let v4: SocketAddr = "127.0.0.1:7400".parse().expect("addr");
        let v6: SocketAddr = "[::1]:7400".parse().expect("addr");
        let ok = |t: Option<&str>, relay| parse_listen(t, relay).ok().map(|a| a.to_string());
        assert_eq!(ok(None, v4).as_deref(), Some("0.0.0.0:0"));
        assert_eq!(ok(None, v6).as_deref(), Some("[::]:0"));
        assert_eq!(
            ok(Some("127.0.0.1:7500"), v4).as_deref(),
            Some("127.0.0.1:7500")
        );
        for bad in ["", "7500", "localhost:7500", "[::]:7500", "1.2.3.4:99999"] {
            let err = parse_listen(Some(bad), v4).expect_err(bad).to_string();
            assert!(err.starts_with(&format!("--listen {bad:?}")), "{err}");
            assert!(err.contains("0.0.0.0:7500"), "{err}");
        }
    }

    #[test]
    fn status_line_reads() {
        let stats = PeerStats {
            viewer: ViewerStats {
                fec_repaired: 3,
                nack_repaired: 1,
                lost: 2,
                played_bytes: 312_500,
                ..ViewerStats::default()
            },
            uploaded_bytes: 625_000,
            subscribers: 4,
            working_sources: 6,
            working_by_reach: [1, 4, 1],
            unreachable: 2,
            from_peers_bytes: 300,
            from_relay_bytes: 100,
            ..PeerStats::default()
        };
        let line = status_line(
            Some(Duration::from_millis(120)),
            &stats,
            &PeerStats::default(),
            1.0,
        );
        assert_eq!(
            line,
            "latency 120 ms, repaired 3 by FEC and 1 by NACK, lost 2, 2.50 Mbit/s; \
             uploading 5.00 Mbit/s to 4 peers, 6 neighbours (1 direct, 4 punched, 1 remapped; \
             2 unreachable), 75% from peers"
        );
    }
}
