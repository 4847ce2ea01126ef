//! The body of a streamed HTTP response: the prelude, then the app's bytes
//! as they arrive, and error trailers if the app's body breaks off.

use std::pin::Pin;
use std::task::{Context, Poll};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue};
use hyper::body::{Body, Frame, Incoming};

use crate::runtime::{ErrorReport, ERROR_BODY, ERROR_TYPE};
use crate::BoxError;

pub(crate) struct Streamed {
    prelude: Option<Bytes>,
    app: Incoming,
    done: bool,
}

impl Streamed {
    pub(crate) fn new(prelude: Vec<u8>, app: Incoming) -> Streamed {
        Streamed {
            prelude: Some(Bytes::from(prelude)),
            app,
            done: false,
        }
    }
}

impl Body for Streamed {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if let Some(prelude) = self.prelude.take() {
            return Poll::Ready(Some(Ok(Frame::data(prelude))));
        }
        loop {
            if self.done {
                return Poll::Ready(None);
            }
            match std::task::ready!(Pin::new(&mut self.app).poll_frame(cx)) {
                Some(Ok(frame)) => {
                    // The app's own trailers mean nothing to Lambda; skip them.
                    if let Ok(data) = frame.into_data() {
                        return Poll::Ready(Some(Ok(Frame::data(data))));
                    }
                }
                Some(Err(err)) => {
                    // Lambda has the head and part of the body already; the
                    // failure can only travel as trailers now.
                    self.done = true;
                    let report = ErrorReport {
                        error_type: "Runtime.StreamError",
                        message: format!("the app's response broke off: {err}"),
                    };
                    return Poll::Ready(Some(Ok(Frame::trailers(error_trailers(&report)))));
                }
                None => self.done = true,
            }
        }
    }
}

pub(crate) fn error_trailers(report: &ErrorReport) -> HeaderMap {
    let mut trailers = HeaderMap::new();
    trailers.insert(ERROR_TYPE, HeaderValue::from_static(report.error_type));
    // Base64 is always a valid header value.
    if let Ok(body) = HeaderValue::from_str(&STANDARD.encode(report.body())) {
        trailers.insert(ERROR_BODY, body);
    }
    trailers
}
