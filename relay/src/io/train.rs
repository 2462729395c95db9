//! A GSO train: datagrams to one address that the kernel can send as one
//! UDP_SEGMENT message and cut back into the same datagrams. The rule,
//! stated here once and kept by [`Train::push`], so that no backend has
//! to check it: 1..=[`MAX_SEGMENTS`] datagrams, at most
//! [`MAX_TRAIN_BYTES`] in all, none empty, every one but the last of the
//! first one's length and the last no longer.
//!
//! The worker builds trains as the relay core yields its sends: the core
//! yields fan-out subscriber by subscriber, so consecutive datagrams to
//! one address are what one turn made ready for that subscriber.
//! [`Train::add`] pushes the train to the backend as soon as the next
//! datagram cannot join it; nothing is ever held back to fill a train.

use std::net::SocketAddr;
use std::time::Instant;

use super::{Backend, MAX_SEGMENTS, MAX_TRAIN_BYTES, SharedBuf};

/// Datagrams to one address, shaped for one GSO send. See the module docs.
#[derive(Debug, Clone)]
pub struct Train {
    dst: Option<SocketAddr>,
    segments: Vec<SharedBuf>,
    bytes: usize,
}

impl Default for Train {
    fn default() -> Self {
        Self {
            dst: None,
            segments: Vec::with_capacity(MAX_SEGMENTS),
            bytes: 0,
        }
    }
}

impl Train {
    /// Adds `buf` to `dst` if it may join this train under the rule (an
    /// empty train takes any datagram); gives it back otherwise.
    pub fn push(&mut self, dst: SocketAddr, buf: SharedBuf) -> Result<(), SharedBuf> {
        if self.segments.is_empty() {
            self.dst = Some(dst);
        } else if !self.fits(dst, buf.len()) {
            return Err(buf);
        }
        self.bytes += buf.len();
        self.segments.push(buf);
        Ok(())
    }

    /// A train of `segments` to `dst`; None if they break the rule (or
    /// are none).
    pub fn of(dst: SocketAddr, segments: &[SharedBuf]) -> Option<Self> {
        let mut train = Self::default();
        for segment in segments {
            train.push(dst, SharedBuf::clone(segment)).ok()?;
        }
        (!train.segments.is_empty()).then_some(train)
    }

    /// Whether a `len`-byte datagram to `dst` may join this non-empty
    /// train.
    fn fits(&self, dst: SocketAddr, len: usize) -> bool {
        let (Some(first), Some(last)) = (self.segments.first(), self.segments.last()) else {
            return false;
        };
        self.dst == Some(dst)
            && self.segments.len() < MAX_SEGMENTS
            && self.bytes + len <= MAX_TRAIN_BYTES
            // Every segment before the last has the first one's length, and
            // the last may be shorter but not empty: a datagram longer than
            // the first, any datagram after a shorter one, and an empty one
            // start a new train.
            && len > 0
            && len <= first.len()
            && last.len() == first.len()
    }

    /// Adds a datagram, pushing the current train to `backend` first when
    /// the datagram cannot join it.
    pub fn add(
        &mut self,
        backend: &mut dyn Backend,
        dst: SocketAddr,
        buf: SharedBuf,
        born: Instant,
    ) {
        if let Err(buf) = self.push(dst, buf) {
            self.flush(backend, born);
            self.dst = Some(dst);
            self.bytes = buf.len();
            self.segments.push(buf);
        }
    }

    /// Pushes the current train to `backend`, if any, and empties it.
    pub fn flush(&mut self, backend: &mut dyn Backend, born: Instant) {
        if !self.segments.is_empty() {
            backend.push(self, born);
        }
        self.clear();
    }

    /// Moves the datagrams, in order, onto the end of `into` (no reference
    /// count changes hands) and empties the train.
    pub fn take_segments(&mut self, into: &mut Vec<SharedBuf>) {
        into.append(&mut self.segments);
        self.clear();
    }

    /// Takes the datagrams out, in order, emptying the train.
    pub fn drain(&mut self) -> std::vec::Drain<'_, SharedBuf> {
        self.dst = None;
        self.bytes = 0;
        self.segments.drain(..)
    }

    /// Empties the train, letting go of its buffers.
    pub fn clear(&mut self) {
        self.dst = None;
        self.segments.clear();
        self.bytes = 0;
    }

    /// Where the train goes; None while it is empty.
    pub fn dst(&self) -> Option<SocketAddr> {
        self.dst
    }

    /// The datagrams, in order.
    pub fn segments(&self) -> &[SharedBuf] {
        &self.segments
    }

    /// Payload bytes of all datagrams.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The UDP_SEGMENT size to send the train with as one message: the
    /// first datagram's length, when there are several.
    pub fn segment_size(&self) -> Option<u16> {
        match self.segments.as_slice() {
            [first, _, ..] => u16::try_from(first.len()).ok(),
            _ => None,
        }
    }
}

