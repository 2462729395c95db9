//! Churn: once a second while measuring, a viewer thread replaces its
//! share of its viewers, in turn (see the parent module's docs).

use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;

use anyhow::Context;
use shoal_proto::wire::{Leave, LeaveReason, Message};

use super::{JOIN_DEADLINE, Now, State, Tally, Viewer, ViewerConfig, bind_one};
use shoal_relay::sys::epoll::Epoll;

/// One thread's churn: which viewer goes next and how many are owed.
#[derive(Debug, Default)]
pub(super) struct Churn {
    /// The second (of the run's clock) of the last turn.
    last_second: Option<u64>,
    /// Replacements owed but not yet made (fractions of a viewer).
    owed: f64,
    /// The next viewer slot to replace.
    next: usize,
    /// Whether the next one leaves silently.
    silent_next: bool,
}

impl Churn {
    /// Once a second: replaces the owed share of `viewers`.
    pub(super) fn turn(
        &mut self,
        viewers: &mut [Viewer],
        epoll: &Epoll,
        config: &ViewerConfig,
        now: &Now<'_>,
        tally: &mut Tally,
    ) -> anyhow::Result<()> {
        let second = now.nanos / 1_000_000_000;
        let Some(last) = self.last_second.replace(second) else {
            // The measurement's first look: the first turn is a second on.
            return Ok(());
        };
        if second == last || viewers.is_empty() {
            return Ok(());
        }
        self.owed += config.churn * viewers.len() as f64;
        let count = (self.owed.floor() as usize).min(viewers.len());
        self.owed -= count as f64;
        for _ in 0..count {
            let slot = self.next % viewers.len();
            self.next += 1;
            let socket = bind_one(viewers[slot].index, config.rcvbuf)?;
            epoll
                .add(socket.as_raw_fd(), slot as u64)
                .context("epoll_ctl")?;
            let old = &mut viewers[slot];
            if !self.silent_next && old.state == State::Subscribed {
                old.send(
                    &Message::Leave(Leave {
                        reason: LeaveReason::Done,
                        stream: now.stream,
                        session: old.session,
                    }),
                    now,
                    tally,
                );
            }
            self.silent_next = !self.silent_next;
            let mut fresh = Viewer::new(old.index, socket, config.window_span, now.shared);
            fresh.joined_at = Some(now.nanos);
            // Counted as a join, not as one of the run's viewers.
            fresh.counted = true;
            let old = std::mem::replace(old, fresh);
            if old
                .joined_at
                .is_some_and(|t| !old.served && now.nanos.saturating_sub(t) >= JOIN_DEADLINE)
            {
                tally.joins_unserved += 1;
            }
            tally.retired.push(old.retire());
            now.shared.joins.fetch_add(1, Ordering::Relaxed);
            // `old` is dropped here: its socket closes, which also takes it
            // out of the epoll set.
        }
        Ok(())
    }
}
