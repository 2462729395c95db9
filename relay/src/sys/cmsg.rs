//! The UDP_SEGMENT control message (UDP GSO): one `sendmsg` whose payload
//! the kernel cuts into datagrams of a given size. The one builder behind
//! every GSO send of the workspace: both relay backends, the load tool's
//! baseline and its flood.

use std::mem::offset_of;

/// A `cmsghdr` for `SOL_UDP`/`UDP_SEGMENT` and its `u16` segment size,
/// laid out as `CMSG_FIRSTHDR`/`CMSG_DATA` would find them and padded to
/// `CMSG_SPACE(2)`: a value of it is a whole, properly aligned control
/// buffer for one message.
#[derive(Clone, Copy)]
#[repr(C)]
pub struct GsoCmsg {
    hdr: libc::cmsghdr,
    /// The segment size, native byte order, then padding.
    data: [u8; 8],
}

// SAFETY: CMSG_SPACE only does arithmetic on its argument.
const _: () = assert!(size_of::<GsoCmsg>() == unsafe { libc::CMSG_SPACE(2) } as usize);
// SAFETY: CMSG_LEN only does arithmetic on its argument.
const _: () = assert!(offset_of!(GsoCmsg, data) == unsafe { libc::CMSG_LEN(0) } as usize);

impl std::fmt::Debug for GsoCmsg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("GsoCmsg").field(&self.size()).finish()
    }
}

impl GsoCmsg {
    /// Bytes of the control buffer (`msg_controllen`).
    pub const LEN: usize = size_of::<Self>();

    /// A control message asking for `size`-byte segments.
    pub fn new(size: u16) -> Self {
        // SAFETY: cmsghdr is integers only (and padding on some libcs),
        // for which all zeroes is valid.
        let mut hdr: libc::cmsghdr = unsafe { std::mem::zeroed() };
        // SAFETY: CMSG_LEN only does arithmetic on its argument.
        hdr.cmsg_len = unsafe { libc::CMSG_LEN(size_of::<u16>() as u32) } as _;
        hdr.cmsg_level = libc::SOL_UDP;
        hdr.cmsg_type = libc::UDP_SEGMENT;
        let mut cmsg = Self { hdr, data: [0; 8] };
        cmsg.set_size(size);
        cmsg
    }

    /// Changes the segment size.
    pub fn set_size(&mut self, size: u16) {
        self.data[..2].copy_from_slice(&size.to_ne_bytes());
    }

    /// The segment size.
    pub fn size(&self) -> u16 {
        u16::from_ne_bytes([self.data[0], self.data[1]])
    }

    /// Points `msg`'s control buffer at this message. The kernel reads it
    /// during a send of `msg`, so it must stay where it is until then.
    pub fn attach(&self, msg: &mut libc::msghdr) {
        // The kernel only reads a send's control buffer.
        msg.msg_control = (&raw const *self).cast_mut().cast();
        msg.msg_controllen = Self::LEN as _;
    }
}

/// Leaves `msg` without a control buffer (a plain send).
pub fn detach(msg: &mut libc::msghdr) {
    msg.msg_control = std::ptr::null_mut();
    msg.msg_controllen = 0;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cmacros_find_the_header_and_the_size() {
        let cmsg = GsoCmsg::new(1377);
        // SAFETY: msghdr is integers and pointers, for which zero is valid.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        cmsg.attach(&mut msg);
        // SAFETY: `msg` describes `cmsg`'s GsoCmsg::LEN bytes, room for a
        // header and a u16, so CMSG_FIRSTHDR points at its start and
        // CMSG_DATA inside it; the macros only read.
        let (level, kind, len, size) = unsafe {
            let c = libc::CMSG_FIRSTHDR(&raw const msg);
            assert!(!c.is_null());
            (
                (*c).cmsg_level,
                (*c).cmsg_type,
                (*c).cmsg_len as usize,
                libc::CMSG_DATA(c).cast::<u16>().read_unaligned(),
            )
        };
        assert_eq!((level, kind), (libc::SOL_UDP, libc::UDP_SEGMENT));
        // SAFETY: arithmetic only.
        assert_eq!(len, unsafe { libc::CMSG_LEN(2) } as usize);
        assert_eq!(size, 1377);
        assert_eq!(cmsg.size(), 1377);
        detach(&mut msg);
        assert!(msg.msg_control.is_null());
    }
}
