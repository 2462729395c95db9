//! Burst loss on a node's access link, in front of everything it receives.
//!
//! A link's own Gilbert-Elliott chain ([`LinkConfig::burst`]) steps once per
//! datagram on that directed link, so on a link that carries a few
//! datagrams a second a "burst of three" lasts a second or more, where a
//! real burst (a Wi-Fi fade, a congested home router) lasts some
//! milliseconds and takes whatever arrives then, from every sender. A
//! downlink chain is that: one chain per receiving node, stepped by every
//! datagram its links let through toward it. It is stepped when the
//! datagram is sent, in send order, which differs from arrival order by
//! no more than the links' latency spread; so it costs no extra event and
//! stays deterministic. What it drops counts as [`DropCause::Burst`] on
//! the link it came by.
//!
//! [`LinkConfig::burst`]: super::LinkConfig::burst
//! [`DropCause::Burst`]: super::DropCause::Burst

use rand::Rng;

use super::loss::{BurstState, GilbertElliott};

/// One node's downlink chain and where it is.
#[derive(Debug)]
pub(super) struct DownlinkBurst {
    model: GilbertElliott,
    state: BurstState,
}

impl DownlinkBurst {
    pub(super) fn new(model: GilbertElliott) -> Self {
        model.validate();
        Self {
            model,
            state: BurstState::default(),
        }
    }

    /// Steps the chain for one datagram that reached the access link; true
    /// if the access link loses it.
    pub(super) fn step(&mut self, rng: &mut impl Rng) -> bool {
        self.state.step(&self.model, rng)
    }
}
