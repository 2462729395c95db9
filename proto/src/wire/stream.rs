//! The header every stream datagram starts with: its type and its stream.
//!
//! DATA, PARITY, MANIFEST and DESCRIPTOR name their stream at a fixed
//! offset. A relay reads that header once per datagram, routes the datagram
//! and looks its stream up by it, and hands it on to the stream's window,
//! which parses the rest once ([`crate::window::Window::ingest_header`]).

use super::data::DATA_STREAM_AT;
use super::descriptor::DESCRIPTOR_STREAM_AT;
use super::manifest::MANIFEST_STREAM_AT;
use super::parity::PARITY_STREAM_AT;
use super::{DecodeError, MessageType, peek_type};
use crate::StreamId;
use crate::stream_id::STREAM_ID_LEN;

/// The type and stream of a DATA, PARITY, MANIFEST or DESCRIPTOR datagram,
/// read without checking the rest (the window that takes it does).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamHeader<'a> {
    ty: MessageType,
    stream: StreamId,
    bytes: &'a [u8],
}

impl<'a> StreamHeader<'a> {
    /// The header of a stream datagram; `None` for any other datagram, or
    /// one too short to name its stream.
    pub fn new(bytes: &'a [u8]) -> Option<Self> {
        Self::of(peek_type(bytes).ok()?, bytes).ok().flatten()
    }

    /// The header of `bytes`, whose type [`peek_type`] read as `ty`;
    /// `Ok(None)` if `ty` is not a stream datagram's.
    pub(crate) fn of(ty: MessageType, bytes: &'a [u8]) -> Result<Option<Self>, DecodeError> {
        let at = match ty {
            MessageType::Data => DATA_STREAM_AT,
            MessageType::Parity => PARITY_STREAM_AT,
            MessageType::Manifest => MANIFEST_STREAM_AT,
            MessageType::Descriptor => DESCRIPTOR_STREAM_AT,
            _ => return Ok(None),
        };
        let id = bytes
            .get(at..at + STREAM_ID_LEN)
            .ok_or(DecodeError::Truncated)?;
        let mut stream = [0; STREAM_ID_LEN];
        stream.copy_from_slice(id);
        Ok(Some(Self {
            ty,
            stream: StreamId(stream),
            bytes,
        }))
    }

    /// DATA, PARITY, MANIFEST or DESCRIPTOR.
    pub fn message_type(&self) -> MessageType {
        self.ty
    }

    /// The stream it names.
    pub fn stream(&self) -> StreamId {
        self.stream
    }

    /// The whole datagram.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }
}
