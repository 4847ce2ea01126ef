//! Streamed responses (`Lambda-Runtime-Function-Response-Mode: streaming`):
//! the body the invoker reads while the runtime is still writing it.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue};
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use tokio::sync::mpsc;

use crate::errors::{sanitize_error_type, MAX_STREAMED_RESPONSE_SIZE};

/// Trailer naming the error type of a stream that failed mid-way.
pub const ERROR_TYPE_TRAILER: &str = "lambda-runtime-function-error-type";
/// Trailer with the base64 error JSON of a stream that failed mid-way.
pub const ERROR_BODY_TRAILER: &str = "lambda-runtime-function-error-body";

/// How far ahead the runtime may write before it waits for the invoker to
/// read; keeps memory bounded when the client is slower than the function.
const CHANNEL_FRAMES: usize = 16;

/// The runtime-sent text that starts the in-body error "trailers" of
/// runtimes that cannot send real trailers (the Rust runtime).
const IN_BODY_ERROR_MARKER: &[u8] = b"Lambda-Runtime-Function-Error-Type:";
/// A held-back chunk longer than this cannot be the in-body error block.
const IN_BODY_ERROR_MAX: usize = 64 * 1024;

/// Why a streamed response ended abnormally.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StreamError {
    /// The runtime's connection ended before the body was complete.
    #[error("the runtime's response stream ended before it was complete")]
    Truncated,
    /// The response grew past [`MAX_STREAMED_RESPONSE_SIZE`].
    #[error("the streamed response exceeded {MAX_STREAMED_RESPONSE_SIZE} bytes")]
    Oversized,
}

enum Item {
    Frame(Frame<Bytes>),
    End,
    Fail(StreamError),
}

/// The body of [`crate::Outcome::Streaming`].
///
/// Yields data frames as the runtime sends them, then, if the function failed
/// mid-stream, one trailers frame with [`ERROR_TYPE_TRAILER`] (sanitised) and
/// [`ERROR_BODY_TRAILER`]. Real HTTP trailers and the Rust runtime's
/// in-body form both arrive here as trailers. Ends with an error if the
/// runtime's connection broke or the size limit was passed.
pub struct ResponseStream {
    rx: mpsc::Receiver<Item>,
    done: bool,
}

