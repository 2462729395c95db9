//! Making a ring, and finding out (once per process) whether io_uring can
//! do what the backend needs here, with a one-line reason when it cannot.

use std::io;
use std::os::fd::AsRawFd;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use io_uring::{IoUring, Probe, cqueue, opcode, types};
use socket2::{Domain, Socket, Type};

use super::buf_ring::BufRing;

/// Submission queue entries of a backend's ring.
pub(super) const SQ_ENTRIES: u32 = 4096;

/// Completion queue entries: room for a full SQ of sends plus the
/// receive and wake-up completions that pile up meanwhile.
pub(super) const CQ_ENTRIES: u32 = 4 * SQ_ENTRIES;

/// The buffer group of the receive buffer ring.
pub(super) const BUF_GROUP: u16 = 0;

/// How long cleanup waits for cancelled operations to complete.
pub(super) const REAP_LIMIT: Duration = Duration::from_secs(1);

/// A new ring.
pub(super) struct NewRing {
    pub(super) ring: IoUring,
    /// Made with IORING_SETUP_R_DISABLED (single issuer, deferred task
    /// work): it must be enabled by the thread that will drive it.
    pub(super) disabled: bool,
    /// Which setup flags it got, for the log.
    pub(super) flavour: &'static str,
}

/// A ring for a backend: single issuer with deferred task work where the
/// kernel has them (6.1), else cooperative task work (5.19), else plain.
pub(super) fn new_ring() -> Result<NewRing, String> {
    let mut builder = IoUring::builder();
    builder
        .setup_clamp()
        .setup_cqsize(CQ_ENTRIES)
        .setup_submit_all()
        .setup_single_issuer()
        .setup_defer_taskrun()
        .setup_r_disabled();
    if let Some(ring) = build(&builder)? {
        return Ok(NewRing {
            ring,
            disabled: true,
            flavour: "single issuer, deferred task work",
        });
    }
    let mut builder = IoUring::builder();
    builder
        .setup_clamp()
        .setup_cqsize(CQ_ENTRIES)
        .setup_submit_all()
        .setup_coop_taskrun();
    if let Some(ring) = build(&builder)? {
        return Ok(NewRing {
            ring,
            disabled: false,
            flavour: "cooperative task work",
        });
    }
    let mut builder = IoUring::builder();
    builder.setup_clamp().setup_cqsize(CQ_ENTRIES);
    match build(&builder)? {
        Some(ring) => Ok(NewRing {
            ring,
            disabled: false,
            flavour: "plain",
        }),
        None => Err("io_uring_setup: Invalid argument".to_owned()),
    }
}

/// The ring, or None if the kernel does not know a flag (EINVAL).
fn build(builder: &io_uring::Builder) -> Result<Option<IoUring>, String> {
    match builder.build(SQ_ENTRIES) {
        Ok(ring) => Ok(Some(ring)),
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Ok(None),
        Err(e) => Err(setup_reason(&e)),
    }
}

/// Checks once whether io_uring with everything the backend needs is
/// usable in this process: not disabled by sysctl or seccomp, the
/// opcodes RecvMsg (multishot), SendMsg, Read, PollAdd and AsyncCancel,
/// timed waits (IORING_FEAT_EXT_ARG) and provided-buffer rings. Err is a
/// one-line reason.
pub fn probe() -> Result<(), String> {
    static VERDICT: OnceLock<Result<(), String>> = OnceLock::new();
    VERDICT.get_or_init(probe_now).clone()
}

fn probe_now() -> Result<(), String> {
    if io_uring_disabled().as_deref() == Some("2") {
        return Err("kernel.io_uring_disabled=2".to_owned());
    }
    let mut ring = IoUring::new(8).map_err(|e| setup_reason(&e))?;
    let mut ops = Probe::new();
    ring.submitter()
        .register_probe(&mut ops)
        .map_err(|e| format!("IORING_REGISTER_PROBE: {}", text(&e)))?;
    for (code, name) in [
        (opcode::RecvMsg::CODE, "RecvMsg"),
        (opcode::SendMsg::CODE, "SendMsg"),
        (opcode::Read::CODE, "Read"),
        (opcode::PollAdd::CODE, "PollAdd"),
        (opcode::AsyncCancel::CODE, "AsyncCancel"),
    ] {
        if !ops.is_supported(code) {
            return Err(format!("kernel lacks the io_uring {name} opcode"));
        }
    }
    if !ring.params().is_feature_ext_arg() {
        return Err("kernel lacks IORING_FEAT_EXT_ARG (timed waits)".to_owned());
    }
    probe_multishot(&mut ring)
}

