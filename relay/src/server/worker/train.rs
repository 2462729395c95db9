//! Groups a worker's outgoing datagrams into GSO trains.
//!
//! The relay core yields fan-out subscriber by subscriber, so consecutive
//! datagrams to one address are what one turn made ready for that
//! subscriber. A train is a run of them that the kernel can cut back into
//! datagrams: all but the last of one length, at most [`MAX_SEGMENTS`]
//! and [`MAX_TRAIN_BYTES`]. Nothing is ever held back to fill a train.

use std::net::SocketAddr;
use std::time::Instant;

use crate::io::{Backend, MAX_SEGMENTS, MAX_TRAIN_BYTES, SharedBuf};

/// The train being built.
#[derive(Debug)]
pub(crate) struct TrainBuilder {
    dst: Option<SocketAddr>,
    segments: Vec<SharedBuf>,
    bytes: usize,
}

impl Default for TrainBuilder {
    fn default() -> Self {
        Self {
            dst: None,
            segments: Vec::with_capacity(MAX_SEGMENTS),
            bytes: 0,
        }
    }
}

impl TrainBuilder {
    /// Adds a datagram, pushing the current train to `backend` first when
    /// the datagram cannot join it.
    pub(crate) fn add(
        &mut self,
        backend: &mut dyn Backend,
        dst: SocketAddr,
        buf: SharedBuf,
        born: Instant,
    ) {
        let fits = self.dst == Some(dst)
            && self.segments.len() < MAX_SEGMENTS
            && self.bytes + buf.len() <= MAX_TRAIN_BYTES
            // Every segment before the last has the first one's length, and
            // the last may be shorter: a datagram longer than the first, or
            // any datagram after a shorter one, starts a new train.
            && self.segments.first().is_some_and(|f| buf.len() <= f.len())
            && self.segments.last().is_some_and(|l| {
                self.segments.first().is_some_and(|f| l.len() == f.len())
            });
        if !fits {
            self.flush(backend, born);
            self.dst = Some(dst);
        }
        self.bytes += buf.len();
        self.segments.push(buf);
    }

    /// Pushes the current train, if any.
    pub(crate) fn flush(&mut self, backend: &mut dyn Backend, born: Instant) {
        if let Some(dst) = self.dst.take()
            && !self.segments.is_empty()
        {
            backend.push(dst, &self.segments, born);
        }
        self.segments.clear();
        self.bytes = 0;
    }
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
        fn push(&mut self, dst: SocketAddr, segments: &[SharedBuf], _born: Instant) {
            self.0
                .push((dst, segments.iter().map(|s| s.len()).collect()));
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
        let mut t = TrainBuilder::default();
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
        let mut t = TrainBuilder::default();
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
}
