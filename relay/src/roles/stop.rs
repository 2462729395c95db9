//! SIGINT and SIGTERM for the client roles: the first asks the command to
//! end cleanly (a viewer or peer sends LEAVE, a publisher flushes its last
//! block); a second while it does exits at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;
use signal_hook::consts::{SIGINT, SIGTERM};

/// Set once SIGINT or SIGTERM arrives.
#[derive(Debug, Clone)]
pub(super) struct StopFlag(Arc<AtomicBool>);

impl StopFlag {
    /// Installs the handlers.
    pub(super) fn install() -> anyhow::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        for signal in [SIGINT, SIGTERM] {
            // A second signal while the first is being handled exits at once.
            signal_hook::flag::register_conditional_shutdown(signal, 1, Arc::clone(&stop))
                .context("cannot install signal handlers")?;
            signal_hook::flag::register(signal, Arc::clone(&stop))
                .context("cannot install signal handlers")?;
        }
        Ok(Self(stop))
    }

    /// Whether a signal asked to stop.
    pub(super) fn is_set(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// The flag itself, for threads that watch it too.
    pub(super) fn shared(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.0)
    }
}
