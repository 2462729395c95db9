//! A connection that fails a write which cannot make progress for too long.
//!
//! A reader of a live stream that stops reading (a paused tab, a dead
//! client behind a NAT that never sends RST, or someone holding slots on
//! purpose) fills its socket buffer; hyper then waits for the socket and
//! polls nothing, so nothing in the body can notice. [`WriteTimeout`] sits
//! under hyper: when a write has been pending for its whole budget, it
//! fails with `TimedOut`, hyper drops the connection, and its slot (and
//! `max_http_readers` place) is free again. A slow reader that keeps
//! taking bytes is never closed by this; it falls behind the feed's ring
//! instead and jumps to a newer keyframe ([`super::live`]).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// An IO stream whose writes fail after `budget` without progress.
#[derive(Debug)]
pub struct WriteTimeout<S> {
    inner: S,
    budget: Duration,
    /// Armed at the first write that had to wait; disarmed by progress.
    stalled: Option<Pin<Box<Sleep>>>,
    /// Counts connections failed this way.
    closed: Arc<AtomicU64>,
}

impl<S> WriteTimeout<S> {
    /// Wraps `inner`; `closed` counts each write failed for stalling.
    pub fn new(inner: S, budget: Duration, closed: Arc<AtomicU64>) -> Self {
        Self {
            inner,
            budget,
            stalled: None,
            closed,
        }
    }

    /// The outcome of a write that returned `poll`: progress disarms the
    /// timer; waiting arms it, and fails once it has run out.
    fn watch<T>(&mut self, cx: &mut Context<'_>, poll: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if poll.is_ready() {
            self.stalled = None;
            return poll;
        }
        let budget = self.budget;
        let timer = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(Instant::now() + budget)));
        ready!(timer.as_mut().poll(cx));
        self.stalled = None;
        self.closed.fetch_add(1, Ordering::Relaxed);
        Poll::Ready(Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("the client took nothing for {budget:?}"),
        )))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for WriteTimeout<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WriteTimeout<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.watch(cx, poll)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.watch(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_flush(cx);
        self.watch(cx, poll)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .expect("a runtime")
    }

    #[test]
    fn a_write_nobody_takes_fails_after_the_budget_and_is_counted() {
        runtime().block_on(async {
            let (ours, mut theirs) = tokio::io::duplex(64);
            let closed = Arc::new(AtomicU64::new(0));
            let mut conn = WriteTimeout::new(ours, Duration::from_secs(10), closed.clone());
            // The pipe takes 64 bytes, then waits for a reader that never
            // comes; the paused clock runs ahead to the deadline.
            conn.write_all(&[1; 64]).await.expect("the first 64 fit");
            let started = Instant::now();
            let err = conn.write_all(&[2; 64]).await.expect_err("times out");
            assert_eq!(err.kind(), io::ErrorKind::TimedOut);
            assert_eq!(started.elapsed(), Duration::from_secs(10));
            assert_eq!(closed.load(Ordering::Relaxed), 1);
            let mut got = [0; 64];
            theirs.read_exact(&mut got).await.expect("what fitted");
        });
    }

    #[test]
    fn a_slow_reader_that_keeps_reading_is_not_closed() {
        runtime().block_on(async {
            let (ours, mut theirs) = tokio::io::duplex(64);
            let closed = Arc::new(AtomicU64::new(0));
            let mut conn = WriteTimeout::new(ours, Duration::from_secs(10), closed.clone());
            let reading = tokio::spawn(async move {
                let mut buf = [0; 32];
                let mut total = 0;
                while total < 64 * 20 {
                    // 32 bytes every 6 s: slower than the writer, never
                    // 10 s without progress.
                    tokio::time::sleep(Duration::from_secs(6)).await;
                    total += theirs.read(&mut buf).await.expect("read");
                }
                total
            });
            for _ in 0..20 {
                conn.write_all(&[3; 64]).await.expect("no timeout");
            }
            drop(conn);
            assert!(reading.await.expect("reader") >= 64 * 20);
            assert_eq!(closed.load(Ordering::Relaxed), 0);
        });
    }
}
