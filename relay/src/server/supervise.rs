//! A relay does not run on without a worker.
//!
//! A worker owns its subscribers and the streams it ingests; if its thread
//! dies (a panic is a bug, but it must not be a silent one) those streams
//! stop while the process looks healthy, and nothing restarts it. So every
//! worker thread carries an [`ExitNotice`] that tells the server's
//! supervisor when the thread ends, however it ends; the supervisor wakes
//! the main thread, which stops the other workers (their subscribers get
//! LEAVE), logs the panic with the thread's name and message, and exits
//! with [`EXIT_WORKER_DIED`] so the service manager (`Restart=on-failure`
//! in `tuning/shoal-relay.service`) starts a fresh relay.

use std::any::Any;
use std::time::Duration;

use crossbeam_channel::Sender;

/// The exit status of a relay that lost a worker: EX_SOFTWARE, "internal
/// software error", from sysexits(3).
pub const EXIT_WORKER_DIED: u8 = 70;

/// Test-only: makes worker 0 panic this many milliseconds after it starts,
/// so a test can check what a dying worker does to the process. Read once
/// at start, from the environment of whoever starts the relay; nothing on
/// the network reaches it. Not for operators.
pub const TEST_PANIC_ENV: &str = "SHOAL_TEST_PANIC_WORKER_AFTER_MS";

/// Sends its worker's id when dropped: when the thread returns or unwinds.
#[derive(Debug)]
pub(crate) struct ExitNotice {
    pub(crate) worker: usize,
    pub(crate) tx: Sender<usize>,
}

impl Drop for ExitNotice {
    fn drop(&mut self) {
        let _ = self.tx.send(self.worker);
    }
}

/// A worker thread that panicked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerPanic {
    /// The thread's name (`shoal-worker-N`).
    pub thread: String,
    /// The panic's message.
    pub message: String,
}

impl std::fmt::Display for WorkerPanic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} panicked: {}; the relay stopped (exit status {EXIT_WORKER_DIED}) so that its \
             service manager restarts it",
            self.thread, self.message
        )
    }
}

impl std::error::Error for WorkerPanic {}

/// The message of a panic payload, as `panic!` formats it.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(a panic without a message)".to_owned()
    }
}

/// [`TEST_PANIC_ENV`], if set.
pub(crate) fn test_panic_after() -> anyhow::Result<Option<Duration>> {
    match std::env::var(TEST_PANIC_ENV) {
        Ok(text) => text
            .trim()
            .parse()
            .map(|ms| Some(Duration::from_millis(ms)))
            .map_err(|_| {
                anyhow::anyhow!(
                    "{TEST_PANIC_ENV}={text:?}: not milliseconds; unset it (it is for tests)"
                )
            }),
        Err(_) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panic_messages_are_read_from_either_payload() {
        let of = |f: fn()| {
            let payload = std::panic::catch_unwind(f).expect_err("it panics");
            panic_message(&*payload)
        };
        assert_eq!(of(|| panic!("plain")), "plain");
        assert_eq!(of(|| panic!("formatted {}", 7)), "formatted 7");
    }

    #[test]
    fn a_notice_is_sent_when_its_thread_unwinds() {
        let (tx, rx) = crossbeam_channel::unbounded();
        let thread = std::thread::spawn(move || {
            let _notice = ExitNotice { worker: 3, tx };
            panic!("boom");
        });
        assert!(thread.join().is_err());
        assert_eq!(rx.try_recv(), Ok(3));
    }
}
