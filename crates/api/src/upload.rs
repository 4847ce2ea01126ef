//! An artifact upload streamed into the store: the body goes chunk by
//! chunk to the store's (blocking) writer, which hashes it into a temp file
//! on the way, so a 250 MB upload never sits in memory whole.

use std::io::{self, Read};
use std::sync::Arc;

use axum::body::Body;
use axum::http::StatusCode;
use bytes::{Buf, Bytes};
use http_body_util::BodyExt;
use rouse_store::Store;
use tokio::sync::mpsc;

use crate::error::ApiError;

/// Chunks in flight between the request and the writer.
const IN_FLIGHT: usize = 8;

/// Stores `body` (at most `limit` bytes); its digest and size.
pub(crate) async fn store(
    store: Arc<Store>,
    mut body: Body,
    limit: usize,
) -> Result<(String, u64), ApiError> {
    let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(IN_FLIGHT);
    let writer = tokio::spawn(async move {
        store
            .put_artifact(ChannelReader {
                rx,
                chunk: Bytes::new(),
            })
            .await
    });
    let mut size = 0u64;
    let mut refused = None;
    while let Some(frame) = body.frame().await {
        let chunk = match frame {
            Ok(frame) => match frame.into_data() {
                Ok(chunk) => chunk,
                Err(_) => continue, // trailers
            },
            Err(err) => {
                refused = Some(ApiError::bad_request(format!("reading the upload: {err}")));
                break;
            }
        };
        size += chunk.len() as u64;
        if size > limit as u64 {
            refused = Some(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "PayloadTooLarge",
                format!("artifacts are limited to {limit} bytes"),
            ));
            break;
        }
        if tx.send(Ok(chunk)).await.is_err() {
            break; // the writer failed; its error is the answer
        }
    }
    if refused.is_some() {
        // The writer drops its temp file on an error; nothing is stored.
        let _ = tx.send(Err(io::Error::other("upload refused"))).await;
    }
    drop(tx);
    let stored = writer.await.map_err(ApiError::internal)?;
    if let Some(refused) = refused {
        return Err(refused);
    }
    Ok((stored?, size))
}

/// The writer's side: a blocking `Read` over the chunks.
struct ChannelReader {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    chunk: Bytes,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.chunk.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(chunk)) => self.chunk = chunk,
                Some(Err(err)) => return Err(err),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk[..n]);
        self.chunk.advance(n);
        Ok(n)
    }
}
