//! The members of each club, per stream, ordered by (joined, address):
//! what PEERS samples from without scanning every subscriber.
//!
//! A PEERS answer is a uniform sample of up to [`MAX_PEERS`] eligible
//! members; an asker that is itself a member gets only strictly older
//! ones, which in this order is a prefix found by binary search. Sampling
//! k of a prefix of n is Floyd's algorithm: k draws, no scan.
//!
//! Each list is a sorted `Vec`: joins carry the relay's clock, so a new
//! member is mostly an append; a leave or a MEMBER change is a binary
//! search and a `memmove` of the tail, cheap beside the O(N) scan per
//! request it replaces; an entry is its key alone, 40 bytes (no
//! per-entry node as a tree would have).

use std::collections::HashMap;
use std::net::SocketAddr;

use crate::Time;
use crate::rng::Rng;
use crate::wire::MAX_PEERS;

/// One member: its order key, which is also its address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Entry {
    joined: Time,
    addr: SocketAddr,
}

/// Per (stream slot, club), the members ordered by (joined, address).
#[derive(Debug, Default)]
pub(super) struct ClubIndex {
    clubs: HashMap<(u32, u8), Vec<Entry>>,
}

impl ClubIndex {
    /// Moves a subscriber's memberships on `stream` from the clubs in
    /// `old` to those in `new` (bit c: club c).
    pub(super) fn update(
        &mut self,
        stream: usize,
        joined: Time,
        addr: SocketAddr,
        old: u64,
        new: u64,
    ) {
        let Ok(stream) = u32::try_from(stream) else {
            return;
        };
        let entry = Entry { joined, addr };
        for club in 0..64u8 {
            let bit = 1u64 << club;
            match (old & bit != 0, new & bit != 0) {
                (true, false) => {
                    if let Some(list) = self.clubs.get_mut(&(stream, club)) {
                        if let Ok(at) = list.binary_search(&entry) {
                            list.remove(at);
                        }
                        if list.is_empty() {
                            self.clubs.remove(&(stream, club));
                        }
                    }
                }
                (false, true) => {
                    let list = self.clubs.entry((stream, club)).or_default();
                    if let Err(at) = list.binary_search(&entry) {
                        list.insert(at, entry);
                    }
                }
                _ => {}
            }
        }
    }

    /// Where the member (`joined`, `addr`) of `club` on `stream` stands:
    /// how many members are older, and how many there are in all; `None`
    /// if it is not a member.
    pub(super) fn rank(
        &self,
        stream: usize,
        club: u8,
        joined: Time,
        addr: SocketAddr,
    ) -> Option<(usize, usize)> {
        let stream = u32::try_from(stream).ok()?;
        let list = self.clubs.get(&(stream, club))?;
        let older = list.binary_search(&Entry { joined, addr }).ok()?;
        Some((older, list.len()))
    }

