//! Knowing when an instance's output has reached the sink.
//!
//! A lambda runtime prints, then posts its response over HTTP; the output
//! travels through a pipe and a reader task, so the response can arrive
//! first. The invocation's log (`X-Amz-Log-Result`, `END` after the
//! handler's lines) needs everything written before the response, so the
//! caller asks [`OutputSync::settle`] to wait until the pipes are empty and
//! every byte read from them has been handed to the sink.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use tokio::io::{AsyncRead, ReadBuf};

/// Progress of one output pipe's reader.
pub(crate) struct PipeMeter {
    /// A duplicate of the pipe's read end, only ever polled: the reader's own
    /// descriptor is closed at end-of-file and its number may be reused.
    fd: Option<OwnedFd>,
    /// Set around each read, so a read that has emptied the pipe but not yet
    /// counted its bytes is never mistaken for "nothing pending".
    reading: AtomicBool,
    read: AtomicU64,
    delivered: AtomicU64,
}

impl PipeMeter {
    pub(crate) fn new(pipe: Option<&impl AsFd>) -> PipeMeter {
        PipeMeter {
            fd: pipe.and_then(|p| p.as_fd().try_clone_to_owned().ok()),
            reading: AtomicBool::new(false),
            read: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
        }
    }

    /// Bytes the reader has consumed: handed to the sink, or held as the
    /// start of a line that has no newline yet (which cannot be delivered).
    pub(crate) fn delivered(&self, bytes: usize) {
        self.delivered.fetch_add(bytes as u64, Ordering::SeqCst);
    }

    fn settled(&self) -> bool {
        // Checked in this order against the reader's `reading = true; read
        // from the pipe; read += n; reading = false`: if the pipe looks empty
        // because a read just took the bytes, `reading` is still set or
        // `read` is already ahead of `delivered`.
        !self.pipe_has_data()
            && !self.reading.load(Ordering::SeqCst)
            && self.read.load(Ordering::SeqCst) == self.delivered.load(Ordering::SeqCst)
    }

    fn pipe_has_data(&self) -> bool {
        let Some(fd) = &self.fd else {
            return false;
        };
        let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::ZERO) {
            Ok(0) => false,
            Ok(_) => fds[0]
                .revents()
                .is_some_and(|r| r.contains(PollFlags::POLLIN)),
            // Cannot tell; the counters still say whether the reader is behind.
            Err(_) => false,
        }
    }
}

/// A reader that counts what it reads into its [`PipeMeter`].
pub(crate) struct Counted<R> {
    inner: R,
    meter: Arc<PipeMeter>,
}

impl<R> Counted<R> {
    pub(crate) fn new(inner: R, meter: Arc<PipeMeter>) -> Self {
        Counted { inner, meter }
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for Counted<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        self.meter.reading.store(true, Ordering::SeqCst);
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = result {
            let n = buf.filled().len() - before;
            self.meter.read.fetch_add(n as u64, Ordering::SeqCst);
        }
        self.meter.reading.store(false, Ordering::SeqCst);
        result
    }
}

/// A handle on an instance's stdout and stderr readers; cheap to clone.
#[derive(Clone)]
pub struct OutputSync {
    pipes: Vec<Arc<PipeMeter>>,
}

/// Checks between polls while output is still on its way.
const SETTLE_POLL: Duration = Duration::from_millis(1);

impl OutputSync {
    pub(crate) fn new(pipes: Vec<Arc<PipeMeter>>) -> OutputSync {
        OutputSync { pipes }
    }

    /// True when nothing the instance wrote is still in a pipe or between
    /// the reader and the sink.
    pub fn settled(&self) -> bool {
        self.pipes.iter().all(|p| p.settled())
    }

    /// Waits until [`OutputSync::settled`], at most `max`: an instance that
    /// never stops printing must not hold up its caller. Returns at once in
    /// the usual case, where the readers have already caught up.
    pub async fn settle(&self, max: Duration) {
        let deadline = Instant::now() + max;
        while !self.settled() && Instant::now() < deadline {
            tokio::time::sleep(SETTLE_POLL).await;
        }
    }
}