/// Pushes `segments` to `dst` as one train (they must keep the rule):
/// the backends' tests.
#[cfg(test)]
pub(crate) fn push(backend: &mut dyn Backend, dst: SocketAddr, segments: &[SharedBuf]) {
    let mut train = Train::of(dst, segments).expect("a well-shaped train");
    backend.push(&mut train, Instant::now());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::{BackendStats, Sink};
    use std::io;
    use std::time::Duration;

    #[derive(Default)]
    struct Recorder(Vec<(SocketAddr, Vec<usize>)>);

    impl Backend for Recorder {
        fn name(&self) -> &'static str {
            "recorder"
        }
        fn local_addr(&self) -> SocketAddr {
            SocketAddr::from(([127, 0, 0, 1], 1))
        }
        fn gso(&self) -> bool {
            true
        }
        fn push(&mut self, train: &mut Train, _born: Instant) {
            let dst = train.dst().expect("a pushed train has an address");
            self.0
                .push((dst, train.segments().iter().map(|s| s.len()).collect()));
        }
        fn turn(&mut self, _: Option<Duration>, _: &mut dyn Sink) -> io::Result<()> {
            Ok(())
        }
        fn stats(&self) -> BackendStats {
            BackendStats::default()
        }
    }

    fn buf(len: usize) -> SharedBuf {
        SharedBuf::new(vec![0; len])
    }

    #[test]
    fn runs_of_equal_length_to_one_address_make_one_train() {
        let (a, b) = (
            SocketAddr::from(([127, 0, 0, 1], 2)),
            SocketAddr::from(([127, 0, 0, 1], 3)),
        );
        let mut r = Recorder::default();
        let mut t = Train::default();
        let now = Instant::now();
        for len in [440, 1377, 1377, 1377, 900, 1377] {
            t.add(&mut r, a, buf(len), now);
        }
        t.add(&mut r, b, buf(1377), now);
        t.flush(&mut r, now);
        assert_eq!(
            r.0,
            vec![
                (a, vec![440]),
                (a, vec![1377, 1377, 1377, 900]),
                (a, vec![1377]),
                (b, vec![1377]),
            ]
        );
    }

    #[test]
    fn trains_respect_segment_and_byte_limits() {
        let a = SocketAddr::from(([127, 0, 0, 1], 2));
        let mut r = Recorder::default();
        let mut t = Train::default();
        let now = Instant::now();
        for _ in 0..100 {
            t.add(&mut r, a, buf(1377), now);
        }
        t.flush(&mut r, now);
        assert!(
            r.0.iter().all(|(_, segs)| segs.len() <= MAX_SEGMENTS
                && segs.iter().sum::<usize>() <= MAX_TRAIN_BYTES)
        );
        assert_eq!(r.0.iter().map(|(_, s)| s.len()).sum::<usize>(), 100);
        assert_eq!(r.0.len(), 3, "47 + 47 + 6");
    }

    /// The trains `lens` (datagrams to one address) make, with the
    /// segment size each is sent with.
    fn shape(lens: &[usize]) -> Vec<(Vec<usize>, Option<u16>)> {
        let a = SocketAddr::from(([127, 0, 0, 1], 2));
        let mut out = Vec::new();
        let mut t = Train::default();
        let mut take = |t: &Train| {
            let lens = t.segments().iter().map(|s| s.len()).collect();
            out.push((lens, t.segment_size()));
        };
        for &len in lens {
            if let Err(b) = t.push(a, buf(len)) {
                take(&t);
                t.clear();
                t.push(a, b).expect("an empty train takes any datagram");
            }
        }
        if !t.segments().is_empty() {
            take(&t);
        }
        out
    }

    #[test]
    fn gso_only_for_well_shaped_trains() {
        assert_eq!(
            shape(&[1377, 1377, 400]),
            [(vec![1377, 1377, 400], Some(1377))]
        );
        assert_eq!(shape(&[1377, 1377]), [(vec![1377, 1377], Some(1377))]);
        assert_eq!(shape(&[1377]), [(vec![1377], None)], "one datagram");
        assert_eq!(
            shape(&[1000, 500, 1000]),
            [(vec![1000, 500], Some(1000)), (vec![1000], None)],
            "short middle"
        );
        assert_eq!(
            shape(&[1000, 1001]),
            [(vec![1000], None), (vec![1001], None)],
            "long last"
        );
        assert_eq!(shape(&[0, 0]), [(vec![0], None), (vec![0], None)], "empty");
        assert_eq!(
            shape(&[1000, 0]),
            [(vec![1000], None), (vec![0], None)],
            "empty last"
        );
        let too_many = shape(&[100; MAX_SEGMENTS + 1]);
        assert_eq!(too_many.len(), 2, "too many");
        assert_eq!(too_many[0].0.len(), MAX_SEGMENTS);
        let too_big = shape(&[1400; 47]);
        assert_eq!(too_big.len(), 2, "too many bytes");
        assert_eq!(too_big[0].0.len(), 46);
        assert_eq!(shape(&[]), []);
    }

    #[test]
    fn a_train_to_another_address_is_refused() {
        let mut t = Train::default();
        t.push(SocketAddr::from(([127, 0, 0, 1], 2)), buf(10))
            .expect("first");
        assert!(
            t.push(SocketAddr::from(([127, 0, 0, 1], 3)), buf(10))
                .is_err()
        );
        assert_eq!((t.segments().len(), t.bytes()), (1, 10));
    }
}