    /// Up to [`MAX_PEERS`] distinct members of `club` on `stream`, drawn
    /// uniformly and listed oldest first; with `older_than`, only members strictly older by
    /// (joined, address), which leaves out the asker when it is a member
    /// (when it is not, it is not in the list). Writes them to `out` and returns how many.
    pub(super) fn sample(
        &self,
        rng: &mut Rng,
        stream: usize,
        club: u8,
        older_than: Option<(Time, SocketAddr)>,
        out: &mut [SocketAddr; MAX_PEERS],
    ) -> usize {
        let Ok(stream) = u32::try_from(stream) else {
            return 0;
        };
        let Some(list) = self.clubs.get(&(stream, club)) else {
            return 0;
        };
        let list = match older_than {
            Some((joined, addr)) => {
                let end = list.partition_point(|e| *e < Entry { joined, addr });
                &list[..end]
            }
            None => list.as_slice(),
        };
        let n = list.len();
        let k = n.min(MAX_PEERS);
        let mut picked = [0usize; MAX_PEERS];
        // Floyd: for j in n-k..n, draw t in 0..=j; take t unless already
        // taken, then j. Every k-subset equally likely.
        for (count, j) in (n - k..n).enumerate() {
            let t = (rng.next_u64() % (j as u64 + 1)) as usize;
            let taken = picked[..count].contains(&t);
            picked[count] = if taken { j } else { t };
        }
        // Oldest first: a member choosing among older members prefers the
        // oldest, which keeps the club's tree shallow.
        picked[..k].sort_unstable();
        for (slot, &p) in out.iter_mut().zip(&picked[..k]) {
            *slot = list[p].addr;
        }
        k
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(i: u32) -> SocketAddr {
        SocketAddr::from(([10, 0, (i >> 8) as u8, i as u8], 4000))
    }

    /// Random joins, MEMBER changes and leaves: every sample is drawn from
    /// exactly the set a brute-force scan finds eligible, without
    /// duplicates, and never names the asker.
    #[test]
    fn agrees_with_a_scan() {
        let mut rng = Rng::new(7);
        let mut index = ClubIndex::default();
        // (stream, joined, member) per address slot.
        let mut subs: Vec<Option<(usize, Time, u64)>> = vec![None; 300];
        for step in 0..20_000u64 {
            let i = (rng.next_u64() % 300) as usize;
            let a = addr(i as u32);
            match (subs[i], rng.next_u64() % 3) {
                (None, _) => {
                    let s = (rng.next_u64() % 2) as usize;
                    let joined = Time::from_micros(step / 3);
                    let m = rng.next_u64() & 0b111;
                    index.update(s, joined, a, 0, m);
                    subs[i] = Some((s, joined, m));
                }
                (Some((s, j, m)), 0) => {
                    index.update(s, j, a, m, 0);
                    subs[i] = None;
                }
                (Some((s, j, m)), _) => {
                    let new = rng.next_u64() & 0b111;
                    index.update(s, j, a, m, new);
                    subs[i] = Some((s, j, new));
                }
            }
            let asker = (rng.next_u64() % 300) as usize;
            let Some((s, j, m)) = subs[asker] else {
                continue;
            };
            let club = (rng.next_u64() % 4) as u8;
            let older = (m >> club & 1 != 0).then_some((j, addr(asker as u32)));
            let eligible: Vec<SocketAddr> = (0..300)
                .filter_map(|o| {
                    let (os, oj, om) = subs[o]?;
                    let ok = os == s
                        && o != asker
                        && om >> club & 1 != 0
                        && older.is_none_or(|k| (oj, addr(o as u32)) < k);
                    ok.then_some(addr(o as u32))
                })
                .collect();
            let mut out = [addr(999); MAX_PEERS];
            let n = index.sample(&mut rng, s, club, older, &mut out);
            assert_eq!(n, eligible.len().min(MAX_PEERS));
            for (x, a) in out[..n].iter().enumerate() {
                assert!(eligible.contains(a), "not eligible: {a}");
                assert_ne!(*a, addr(asker as u32));
                assert!(!out[..x].contains(a), "duplicate: {a}");
            }
        }
    }

    /// Sampling 32 of 64 many times: each member is picked close to half
    /// the time (fixed seed, so the bound cannot flake).
    #[test]
    fn samples_uniformly() {
        let mut rng = Rng::new(11);
        let mut index = ClubIndex::default();
        for i in 0..64 {
            index.update(0, Time::from_micros(u64::from(i)), addr(i), 0, 1);
        }
        let mut hits = [0u32; 64];
        let rounds = 20_000;
        for _ in 0..rounds {
            let mut out = [addr(999); MAX_PEERS];
            let n = index.sample(&mut rng, 0, 0, None, &mut out);
            assert_eq!(n, MAX_PEERS);
            for a in &out[..n] {
                let i = (0..64).position(|i| addr(i) == *a).unwrap_or(99);
                hits[i] += 1;
            }
        }
        // Expected 10,000 each, standard deviation about 71.
        for (i, &h) in hits.iter().enumerate() {
            assert!((9_600..=10_400).contains(&h), "member {i}: {h}");
        }
        // Older-only: a prefix, never the asker or anyone newer.
        let mut out = [addr(999); MAX_PEERS];
        let n = index.sample(
            &mut rng,
            0,
            0,
            Some((Time::from_micros(5), addr(5))),
            &mut out,
        );
        assert_eq!(n, 5);
        assert!(out[..n].iter().all(|a| (0..5).any(|i| addr(i) == *a)));
    }
}
