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
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use rouse_store::Store;
use tokio::sync::watch;

use crate::body::{full, BoxError, ProxyBody};
use crate::{Gateway, Inner};

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

/// How often records past their stream's retention are dropped (shards
/// that get appends are also trimmed as they are written to).
const TRIM_EVERY: Duration = Duration::from_secs(60);

/// The stream tasks of a node besides its pollers: on PostgreSQL, a
/// listener that wakes this node's pollers when any node appends (the
/// pollers also look every second, should a notification be lost); on
/// both engines, the retention trim. Both end with the gateway.
pub(crate) fn start_background(gateway: Weak<Inner>) {
    let shared = gateway
        .upgrade()
        .is_some_and(|inner| inner.store.is_shared());
    if shared {
        let listener = gateway.clone();
        tokio::spawn(async move {
            loop {
                let Some(inner) = listener.upgrade() else {
                    return;
                };
                let store = inner.store.clone();
                let wakers = Arc::downgrade(&inner);
                drop(inner);
                let result = store
                    .listen_streams(|stream| {
                        if let Some(inner) = wakers.upgrade() {
                            inner.wakers.wake(stream);
                        }
                    })
                    .await;
                if let Err(err) = result {
                    tracing::debug!(%err, "stream notifications stopped; polling until they resume");
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
    }
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(TRIM_EVERY).await;
            let Some(inner) = gateway.upgrade() else {
                return;
            };
            let store = inner.store.clone();
            drop(inner);
            if let Err(err) = store.trim_streams(crate::async_invoke::now_ms()).await {
                tracing::warn!(%err, "cannot trim streams past their retention");
            }
        }
    });
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
        // PostgreSQL calls await the network; SQLite's run in place under
        // its lock, so they go to a blocking thread (a gateway thread must
        // not wait for a disk write).
        let done = if store.is_shared() {
            Ok(kinesis_api::execute(&store, &op, &body, now).await)
        } else {
            let handle = tokio::runtime::Handle::current();
            tokio::task::spawn_blocking(move || {
                handle.block_on(kinesis_api::execute(&store, &op, &body, now))
            })
            .await
        };
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
    pub(crate) async fn reload_streams(&self) {
        consumer::reconcile(self).await;
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
