//! The one home of platform code: every `unsafe` of the workspace outside
//! the io backends ([`crate::io`], which hand buffers to the kernel across
//! calls) sits here, behind safe functions and types, each block with a
//! `// SAFETY:` note a reviewer can check against the kernel's contract.
//! The load tool (`shoal-bench`) uses these instead of its own.
//!
//! - [`addr`]: socket addresses in the kernel's layout, both ways.
//! - [`cmsg`]: the UDP_SEGMENT (GSO) control message.
//! - [`batch`]: `recvmmsg` with receive timestamps and `sendmmsg` of
//!   borrowed messages, for the load tool.
//! - [`socket`]: socket options; [`poll`] and [`epoll`]: waiting on many.
//! - [`clock`] and [`random`]: what proto is given as time and secrets.
//! - [`cpu`]: affinity and thread CPU time; [`process`]: limits and the
//!   kernel's tick.
//! - [`spoof`]: UDP from any source address, through a raw socket.
//! - [`uring_gso`]: a bare io_uring loop of GSO trains, for the load tool.

pub mod addr;
pub mod batch;
pub mod clock;
pub mod cmsg;
pub mod cpu;
pub mod epoll;
pub mod poll;
pub mod process;
pub mod random;
pub mod socket;
pub mod spoof;
pub mod uring_gso;
