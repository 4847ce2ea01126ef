//! `GET /v1/functions/{name}/logs`: the last lines, then live ones with `follow`.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;

use crate::error::ApiError;
use crate::AdminState;

#[derive(Deserialize)]
pub(crate) struct LogsQuery {
    #[serde(default = "default_lines")]
    lines: usize,
    #[serde(default)]
    follow: bool,
}

fn default_lines() -> usize {
    100
}

pub(crate) async fn logs(
    State(state): State<Arc<AdminState>>,
    Path(name): Path<String>,
    Query(q): Query<LogsQuery>,
) -> Result<Response, ApiError> {
    if state.store.get_function(&name).await?.is_none() {
        return Err(ApiError::not_found(format!("function {name}")));
    }
    // Subscribe before reading the file so no line falls between the two.
    let live = q.follow.then(|| state.logs.subscribe(&name));
    let mut history = state
        .logs
        .last_lines(&name, q.lines)
        .map_err(ApiError::internal)?
        .join("\n");
    if !history.is_empty() {
        history.push('\n');
    }
    let headers = [(header::CONTENT_TYPE, "text/plain; charset=utf-8")];
    let Some(mut live) = live else {
        return Ok((headers, history).into_response());
    };
    let mut shutdown = state.shutdown.clone();
    let stream = async_stream(history, move |tx| async move {
        loop {
            tokio::select! {
                line = live.recv() => match line {
                    Ok(line) => {
                        if tx.send(Bytes::from(format!("{line}\n"))).await.is_err() {
                            return;
                        }
                    }
                    Err(RecvError::Lagged(n)) => {
                        let note = format!("... {n} lines skipped (reader too slow)\n");
                        if tx.send(Bytes::from(note)).await.is_err() {
                            return;
                        }
                    }
                    Err(RecvError::Closed) => return,
                },
                // The flag only ever changes to true.
                _ = shutdown.changed() => return,
            }
        }
    });
    Ok((headers, stream).into_response())
}

/// A streaming body fed by a task: first `first`, then whatever `produce` sends.
fn async_stream<F, Fut>(first: String, produce: F) -> Body
where
    F: FnOnce(tokio::sync::mpsc::Sender<Bytes>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(64);
    let first = Bytes::from(first);
    let producer = produce(tx.clone());
    tokio::spawn(async move {
        if !first.is_empty() && tx.send(first).await.is_err() {
            return;
        }
        drop(tx);
        producer.await;
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|chunk| (Ok::<_, std::io::Error>(chunk), rx))
    });
    Body::from_stream(stream)
}
