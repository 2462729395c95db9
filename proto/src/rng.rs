//! A small, seeded, deterministic pseudo-random generator (xorshift64*,
//! Vigna 2016) for choices that must be reproducible from a seed: which
//! peers to sample, which datagrams a test drops, what junk a flood sends.
//! Not for secrets: those come from the OS (the caller's job).

/// xorshift64*: 64 bits of state, one shift-xor round and a multiply per
/// draw. Every seed gives a full-period sequence (a zero seed is made odd).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (any value; `seed | 1` is the state, so a
    /// seed and its even neighbour give the same sequence).
    pub fn new(seed: u64) -> Self {
        Self(seed | 1)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A value in `lo..=hi` (`lo` when `hi < lo`); slightly biased towards
    /// low values unless the range divides 2^64, which is fine for sampling.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        let span = hi.saturating_sub(lo) as u64 + 1;
        lo + (self.next_u64() % span) as usize
    }

    /// True with probability `p` (0 to 1).
    pub fn chance(&mut self, p: f64) -> bool {
        ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64) < p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sequence_is_xorshift64_star() {
        // The first draws from seed 1, by the published recurrence:
        // x ^= x >> 12; x ^= x << 25; x ^= x >> 27; out = x * 0x2545f4914f6cdd1d.
        let mut x: u64 = 1;
        let mut reference = Vec::new();
        for _ in 0..4 {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            reference.push(x.wrapping_mul(0x2545_f491_4f6c_dd1d));
        }
        let mut rng = Rng::new(0);
        let drawn: Vec<u64> = (0..4).map(|_| rng.next_u64()).collect();
        assert_eq!(drawn, reference);
        assert_eq!(drawn[0], 0x47e4_ce4b_896c_dd1d);
    }

    #[test]
    fn ranges_and_chances_stay_in_bounds() {
        let mut rng = Rng::new(42);
        for _ in 0..10_000 {
            let v = rng.range(3, 7);
            assert!((3..=7).contains(&v));
        }
        assert_eq!(rng.range(5, 5), 5);
        assert!(!rng.chance(0.0));
        assert!(rng.chance(1.0));
        let hits = (0..10_000).filter(|_| rng.chance(0.25)).count();
        assert!((2_000..3_000).contains(&hits), "{hits}");
    }
}
