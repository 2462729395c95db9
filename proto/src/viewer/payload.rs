//! A played chunk's bytes, shared with the window that verified them.

use std::fmt;
use std::ops::Deref;

use crate::transmit::SharedBuf;
use crate::wire::DATA_HEADER_LEN;

/// The payload of a DATA datagram the window holds: the datagram itself
/// (one reference count), read past its header. Playing a chunk neither
/// allocates nor copies; the bytes are freed once the window and every
/// owner of a `Payload` let go of them. A `Payload` pins the whole
/// datagram's buffer (up to about 1.5 KB), and a window slot it pins is
/// given a new buffer when reused: hold it briefly, and copy it
/// (`Vec::from`) to keep it. Two are equal when their bytes are.
#[derive(Clone)]
pub struct Payload(SharedBuf);

impl Payload {
    /// The payload of the DATA datagram `datagram`.
    pub(crate) fn of(datagram: &SharedBuf) -> Self {
        Self(SharedBuf::clone(datagram))
    }
}

impl Deref for Payload {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.0.get(DATA_HEADER_LEN..).unwrap_or_default()
    }
}

impl PartialEq for Payload {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl Eq for Payload {}

impl AsRef<[u8]> for Payload {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Payload({} bytes)", self.len())
    }
}

impl From<Payload> for Vec<u8> {
    fn from(p: Payload) -> Self {
        p.to_vec()
    }
}
