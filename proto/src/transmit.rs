//! Outgoing datagrams and the pooled queue that holds them.

use std::collections::VecDeque;
use std::net::SocketAddr;

use crate::wire::{BufferTooSmall, MAX_DATAGRAM_LEN, Message};

/// A datagram to send. The payload borrows from the state machine that
/// produced it and is valid until its next call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transmit<'a> {
    /// Where to send it.
    pub dst: SocketAddr,
    /// The datagram.
    pub payload: &'a [u8],
}

/// A FIFO of owned datagrams whose buffers are recycled: once warm it does
/// not allocate.
#[derive(Debug, Default)]
pub(crate) struct TxQueue {
    queue: VecDeque<(SocketAddr, Vec<u8>)>,
    free: Vec<Vec<u8>>,
    current: Option<(SocketAddr, Vec<u8>)>,
}

impl TxQueue {
    /// A buffer to fill; hand it back with [`TxQueue::push`].
    pub(crate) fn buffer(&mut self) -> Vec<u8> {
        let mut buf = self
            .free
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(MAX_DATAGRAM_LEN));
        buf.clear();
        buf
    }

    /// Returns an unused buffer to the pool.
    pub(crate) fn recycle(&mut self, buf: Vec<u8>) {
        self.free.push(buf);
    }

    pub(crate) fn push(&mut self, dst: SocketAddr, buf: Vec<u8>) {
        self.queue.push_back((dst, buf));
    }

    /// Queues a copy of `bytes`.
    pub(crate) fn push_bytes(&mut self, dst: SocketAddr, bytes: &[u8]) {
        let mut buf = self.buffer();
        buf.extend_from_slice(bytes);
        self.push(dst, buf);
    }

    /// Encodes and queues `msg`.
    pub(crate) fn push_message(
        &mut self,
        dst: SocketAddr,
        msg: &Message<'_>,
    ) -> Result<usize, BufferTooSmall> {
        let mut buf = self.buffer();
        buf.resize(msg.buffer_len(), 0);
        let len = msg.emit(&mut buf)?;
        buf.truncate(len);
        self.push(dst, buf);
        Ok(len)
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
            self.free.push(buf);
        }
        self.current = self.queue.pop_front();
        self.current.as_ref().map(|(dst, buf)| Transmit {
            dst: *dst,
            payload: buf,
        })
    }
}