impl std::fmt::Debug for ResponseStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseStream")
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl Body for ResponseStream {
    type Data = Bytes;
    type Error = StreamError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, StreamError>>> {
        if self.done {
            return Poll::Ready(None);
        }
        let item = std::task::ready!(self.rx.poll_recv(cx));
        Poll::Ready(match item {
            Some(Item::Frame(frame)) => Some(Ok(frame)),
            Some(Item::End) => {
                self.done = true;
                None
            }
            Some(Item::Fail(err)) => {
                self.done = true;
                Some(Err(err))
            }
            // The pump went away without saying the body was complete.
            None => {
                self.done = true;
                Some(Err(StreamError::Truncated))
            }
        })
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

/// The sending half, driven by the `/response` handler.
pub(crate) struct Pump {
    tx: mpsc::Sender<Item>,
    /// False once the invoker dropped the body; the rest is read and dropped
    /// so the runtime can finish its request and move on.
    reader_alive: bool,
}

/// How a pumped stream ended, to answer the runtime.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum PumpEnd {
    Complete,
    Truncated,
    Oversized,
}

pub(crate) fn channel() -> (Pump, ResponseStream) {
    let (tx, rx) = mpsc::channel(CHANNEL_FRAMES);
    (
        Pump {
            tx,
            reader_alive: true,
        },
        ResponseStream { rx, done: false },
    )
}

impl Pump {
    async fn send(&mut self, item: Item) {
        if self.reader_alive && self.tx.send(item).await.is_err() {
            self.reader_alive = false;
        }
    }

    /// Forwards `body` frame by frame until it ends.
    pub(crate) async fn run(mut self, mut body: Incoming) -> PumpEnd {
        let mut total: u64 = 0;
        // A chunk that may be the start of the in-body error block; held back
        // until it is clear whether more data follows.
        let mut held: Option<Bytes> = None;
        loop {
            let frame = match body.frame().await {
                None => break,
                Some(Ok(frame)) => frame,
                Some(Err(err)) => {
                    tracing::debug!(%err, "runtime response stream broke");
                    self.send(Item::Fail(StreamError::Truncated)).await;
                    return PumpEnd::Truncated;
                }
            };
            let frame = match frame.into_data() {
                Ok(data) => {
                    total += data.len() as u64;
                    if total > MAX_STREAMED_RESPONSE_SIZE {
                        self.send(Item::Fail(StreamError::Oversized)).await;
                        return PumpEnd::Oversized;
                    }
                    let data = match held.take() {
                        Some(prefix) => concat(prefix, data),
                        None => data,
                    };
                    if may_start_in_body_error(&data) {
                        held = Some(data);
                        continue;
                    }
                    Frame::data(data)
                }
                Err(frame) => match frame.into_trailers() {
                    Ok(trailers) => {
                        if let Some(data) = held.take() {
                            self.send(Item::Frame(Frame::data(data))).await;
                        }
                        Frame::trailers(sanitize_trailers(trailers))
                    }
                    // Neither data nor trailers: nothing to forward.
                    Err(_) => continue,
                },
            };
            self.send(Item::Frame(frame)).await;
        }
        if let Some(data) = held.take() {
            let frame = match parse_in_body_error(&data) {
                Some(trailers) => Frame::trailers(trailers),
                None => Frame::data(data),
            };
            self.send(Item::Frame(frame)).await;
        }
        self.send(Item::End).await;
        PumpEnd::Complete
    }
}

fn concat(a: Bytes, b: Bytes) -> Bytes {
    let mut joined = BytesMut::with_capacity(a.len() + b.len());
    joined.extend_from_slice(&a);
    joined.extend_from_slice(&b);
    joined.freeze()
}

/// Whether `data` is, or could grow into, the in-body error block. Checked
/// on each chunk, so ordinary data is forwarded at once.
fn may_start_in_body_error(data: &[u8]) -> bool {
    if data.is_empty() || data.len() > IN_BODY_ERROR_MAX {
        return false;
    }
    let n = data.len().min(IN_BODY_ERROR_MARKER.len());
    data[..n] == IN_BODY_ERROR_MARKER[..n]
}

/// Parses `Lambda-Runtime-Function-Error-Type: T\r\nLambda-Runtime-Function-Error-Body: B\r\n`
/// (the whole final chunk) into trailers; `None` if it is anything else.
fn parse_in_body_error(data: &[u8]) -> Option<HeaderMap> {
    let text = std::str::from_utf8(data).ok()?;
    let mut error_type = None;
    let mut error_body = None;
    for line in text.split("\r\n").filter(|l| !l.is_empty()) {
        let (name, value) = line.split_once(':')?;
        let value = value.trim();
        if name.eq_ignore_ascii_case(ERROR_TYPE_TRAILER) {
            error_type = Some(value);
        } else if name.eq_ignore_ascii_case(ERROR_BODY_TRAILER) {
            error_body = Some(value);
        } else {
            return None;
        }
    }
    let mut trailers = HeaderMap::new();
    trailers.insert(
        HeaderName::from_static(ERROR_TYPE_TRAILER),
        HeaderValue::from_str(&sanitize_error_type(error_type)).ok()?,
    );
    if let Some(body) = error_body {
        trailers.insert(
            HeaderName::from_static(ERROR_BODY_TRAILER),
            HeaderValue::from_str(body).ok()?,
        );
    }
    Some(trailers)
}

/// Runtime-sent trailers pass through, with the error type sanitised like
/// the `/error` header.
fn sanitize_trailers(mut trailers: HeaderMap) -> HeaderMap {
    if let Some(raw) = trailers.get(ERROR_TYPE_TRAILER) {
        let clean = sanitize_error_type(raw.to_str().ok());
        if let Ok(value) = HeaderValue::from_str(&clean) {
            trailers.insert(HeaderName::from_static(ERROR_TYPE_TRAILER), value);
        }
    }
    trailers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_prefixes_are_held() {
        assert!(may_start_in_body_error(b"Lambda-Runtime"));
        assert!(may_start_in_body_error(
            b"Lambda-Runtime-Function-Error-Type: Runtime.StreamError\r\n"
        ));
        assert!(!may_start_in_body_error(b"hello"));
        assert!(!may_start_in_body_error(b""));
        assert!(!may_start_in_body_error(b"Lambda-Runtime-Other"));
    }

    #[test]
    fn in_body_error_parses() {
        let trailers = parse_in_body_error(
            b"Lambda-Runtime-Function-Error-Type: Runtime.StreamError\r\nLambda-Runtime-Function-Error-Body: eyJ9\r\n",
        )
        .unwrap();
        assert_eq!(trailers[ERROR_TYPE_TRAILER], "Runtime.StreamError");
        assert_eq!(trailers[ERROR_BODY_TRAILER], "eyJ9");
        assert!(parse_in_body_error(b"Lambda-Runtime-Function-Error-Type-ish data").is_none());
        assert!(
            parse_in_body_error(b"Lambda-Runtime-Function-Error-Type: X\r\nOther: y\r\n").is_none()
        );
    }
}
