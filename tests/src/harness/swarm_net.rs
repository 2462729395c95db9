//! The swarm's network as a deployment would see it: links with jitter and
//! part of their loss in bursts, each peer behind a home router's uplink,
//! each relay with a core's cost per datagram. [`SwarmConfig`] holds the
//! settings and their reasons; this file turns them into netsim configs.
//!
//! # Loss, split into random and bursts
//!
//! A datagram toward a peer is lost if its link's independent coin says so
//! (`r`) or the Gilbert-Elliott chain of the peer's access link is in the
//! bad state (always lost there, never in the good one). The chain is one
//! per peer, stepped by everything arriving from any sender
//! ([`Network::set_downlink_burst`]), so a burst takes some milliseconds
//! of the peer's traffic; a chain per directed link would stretch a burst
//! of three datagrams over seconds on a link that carries a few a second
//! (measured: BENCHMARKS.md, "Issue 20, fidelity"). Relays and the
//! publisher sit in data centres: their links lose `loss` at random, no
//! bursts. The chain is bad a share `π = p_gb / (p_gb + p_bg)` of
//! the time and a stay lasts `1 / p_bg` datagrams, so for a mean `loss`
//! `L`, a share `s` of it in bursts of mean length `B`:
//!
//! - `π = s L`, `p_bg = 1 / B`, `p_gb = π p_bg / (1 - π)`;
//! - the two are independent, so `1 - L = (1 - r)(1 - π)`, and
//!   `r = 1 - (1 - L) / (1 - π)`.
//!
//! At the defaults (`L` = 2%, `s` = 0.5, `B` = 3): `π` = 1%, `p_bg` = 1/3,
//! `p_gb` = 0.337%, `r` = 1.0101%; mean loss toward a peer exactly 2%.

use std::time::Duration;

use super::SwarmConfig;
#[cfg(doc)]
use crate::netsim::Network;
use crate::netsim::{GilbertElliott, LinkConfig, Uplink};

/// A peer's access uplink, sized from its offered upload limit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AccessUplink {
    /// Uplink rate over the peer's upload limit.
    pub headroom: f64,
    /// The least uplink rate, bits per second: a pure viewer (limit 0)
    /// still sends HAVEs, NACKs and handshakes.
    pub min_bps: u64,
    /// The router's buffer, as time at the uplink's rate.
    pub buffer: Duration,
}

impl AccessUplink {
    /// The uplink of a peer that offers to upload `upload_limit_bps`.
    pub fn for_limit(&self, upload_limit_bps: u64) -> Uplink {
        let rate_bps = ((upload_limit_bps as f64 * self.headroom) as u64).max(self.min_bps);
        let queue_bytes = (rate_bps as f64 / 8.0 * self.buffer.as_secs_f64()) as usize;
        Uplink {
            rate_bps,
            // At least one whole datagram, whatever the rate.
            queue_bytes: queue_bytes.max(1_500),
            per_datagram: Duration::ZERO,
        }
    }
}

/// The default peer uplink: 1.25x the upload limit, at least 1 Mbit/s,
/// 200 ms of buffer (see [`SwarmConfig::peer_uplink`]).
pub const PEER_UPLINK: AccessUplink = AccessUplink {
    headroom: 1.25,
    min_bps: 1_000_000,
    buffer: Duration::from_millis(200),
};

/// The send buffer the relay asks the kernel for (`relay/src/io/socket.rs`).
const RELAY_SEND_BUFFER: usize = 8 << 20;

/// The trains the relay's I/O backends queue in user space before they
/// drop one (`IoConfig::tx_queue`); a fan-out of one chunk is a train per
/// subscriber.
const RELAY_TX_QUEUE: usize = 65_536;

/// A DATA datagram at the swarm's chunk size, about.
const DATA_DATAGRAM: usize = 1_350;

/// The default relay uplink (see [`SwarmConfig::relay_uplink`]).
pub const RELAY_UPLINK: Uplink = Uplink {
    rate_bps: 10_000_000_000,
    queue_bytes: RELAY_SEND_BUFFER + RELAY_TX_QUEUE * DATA_DATAGRAM,
    per_datagram: Duration::from_nanos(1_100),
};

