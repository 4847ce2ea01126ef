//! Streams on the gateway: the Kinesis API (`kinesis_api`, over the store's
//! [`Streams`]), and the event source mappings that feed stream records to
//! functions (`consumer`: one poller per shard per mapping, woken the
//! moment records are put; `batch`: what follows from an invocation).
//! Queues (SQS) and external engines (Redis Streams) are sources of their
//! own beside this one: a store trait, an API target, a poller.

mod batch;
mod consumer;
mod format;
mod kinesis_api;
#[cfg(test)]
mod kinesis_tests;
mod record;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{header, HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use rouse_store::{Store, Streams};
use tokio::sync::watch;

use crate::body::{full, BoxError, ProxyBody};
use crate::Gateway;

pub use consumer::mapping_id;
pub(crate) use consumer::Pollers;
pub use format::shard_id;

/// Largest Kinesis request: 500 records of 1 MiB, base64, with room.
pub(crate) const MAX_REQUEST: usize = 8 * 1024 * 1024;

/// Wake-ups per stream: a put bumps the stream's counter, and every poller
/// of the stream waits for a change (no polling interval).
#[derive(Default)]
pub(crate) struct Wakers {
    streams: Mutex<HashMap<String, watch::Sender<u64>>>,
}

impl Wakers {
    fn sender(&self, stream: &str) -> watch::Sender<u64> {
        let mut map = self.streams.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(stream.to_string())
            .or_insert_with(|| watch::channel(0).0)
            .clone()
    }

    pub(crate) fn wake(&self, stream: &str) {
        self.sender(stream).send_modify(|n| *n = n.wrapping_add(1));
    }

    pub(crate) fn subscribe(&self, stream: &str) -> watch::Receiver<u64> {
        self.sender(stream).subscribe()
    }
}

impl Gateway {
    /// One Kinesis call: the body read (within [`MAX_REQUEST`]), the
    /// operation run off the gateway thread, the stream's pollers woken
    /// after an append.
    pub(crate) async fn kinesis_api<B>(&self, req: Request<B>, op: &str) -> Response<ProxyBody>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let request_id = uuid::Uuid::new_v4().to_string();
        let body = match Limited::new(req.into_body(), MAX_REQUEST).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(_) => {
                return answer(
                    Err(kinesis_api::ApiError {
                        code: "InvalidArgumentException",
                        message: format!("The request must be at most {MAX_REQUEST} bytes."),
                    }),
                    &request_id,
                )
            }
        };
        let store: Arc<Store> = self.inner.store.clone();
        let op = op.to_string();
        let now = crate::async_invoke::now_ms();
        let done = tokio::task::spawn_blocking(move || {
            kinesis_api::execute(store.as_ref() as &dyn Streams, &op, &body, now)
        })
        .await;
        let done = match done {
            Ok(done) => done,
            Err(err) => {
                tracing::error!(%err, "a Kinesis call panicked");
                return answer(
                    Err(kinesis_api::ApiError {
                        code: "InternalFailure",
                        message: "Internal service failure.".into(),
                    }),
                    &request_id,
                );
            }
        };
        if let Some(stream) = &done.appended_to {
            self.inner.wakers.wake(stream);
        }
        answer(done.answer, &request_id)
    }

    /// Starts, keeps or stops the pollers of every stream mapping so they
    /// match the deployed functions (after a deploy or removal, and at start).
    pub(crate) fn reload_streams(&self) {
        consumer::reconcile(self);
    }
}

fn answer(
    result: Result<serde_json::Value, kinesis_api::ApiError>,
    request_id: &str,
) -> Response<ProxyBody> {
    let (status, body) = match result {
        Ok(doc) => (StatusCode::OK, doc),
        Err(err) => (
            StatusCode::BAD_REQUEST,
            serde_json::json!({ "__type": err.code, "message": err.message }),
        ),
    };
    let mut resp = Response::new(full(body.to_string()));
    *resp.status_mut() = status;
    let headers = resp.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-amz-json-1.1"),
    );
    if let Ok(v) = HeaderValue::from_str(request_id) {
        headers.insert("x-amzn-requestid", v);
    }
    resp
}