/// Registers a small buffer ring and arms a multishot recvmsg on an idle
/// socket: a kernel without multishot recvmsg fails it at once (EINVAL).
fn probe_multishot(ring: &mut IoUring) -> Result<(), String> {
    const RECV: u64 = 1;
    let bufs = BufRing::new(2).map_err(|e| format!("mapping a buffer ring: {}", text(&e)))?;
    bufs.register(&ring.submitter(), BUF_GROUP)
        .map_err(|e| buf_ring_reason(&e))?;
    // Unbound: nothing can arrive, and no address is needed.
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, None)
        .map_err(|e| format!("probe socket: {}", text(&e)))?;
    // SAFETY: msghdr is pointers and integers, for which zero is valid.
    let mut msg: Box<libc::msghdr> = Box::new(unsafe { std::mem::zeroed() });
    msg.msg_namelen = size_of::<libc::sockaddr_in6>() as _;
    let recv = opcode::RecvMsgMulti::new(types::Fd(socket.as_raw_fd()), &raw const *msg, BUF_GROUP)
        .build()
        .user_data(RECV);
    // SAFETY: the msghdr and the buffer ring stay alive until the
    // operation's last CQE is reaped below, or are leaked.
    unsafe { ring.submission().push(&recv) }.map_err(|_| "probe ring full".to_owned())?;
    // From here on, nothing may return before the recvmsg is reaped or
    // its memory leaked.
    let mut armed = true;
    let mut verdict = wait(ring, Duration::ZERO);
    reap(ring, RECV, &mut armed, &mut verdict);
    if armed {
        let cancel = opcode::AsyncCancel::new(RECV).build().user_data(RECV + 1);
        // SAFETY: a cancellation points at no memory.
        let pushed = unsafe { ring.submission().push(&cancel) }.is_ok();
        let deadline = Instant::now() + REAP_LIMIT;
        while pushed && armed && Instant::now() < deadline {
            if wait(ring, Duration::from_millis(10)).is_err() {
                break;
            }
            reap(ring, RECV, &mut armed, &mut verdict);
        }
    }
    if armed {
        // The kernel may still write into them: never free them.
        std::mem::forget(bufs);
        std::mem::forget(msg);
        return Err(verdict
            .err()
            .unwrap_or_else(|| "multishot recvmsg could not be cancelled".to_owned()));
    }
    verdict
}

/// Reaps the probe's completions: whether the recvmsg `user_data` is
/// still armed, and the first reason it failed.
fn reap(ring: &mut IoUring, user_data: u64, armed: &mut bool, verdict: &mut Result<(), String>) {
    for cqe in ring.completion() {
        if cqe.user_data() != user_data {
            continue;
        }
        if !cqueue::more(cqe.flags()) {
            *armed = false;
        }
        let res = cqe.result();
        if res < 0 && res != -libc::ECANCELED && verdict.is_ok() {
            *verdict = Err(if res == -libc::EINVAL {
                "kernel lacks multishot recvmsg".to_owned()
            } else {
                let e = io::Error::from_raw_os_error(-res);
                format!("multishot recvmsg: {}", text(&e))
            });
        }
    }
}

/// Submits and waits up to `timeout` for one completion.
fn wait(ring: &IoUring, timeout: Duration) -> Result<(), String> {
    let ts = types::Timespec::from(timeout);
    let args = types::SubmitArgs::new().timespec(&ts);
    match ring.submitter().submit_with_args(1, &args) {
        Ok(_) => Ok(()),
        Err(e) if matches!(e.raw_os_error(), Some(libc::ETIME | libc::EINTR)) => Ok(()),
        Err(e) => Err(format!("io_uring_enter: {}", text(&e))),
    }
}

/// `kernel.io_uring_disabled`, if the kernel has it.
fn io_uring_disabled() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled")
        .ok()
        .map(|s| s.trim().to_owned())
}

/// Why io_uring_setup failed, in one line.
pub(super) fn setup_reason(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::EPERM) if io_uring_disabled().as_deref() == Some("1") => {
            "kernel.io_uring_disabled=1 and this process is not in kernel.io_uring_group".to_owned()
        }
        Some(libc::EPERM) => "io_uring_setup: Operation not permitted (seccomp?)".to_owned(),
        Some(libc::ENOSYS) => {
            "io_uring_setup: not implemented (kernel without io_uring, or seccomp?)".to_owned()
        }
        Some(libc::ENOMEM) => "RLIMIT_MEMLOCK too low for the io_uring rings".to_owned(),
        _ => format!("io_uring_setup: {}", text(e)),
    }
}

/// Why registering the buffer ring failed, in one line.
pub(super) fn buf_ring_reason(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::ENOMEM | libc::EPERM) => "RLIMIT_MEMLOCK too low for the buffer ring".to_owned(),
        Some(libc::EINVAL) => "kernel lacks provided-buffer rings (5.19+)".to_owned(),
        _ => format!("registering the buffer ring: {}", text(e)),
    }
}

/// An error's text without the trailing "(os error N)".
pub(super) fn text(e: &io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(end) => s[..end].to_owned(),
        None => s,
    }
}
