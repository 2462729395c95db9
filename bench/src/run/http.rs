//! The HTTP readers' part of a run: started once the relay's web face
//! serves the stream live, waited for until every one has its stream, and
//! at the end the relay's own count of readers that fell behind.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use super::TICK;
use crate::cli::Args;
use crate::http::{self, Readers, ReadersConfig, api};
use crate::progress::Progress;
use crate::shared::Shared;
use crate::source;
use crate::target::Target;

/// Longest wait for the relay to list the stream as live: its first
/// DESCRIPTOR, then its workers' next snapshot.
const LIVE_WAIT: Duration = Duration::from_secs(10);

/// Starts `--http-viewers` readers on `cpus` once the stream is live;
/// `None` without them.
pub(super) fn start(
    args: &Args,
    target: &Target,
    shared: &Arc<Shared>,
    cpus: &[usize],
    progress: &mut Progress,
) -> anyhow::Result<Option<Readers>> {
    if args.http_viewers == 0 {
        return Ok(None);
    }
    let addr = target
        .http_addr()
        .context("the relay has no web face; give --relay-http")?;
    progress.show("waiting for the stream to be live over HTTP");
    api::wait_live(addr, &source::stream_id(), LIVE_WAIT)?;
    let config = ReadersConfig {
        addr,
        path: format!("/streams/{}.ts", source::stream_id()),
        count: args.http_viewers,
        cpus: cpus.to_vec(),
    };
    http::spawn(config, shared).map(Some)
}

/// Waits (bounded) until every reader's stream has begun: the first ones
/// wait for a keyframe (one a second) and the relay's playout budget.
pub(super) fn wait_started(
    args: &Args,
    readers: Option<&Readers>,
    progress: &mut Progress,
) -> anyhow::Result<()> {
    let Some(readers) = readers else {
        return Ok(());
    };
    let limit = Duration::from_secs(10) + Duration::from_millis(5 * args.http_viewers as u64);
    let deadline = Instant::now() + limit;
    let c = &readers.counts;
    loop {
        let started = c.started.load(Ordering::Relaxed);
        let refused = c.refused.load(Ordering::Relaxed);
        let failed = c.failed.load(Ordering::Relaxed);
        if started >= args.http_viewers {
            return Ok(());
        }
        if refused + failed > 0 || Instant::now() >= deadline {
            bail!(
                "{started} of {} HTTP readers got the stream ({refused} refused, {failed} \
                 failed to connect or were cut off) within {:.0} s; lower --http-viewers",
                args.http_viewers,
                limit.as_secs_f64()
            );
        }
        progress.show(&format!(
            "opening HTTP readers: {started}/{} streaming",
            args.http_viewers
        ));
        std::thread::sleep(TICK);
    }
}

/// The relay's count of jumps by readers that fell behind, if it has a
/// web face that answers.
pub(super) fn relay_jumps(target: &Target) -> Option<u64> {
    let addr = target.http_addr()?;
    match api::stream_state(addr, &source::stream_id()) {
        Ok(Some(state)) => Some(state.http_reader_jumps),
        Ok(None) => {
            eprintln!("shoal-bench: the relay's /api/streams no longer lists the stream");
            None
        }
        Err(e) => {
            eprintln!("shoal-bench: cannot read the HTTP readers' jumps: {e:#}");
            None
        }
    }
}
