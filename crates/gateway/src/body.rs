//! Body types on the proxy path.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::{BodyExt, Full};
use rouse_pool::Lease;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// Any body the gateway sends or receives.
pub type ProxyBody = http_body_util::combinators::UnsyncBoxBody<Bytes, BoxError>;

/// Any request body the gateway accepts: what hyper's server hands it, and
/// what `rouse invoke` builds. One name for the bounds every executor has.
pub trait IncomingBody:
    http_body::Body<Data = Bytes, Error: Into<BoxError>> + Send + 'static
{
}

impl<B> IncomingBody for B where
    B: http_body::Body<Data = Bytes, Error: Into<BoxError>> + Send + 'static
{
}

/// An error reading the client's request body (a malformed chunk, a
/// connection closed mid-body), told apart from the upstream's own errors
/// so the client gets 400 and the function is not blamed.
#[derive(Debug)]
pub(crate) struct ClientBodyError(pub(crate) BoxError);

impl std::fmt::Display for ClientBodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "reading the request body: {}", self.0)
    }
}

impl std::error::Error for ClientBodyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.0)
    }
}

/// Whether `err` or one of its causes is an `E`.
pub(crate) fn caused_by<E: std::error::Error + 'static>(
    err: &(dyn std::error::Error + 'static),
) -> bool {
    let mut source = Some(err);
    while let Some(e) = source {
        if e.is::<E>() {
            return true;
        }
        source = e.source();
    }
    false
}

pub fn full(bytes: impl Into<Bytes>) -> ProxyBody {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

pub fn empty() -> ProxyBody {
    full(Bytes::new())
}

/// An upstream response body that keeps its instance slot until the last
/// byte is sent (or the client goes away), so the instance is not counted
/// idle, reaped or reused past its concurrency while it still streams.
pub(crate) struct Leased<B> {
    inner: B,
    _lease: Lease,
}

impl<B> Leased<B> {
    pub(crate) fn new(inner: B, lease: Lease) -> Self {
        Leased {
            inner,
            _lease: lease,
        }
    }
}

impl<B> Body for Leased<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        Pin::new(&mut self.inner).poll_frame(cx).map_err(Into::into)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
