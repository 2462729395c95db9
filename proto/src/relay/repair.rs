//! Repairs: what a subscriber is sent again.
//!
//! A new subscriber's catch-up (the window from its start, up to
//! `nack_limit` chunks), a resubscription's, and NACK answers all send
//! held chunks with each block's MANIFEST first (SPEC §11.3, §11.6). All
//! but a subscription's first catch-up are paid from the subscriber's
//! repair budget (see `budget.rs`), so that no subscriber can make the
//! relay resend the window faster than half the stream's rate.

use std::net::SocketAddr;
use std::ops::Range;
use std::time::Duration;

use super::Relay;
use super::budget::{BudgetRule, RepairBudget};
use crate::Time;
use crate::transmit::SharedBuf;
use crate::wire::{Have, Message, Nack, NackKind};

impl Relay {
    /// Sends a subscriber what the window already holds from its start;
    /// paid from its repair budget if `paid`.
    pub(super) fn catch_up(
        &mut self,
        now: Time,
        sub: usize,
        from_seq: u64,
        to_seq: u64,
        paid: bool,
    ) {
        let Some(s) = &self.subs[sub] else { return };
        let (addr, stream, clubs) = (s.addr, s.stream, s.clubs);
        let to = to_seq.min(from_seq + self.config.nack_limit as u64);
        let mut budget = paid.then(|| self.repair_budget(now, sub)).flatten();
        let (_, cut) = self.send_range(addr, stream, clubs, from_seq..to, None, budget.as_mut());
        self.settle_repair(sub, budget, cut);
    }

    /// Subscriber `sub`'s repair budget, refilled to `now` by its stream's
    /// rule (see [`budget`]).
    pub(super) fn repair_budget(&mut self, now: Time, sub: usize) -> Option<RepairBudget> {
        let s = self.subs[sub].as_ref()?;
        let bitrate = self.streams[s.stream]
            .window
            .descriptor()
            .map(|(d, _)| d.bitrate_bps);
        let mut budget = s.budget;
        budget.refill(now, BudgetRule::new(bitrate, self.config.nack_limit));
        Some(budget)
    }

    /// Keeps what is left of a repair budget; counts a refusal if the
    /// answer was `cut` short.
    pub(super) fn settle_repair(&mut self, sub: usize, budget: Option<RepairBudget>, cut: bool) {
        if let (Some(b), Some(s)) = (budget, self.subs[sub].as_mut()) {
            s.budget = b;
        }
        if cut {
            self.stats.drop_repair_budget += 1;
        }
    }

    /// Queues the chunks `from..to` of the clubs in `clubs` that the window
    /// holds, each block's manifest before its first chunk, paying each
    /// datagram from `budget` if given. Returns chunks queued, and whether
    /// the budget ran out before the end.
    /// Sends the held chunks of `seqs` in `clubs` (each block's MANIFEST
    /// first, if forwarded), leaving out those that arrived less than
    /// `fresh.1` before `fresh.0`; returns how many and whether the budget
    /// cut it short.
    fn send_range(
        &mut self,
        addr: SocketAddr,
        stream: usize,
        clubs: u64,
        seqs: Range<u64>,
        fresh: Option<(Time, Duration)>,
        mut budget: Option<&mut RepairBudget>,
    ) -> (u64, bool) {
        let window = &self.streams[stream].window;
        let mut pay = |buf: &SharedBuf| budget.as_deref_mut().is_none_or(|b| b.spend(buf.len()));
        let mut last_block = None;
        let mut sent = 0;
        for seq in seqs {
            let Some(chunk) = window.chunk(seq) else {
                continue;
            };
            let is_fresh =
                fresh.is_some_and(|(now, fresh)| now.saturating_since(chunk.arrived) < fresh);
            if !Self::in_clubs(window, clubs, seq) || is_fresh {
                continue;
            }
            if last_block != Some(chunk.block) && self.config.forward_manifests {
                last_block = Some(chunk.block);
                if let Some(m) = window.manifest_buf(chunk.block) {
                    if !pay(m) {
                        return (sent, true);
                    }
                    self.tx.push_shared(addr, m);
                }
            }
            if let Some(buf) = window.chunk_buf(seq) {
                if !pay(buf) {
                    return (sent, true);
                }
                self.tx.push_shared(addr, buf);
                sent += 1;
            }
        }
        (sent, false)
    }

    pub(super) fn serve_nack(&mut self, now: Time, from: SocketAddr, sub: usize, nack: &Nack) {
        let Some(s) = &self.subs[sub] else { return };
        // A NACK is answered for every club: a proven subscriber asks, the
        // answer is bounded by `nack_limit` and by its repair budget, and
        // an ordinary peer asks its relay for chunks its peers lost.
        let (stream, clubs) = (s.stream, u64::MAX);
        if self.streams[stream].window.stream() != nack.stream {
            return;
        }
        let mut budget = self.repair_budget(now, sub);
        let mut cut = false;
        let mut items = self.config.nack_limit as u64;
        for e in nack.entries() {
            if items == 0 || cut {
                break;
            }
            let len = u64::from(e.len).min(items);
            match e.kind {
                NackKind::Chunks => {
                    let end = e.start.saturating_add(len);
                    let fresh = self.config.nack_skips_fresh.map(|fresh| (now, fresh));
                    let (sent, stopped) =
                        self.send_range(from, stream, clubs, e.start..end, fresh, budget.as_mut());
                    self.stats.nack_served += sent;
                    cut = stopped;
                }
                NackKind::Manifests => {
                    for block in e.start..e.start.saturating_add(len) {
                        if let Some(m) = self.streams[stream].window.manifest_buf(block) {
                            if !budget.as_mut().is_none_or(|b| b.spend(m.len())) {
                                cut = true;
                                break;
                            }
                            self.tx.push_shared(from, m);
                        }
                    }
                }
            }
            items -= len;
        }
        self.settle_repair(sub, budget, cut);
        if self.config.nack_tells_lack {
            self.tell_lack(from, sub, nack);
        }
    }

    /// Answers a NACK that names chunks the window does not hold with a
    /// HAVE of what it holds from the first of them: the asker's own copy
    /// is still on its way here, and it waits for the push (see
    /// [`RelayConfig::nack_tells_lack`](super::RelayConfig)). One 60-byte
    /// HAVE per NACK, to a proven subscriber; only the first 64 chunks the
    /// NACK names are looked at (a HAVE covers no more), so a NACK of many
    /// entries costs no more than one of a few.
    fn tell_lack(&mut self, from: SocketAddr, sub: usize, nack: &Nack) {
        let Some(s) = &self.subs[sub] else { return };
        let (stream, session) = (s.stream, s.session);
        let window = &self.streams[stream].window;
        let lacking = nack
            .entries()
            .iter()
            .filter(|e| e.kind == NackKind::Chunks)
            .flat_map(|e| e.start..e.start.saturating_add(u64::from(e.len)))
            .take(64)
            .find(|&seq| window.chunk(seq).is_none());
        let Some(base) = lacking else { return };
        let mask = (0..64u64)
            .filter(|&i| {
                base.checked_add(i)
                    .is_some_and(|s| window.chunk(s).is_some())
            })
            .fold(0u64, |m, i| m | 1 << i);
        let have = Have {
            stream: window.stream(),
            session,
            base,
            mask,
        };
        let _ = self.tx.push_message(from, &Message::Have(have));
    }
}
