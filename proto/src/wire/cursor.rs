//! Bounds-checked big-endian reading and writing over byte slices.
//!
//! Every decoder reads through [`Reader`], so no field access can panic: a
//! short buffer becomes [`DecodeError::Truncated`].

use super::DecodeError;

/// Reads fields front to back from a datagram.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, pos: 0 }
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self.pos.checked_add(n).ok_or(DecodeError::Truncated)?;
        let out = self
            .bytes
            .get(self.pos..end)
            .ok_or(DecodeError::Truncated)?;
        self.pos = end;
        Ok(out)
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }

    pub(crate) fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    /// A reserved field: must be zero on receipt.
    pub(crate) fn reserved(&mut self, n: usize) -> Result<(), DecodeError> {
        if self.take(n)?.iter().all(|&b| b == 0) {
            Ok(())
        } else {
            Err(DecodeError::Reserved)
        }
    }

    /// Everything not yet read.
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        let out = self.bytes.get(self.pos..).unwrap_or_default();
        self.pos = self.bytes.len();
        out
    }

    /// Decoding must have consumed the whole datagram.
    pub(crate) fn finish(&self) -> Result<(), DecodeError> {
        if self.pos == self.bytes.len() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes)
        }
    }
}

/// Writes fields front to back into a caller-owned buffer.
#[derive(Debug)]
pub(crate) struct Writer<'a> {
    out: &'a mut [u8],
    pos: usize,
}

/// The caller's buffer is too small for the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("output buffer too small: need {need} bytes, have {have}")]
pub struct BufferTooSmall {
    /// Bytes the message needs.
    pub need: usize,
    /// Bytes the buffer has.
    pub have: usize,
}

impl<'a> Writer<'a> {
    /// Fails up front if `out` cannot hold `len` bytes, so the puts below
    /// never run short.
    pub(crate) fn new(out: &'a mut [u8], len: usize) -> Result<Self, BufferTooSmall> {
        if out.len() < len {
            return Err(BufferTooSmall {
                need: len,
                have: out.len(),
            });
        }
        Ok(Self { out, pos: 0 })
    }

    pub(crate) fn put(&mut self, bytes: &[u8]) {
        let end = self.pos + bytes.len();
        if let Some(dst) = self.out.get_mut(self.pos..end) {
            dst.copy_from_slice(bytes);
        }
        self.pos = end;
    }

    pub(crate) fn u8(&mut self, v: u8) {
        self.put(&[v]);
    }

    pub(crate) fn u16(&mut self, v: u16) {
        self.put(&v.to_be_bytes());
    }

    pub(crate) fn u32(&mut self, v: u32) {
        self.put(&v.to_be_bytes());
    }

    pub(crate) fn u64(&mut self, v: u64) {
        self.put(&v.to_be_bytes());
    }

    pub(crate) fn zeros(&mut self, n: usize) {
        let end = self.pos + n;
        if let Some(dst) = self.out.get_mut(self.pos..end) {
            dst.fill(0);
        }
        self.pos = end;
    }

    /// Bytes written.
    pub(crate) fn finish(self) -> usize {
        self.pos
    }
}
