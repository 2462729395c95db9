//! A network namespace of the test's own with nothing but loopback, for
//! work that must not reach any other network (a browser that phones home
//! by itself): [`Netns::run`] runs a closure on a thread inside it, and
//! every process that thread starts is inside it too. Removed on drop.
//!
//! Needs root and iproute2 (`ip netns`); fails loudly without them.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::process::Command;

/// A named namespace, `/run/netns/<name>`.
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates `shoal-<tag>-<pid>` with its loopback up.
    pub fn create(tag: &str) -> Self {
        let name = format!("shoal-{tag}-{}", std::process::id());
        // A leftover of an earlier run of this pid, if any.
        let _ = Command::new("ip")
            .args(["netns", "del", &name])
            .stderr(std::process::Stdio::null())
            .status();
        ip(&["netns", "add", &name]);
        let ns = Self { name };
        ip(&["-n", &ns.name, "link", "set", "lo", "up"]);
        ns
    }

    /// Runs `work` on a new thread that has entered the namespace, and
    /// returns its result; a panic in `work` is the caller's panic.
    pub fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> T {
        let path = format!("/run/netns/{}", self.name);
        let file = File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
        let thread = std::thread::spawn(move || {
            // SAFETY: setns(2) on a descriptor of a network namespace moves
            // only the calling thread (this new one) into it; the file stays
            // open for the call.
            let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(
                rc,
                0,
                "setns into {path}: {}",
                std::io::Error::last_os_error()
            );
            work()
        });
        match thread.join() {
            Ok(value) => value,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run ip {args:?} (needs iproute2): {e}"));
    assert!(
        out.status.success(),
        "ip {args:?} failed (needs root): {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
