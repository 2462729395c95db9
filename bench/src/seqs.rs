//! Which sequence numbers one viewer has seen: a sliding bitmap behind the
//! highest seq, enough to tell a duplicate from a late first arrival.

/// How a seq compares with what came before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// First time, and above everything seen so far.
    InOrder,
    /// First time, below something already seen.
    OutOfOrder,
    /// Seen before.
    Duplicate,
    /// So far below the highest seq that the bitmap no longer covers it:
    /// surely out of order, possibly also a duplicate.
    TooOld,
}

/// See the module docs.
#[derive(Debug, Clone)]
pub struct SeqWindow {
    bits: Box<[u64]>,
    /// Highest seq seen, if any.
    highest: Option<u64>,
}

impl SeqWindow {
    /// A window covering `span` seqs behind the highest (rounded up to a
    /// power of two, at least 64).
    pub fn new(span: usize) -> Self {
        let words = span.max(64).next_power_of_two() / 64;
        Self {
            bits: vec![0; words].into_boxed_slice(),
            highest: None,
        }
    }

    /// Seqs covered behind the highest.
    pub fn span(&self) -> u64 {
        self.bits.len() as u64 * 64
    }

    /// The highest seq seen.
    pub fn highest(&self) -> Option<u64> {
        self.highest
    }

    /// Takes in `seq`.
    pub fn insert(&mut self, seq: u64) -> Arrival {
        let span = self.span();
        match self.highest {
            Some(high) if seq <= high => {
                if high - seq >= span {
                    return Arrival::TooOld;
                }
                if self.test_and_set(seq) {
                    Arrival::Duplicate
                } else {
                    Arrival::OutOfOrder
                }
            }
            Some(high) => {
                // Forget the seqs the window slides past.
                if seq - high >= span {
                    self.bits.fill(0);
                } else {
                    for s in high + 1..seq {
                        self.clear(s);
                    }
                }
                self.clear(seq);
                self.test_and_set(seq);
                self.highest = Some(seq);
                Arrival::InOrder
            }
            None => {
                self.test_and_set(seq);
                self.highest = Some(seq);
                Arrival::InOrder
            }
        }
    }

    fn position(&self, seq: u64) -> (usize, u64) {
        let bit = seq % self.span();
        ((bit / 64) as usize, 1 << (bit % 64))
    }

    fn clear(&mut self, seq: u64) {
        let (word, mask) = self.position(seq);
        self.bits[word] &= !mask;
    }

    /// Sets `seq`'s bit; whether it was already set.
    fn test_and_set(&mut self, seq: u64) -> bool {
        let (word, mask) = self.position(seq);
        let was = self.bits[word] & mask != 0;
        self.bits[word] |= mask;
        was
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_and_duplicates_are_told_apart() {
        let mut w = SeqWindow::new(64);
        assert_eq!(w.insert(10), Arrival::InOrder);
        assert_eq!(w.insert(12), Arrival::InOrder);
        assert_eq!(w.insert(11), Arrival::OutOfOrder);
        assert_eq!(w.insert(11), Arrival::Duplicate);
        assert_eq!(w.insert(12), Arrival::Duplicate);
        assert_eq!(w.insert(13), Arrival::InOrder);
        assert_eq!(w.highest(), Some(13));
    }

    #[test]
    fn the_window_slides_and_forgets() {
        let mut w = SeqWindow::new(64);
        assert_eq!(w.span(), 64);
        w.insert(0);
        w.insert(5);
        // 69 reuses 5's bit: 5 is forgotten, so 69 is new.
        assert_eq!(w.insert(69), Arrival::InOrder);
        assert_eq!(w.insert(5), Arrival::TooOld);
        assert_eq!(w.insert(6), Arrival::OutOfOrder);
        // A jump past the whole span clears everything.
        assert_eq!(w.insert(1_000), Arrival::InOrder);
        assert_eq!(w.insert(999), Arrival::OutOfOrder);
        assert_eq!(w.insert(1_000), Arrival::Duplicate);
    }

    #[test]
    fn every_seq_once_in_any_order_has_no_duplicates() {
        let mut w = SeqWindow::new(256);
        let mut dups = 0;
        for block in 0..100u64 {
            for i in [3, 1, 0, 2, 7, 5, 4, 6] {
                if w.insert(block * 8 + i) == Arrival::Duplicate {
                    dups += 1;
                }
            }
        }
        assert_eq!(dups, 0);
    }
}
