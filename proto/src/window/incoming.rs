//! A datagram handed to ingest, and how a slot keeps it.
//!
//! A borrowed datagram (an IO shell's receive buffer) is copied into the
//! slot's own buffer. A shared one (a [`SharedBuf`] its caller hands over:
//! the simulator's, which carries one buffer from sender to receivers) is
//! adopted as it is: one chunk is then one allocation however many
//! windows hold it. Either way the checks are the same, made on the same
//! bytes, and a slot never writes into a buffer anyone else holds (see
//! [`super::slots::writable`]), so an adopted buffer stays as it arrived.

use std::sync::Arc;

use super::slots;
use crate::transmit::SharedBuf;

/// A datagram for ingest: borrowed, or shared with its caller.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Incoming<'a> {
    /// Copied into the slot if kept.
    Borrowed(&'a [u8]),
    /// Adopted by the slot if kept: the slot holds one more reference.
    Shared(&'a SharedBuf),
}

impl<'a> Incoming<'a> {
    /// The datagram.
    pub(crate) fn bytes(self) -> &'a [u8] {
        match self {
            Self::Borrowed(b) => b,
            Self::Shared(b) => b.as_slice(),
        }
    }

    /// Makes `buf` hold this datagram: the shared buffer itself, or a copy
    /// in a buffer only the slot holds (its own, reused, when nobody else
    /// holds it).
    pub(super) fn keep_in(self, buf: &mut SharedBuf) {
        match self {
            Self::Borrowed(b) => slots::writable(buf).extend_from_slice(b),
            Self::Shared(b) => *buf = Arc::clone(b),
        }
    }
}
