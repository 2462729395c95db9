//! A DHT chore on its own thread, away from the workers and the roles'
//! loops: the DHT's calls block for seconds.

use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context;

/// A running chore; [`Chore::stop`] ends it.
#[derive(Debug)]
pub(super) struct Chore {
    stop: Sender<()>,
    thread: JoinHandle<()>,
}

impl Chore {
    /// Runs `turn` again and again, waiting after each the time it
    /// returns, until it returns `None` or the chore is stopped.
    pub(super) fn spawn(
        mut turn: impl FnMut() -> Option<Duration> + Send + 'static,
    ) -> anyhow::Result<Self> {
        let (stop, stopped) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("shoal-dht".into())
            .spawn(move || {
                while let Some(wait) = turn() {
                    match stopped.recv_timeout(wait) {
                        Err(RecvTimeoutError::Timeout) => {}
                        Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
                    }
                }
            })
            .context("cannot start the DHT thread")?;
        Ok(Self { stop, thread })
    }

    /// Stops it, after the turn under way (if any) ends.
    pub(super) fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.thread.join();
    }
}