/// A link toward a peer: latency, jitter, and the random part of `loss`
/// (the [module docs](self) work it out); the rest is [`peer_downlink`].
pub fn link(c: &SwarmConfig) -> LinkConfig {
    let bad = c.loss * c.burst_share;
    // Without bursts the loss is the config's to the bit, as before bursts.
    let loss = if bad > 0.0 {
        1.0 - (1.0 - c.loss) / (1.0 - bad)
    } else {
        c.loss
    };
    LinkConfig {
        loss,
        ..server_link(c)
    }
}

/// A link toward a relay or the publisher: all of `loss` at random.
pub fn server_link(c: &SwarmConfig) -> LinkConfig {
    LinkConfig {
        latency: c.latency,
        jitter: c.jitter,
        loss: c.loss,
        ..LinkConfig::default()
    }
}

/// The burst chain of a peer's access link, if `loss` has a burst share.
pub fn peer_downlink(c: &SwarmConfig) -> Option<GilbertElliott> {
    let bad = c.loss * c.burst_share;
    (bad > 0.0).then(|| {
        let p_bad_to_good = 1.0 / c.burst_len.max(1.0);
        GilbertElliott {
            p_good_to_bad: bad * p_bad_to_good / (1.0 - bad),
            p_bad_to_good,
            loss_in_good: 0.0,
            loss_in_bad: 1.0,
        }
    })
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::*;

    /// A relay fans a chunk out to each subscriber at one instant, and a
    /// MANIFEST settles a block of chunks at once: at the swarm's rate a
    /// block is about 3 chunks, and in a join ramp every subscriber takes
    /// every club from its relay. All of it must fit in what the relay
    /// queues, as the real relay's does (8 MiB of socket buffer, 65,536
    /// trains), or the simulator drops what the product would send late.
    #[test]
    fn a_relay_queues_a_block_for_every_subscriber_it_admits() {
        let subscribers = crate::harness::swarm_relays::max_subscribers(10_000, 4);
        let block = 3 * DATA_DATAGRAM;
        assert!(
            subscribers * block <= RELAY_UPLINK.queue_bytes,
            "{subscribers} x {block} bytes > {}",
            RELAY_UPLINK.queue_bytes
        );
        // The send buffer alone (the model before) did not hold it.
        assert!(subscribers * block > RELAY_SEND_BUFFER);
    }

    #[test]
    fn without_bursts_the_loss_is_all_random() {
        let c = SwarmConfig {
            burst_share: 0.0,
            ..SwarmConfig::default()
        };
        assert_eq!(link(&c).loss, c.loss);
        assert_eq!(peer_downlink(&c), None);
    }

    /// The chain as netsim steps it, with the random coin on top: the mean
    /// loss is the config's, and lost runs are longer than random loss
    /// alone makes them (about 1.01 at 2%): half the losses alone, half in
    /// runs of 3, so 1.5 on average.
    #[test]
    fn the_split_keeps_the_mean_loss() {
        let c = SwarmConfig::default();
        let l = link(&c);
        assert!((l.loss - 0.010_101).abs() < 1e-6, "{}", l.loss);
        assert_eq!(server_link(&c).loss, c.loss);
        let burst = peer_downlink(&c).expect("bursts");
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let (mut bad, mut lost, mut runs, mut prev) = (false, 0u32, 0u32, false);
        let n = 2_000_000;
        for _ in 0..n {
            let flip = if bad {
                burst.p_bad_to_good
            } else {
                burst.p_good_to_bad
            };
            if rng.random::<f64>() < flip {
                bad = !bad;
            }
            let gone = (rng.random::<f64>() < l.loss) | bad;
            lost += u32::from(gone);
            runs += u32::from(gone && !prev);
            prev = gone;
        }
        let rate = f64::from(lost) / f64::from(n);
        assert!((rate - c.loss).abs() < 0.0005, "loss {rate}");
        let mean_run = f64::from(lost) / f64::from(runs);
        assert!(mean_run > 1.4 && mean_run < 1.65, "mean run {mean_run}");
    }

    #[test]
    fn a_peer_uplink_has_headroom_a_floor_and_200_ms_of_buffer() {
        let u = PEER_UPLINK.for_limit(2_000_000);
        assert_eq!(u.rate_bps, 2_500_000);
        assert_eq!(u.queue_bytes, 62_500);
        let viewer = PEER_UPLINK.for_limit(0);
        assert_eq!(viewer.rate_bps, 1_000_000);
        assert_eq!(viewer.queue_bytes, 25_000);
    }
}
