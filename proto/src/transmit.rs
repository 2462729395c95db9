//! Outgoing datagrams and the pooled queue that holds them.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;

use crate::wire::{BufferTooSmall, MAX_DATAGRAM_LEN, Message};

/// A datagram in a reference-counted buffer: how stored chunks are shared
/// with IO shells that send asynchronously (io_uring) or from several
/// threads, without copying. A holder that finds itself the only owner
/// (`Arc::get_mut`) may reuse the buffer.
pub type SharedBuf = Arc<Vec<u8>>;

/// A datagram to send. The payload borrows from the state machine that
/// produced it and is valid until its next call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transmit<'a> {
    /// Where to send it.
    pub dst: SocketAddr,
    /// The datagram.
    pub payload: &'a [u8],
    /// The IP hop limit (TTL) to send it with, for a datagram that must
    /// not travel far (a peer's first PUNCH, SPEC §11.9); `None`: the
    /// socket's default.
    pub ttl: Option<u8>,
}

/// A datagram to send whose buffer the IO shell may keep: how the relay
/// hands out stored chunks (and its control replies) without copying, to
/// shells that send asynchronously or in batches, and how a peer hands the
/// simulator the chunks it forwards. Reading it costs what a [`Transmit`]
/// does; keeping it costs one reference count (`SharedBuf::clone`), and
/// window slots are not rewritten while shared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SharedTransmit<'a> {
    /// Where to send it.
    pub dst: SocketAddr,
    /// The datagram.
    pub payload: &'a SharedBuf,
    /// As [`Transmit::ttl`]; the relay's are always `None`.
    pub ttl: Option<u8>,
}

impl<'a> SharedTransmit<'a> {
    /// The same datagram as a [`Transmit`], for a caller that copies it.
    pub fn borrowed(self) -> Transmit<'a> {
        Transmit {
            dst: self.dst,
            payload: self.payload,
            ttl: self.ttl,
        }
    }
}

/// A FIFO of datagrams whose buffers are recycled: once warm it does not
/// allocate. Queued datagrams are [`SharedBuf`]s, so stored chunks can be
/// queued without a copy and IO shells can keep what they send.
#[derive(Debug, Default)]
pub(crate) struct TxQueue {
    queue: VecDeque<(SocketAddr, SharedBuf)>,
    free: Vec<SharedBuf>,
    scratch: Vec<Vec<u8>>,
    current: Option<(SocketAddr, SharedBuf)>,
}

impl TxQueue {
    /// A scratch buffer to build into; hand it back with
    /// [`TxQueue::recycle`].
    pub(crate) fn buffer(&mut self) -> Vec<u8> {
        let mut buf = self
            .scratch
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(MAX_DATAGRAM_LEN));
        buf.clear();
        buf
    }

    /// Returns a scratch buffer to the pool.
    pub(crate) fn recycle(&mut self, buf: Vec<u8>) {
        self.scratch.push(buf);
    }

    /// Queues a datagram of about `len` bytes written by `fill` into a
    /// pooled buffer.
    ///
    /// A new buffer is made `len` long, not a whole datagram: where sent
    /// buffers are kept by the IO (the simulator keeps each until it is
    /// delivered) none comes back to the pool, and a 52-byte HAVE held
    /// 1,452 bytes while in flight; where they do come back, a reused
    /// buffer grows to the largest datagram it has carried and stays so.
    fn push_with(&mut self, dst: SocketAddr, len: usize, fill: impl FnOnce(&mut Vec<u8>)) {
        let mut buf = loop {
            match self.free.pop() {
                Some(b) if Arc::strong_count(&b) == 1 => break b,
                Some(_) => {}
                None => break SharedBuf::new(Vec::with_capacity(len.min(MAX_DATAGRAM_LEN))),
            }
        };
        if let Some(v) = Arc::get_mut(&mut buf) {
            v.clear();
            fill(v);
            self.queue.push_back((dst, buf));
        }
    }

    /// Queues a shared datagram without copying it.
    pub(crate) fn push_shared(&mut self, dst: SocketAddr, buf: &SharedBuf) {
        self.queue.push_back((dst, SharedBuf::clone(buf)));
    }

    /// Queues a copy of `bytes`.
    pub(crate) fn push_bytes(&mut self, dst: SocketAddr, bytes: &[u8]) {
        self.push_with(dst, bytes.len(), |v| v.extend_from_slice(bytes));
    }

    /// Encodes and queues `msg`.
    pub(crate) fn push_message(
        &mut self,
        dst: SocketAddr,
        msg: &Message<'_>,
    ) -> Result<usize, BufferTooSmall> {
        let mut result = Ok(0);
        let len = msg.buffer_len();
        self.push_with(dst, len, |v| {
            v.resize(len, 0);
            result = msg.emit(v);
            v.truncate(*result.as_ref().unwrap_or(&0));
        });
        if result.is_err() {
            self.queue.pop_back();
        }
        result
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    pub(crate) fn len(&self) -> usize {
        self.queue.len()
    }

    /// The next datagram; the previous one's buffer is recycled.
    pub(crate) fn pop(&mut self) -> Option<Transmit<'_>> {
        if let Some((_, buf)) = self.current.take() {
            self.give_back(buf);
        }
        self.current = self.queue.pop_front();
        self.current.as_ref().map(|(dst, buf)| Transmit {
            dst: *dst,
            payload: buf,
            ttl: None,
        })
    }

    /// As [`TxQueue::pop`], lending the shared buffer: a caller that keeps
    /// it (clones it) takes it out of the pool, since a buffer still held
    /// elsewhere is never reused.
    pub(crate) fn pop_shared(&mut self) -> Option<SharedTransmit<'_>> {
        if let Some((_, buf)) = self.current.take() {
            self.give_back(buf);
        }
        self.current = self.queue.pop_front();
        self.current.as_ref().map(|(dst, payload)| SharedTransmit {
            dst: *dst,
            payload,
            ttl: None,
        })
    }

    /// Keeps a sent buffer for reuse, unless someone else (a window) still
    /// holds it.
    fn give_back(&mut self, buf: SharedBuf) {
        if Arc::strong_count(&buf) == 1 && self.free.len() < 1024 {
            self.free.push(buf);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StreamId;
    use crate::wire::{HAVE_LEN, Have, Message};

    fn have() -> Message<'static> {
        Message::Have(Have {
            stream: StreamId([7; 32]),
            session: 9,
            base: 1000,
            mask: 0b1011,
        })
    }

    /// A datagram the IO keeps (the simulator keeps each in flight) holds
    /// a buffer of its own size, not a whole datagram's; a buffer that
    /// comes back is reused and grows as needed.
    #[test]
    fn a_small_message_gets_a_small_buffer_and_pooled_buffers_grow() {
        let to = SocketAddr::from(([192, 0, 2, 1], 9));
        let mut q = TxQueue::default();
        assert_eq!(q.push_message(to, &have()), Ok(HAVE_LEN));
        let kept = SharedBuf::clone(q.pop_shared().expect("queued").payload);
        assert_eq!(kept.len(), HAVE_LEN);
        assert!(kept.capacity() < 2 * HAVE_LEN, "{}", kept.capacity());
        // Handed back (nobody keeps it), then reused for a bigger one.
        drop(kept);
        assert!(q.pop_shared().is_none());
        let big = vec![3u8; 1200];
        q.push_bytes(to, &big);
        let sent = q.pop_shared().expect("queued");
        assert_eq!(sent.payload.as_slice(), big.as_slice());
    }
}
