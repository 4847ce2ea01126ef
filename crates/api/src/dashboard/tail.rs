//! `GET /v1/dashboard/functions/{name}/tail`: a function's log as
//! server-sent events (what a browser's EventSource reads): the last lines,
//! then each new one as it is written, until the client leaves or rouse
//! stops.

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use tokio::sync::broadcast::error::RecvError;

use crate::error::ApiError;
use crate::AdminState;

/// Lines of history sent first.
const HISTORY_LINES: usize = 50;

pub(crate) async fn tail(
    State(state): State<Arc<AdminState>>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    if state.store.get_function(&name).await?.is_none() {
        return Err(ApiError::not_found(format!("function {name}")));
    }
    // Subscribe before reading the file so no line falls between the two.
    let live = state.logs.subscribe(&name);
    let history = state
        .logs
        .last_lines(&name, HISTORY_LINES)
        .map_err(ApiError::internal)?;
    let first = futures_util::stream::iter(
        history
            .into_iter()
            .map(|line| Ok::<_, Infallible>(Event::default().data(line))),
    );
    let rest = futures_util::stream::unfold(
        (live, state.shutdown.clone()),
        |(mut live, mut shutdown)| async move {
            if *shutdown.borrow() {
                return None;
            }
            let event = tokio::select! {
                line = live.recv() => match line {
                    Ok(line) => Event::default().data(&*line),
                    // Said once, so the page can show that lines were missed.
                    Err(RecvError::Lagged(n)) => Event::default().event("skipped").data(n.to_string()),
                    Err(RecvError::Closed) => return None,
                },
                // The flag only ever changes to true.
                _ = shutdown.changed() => return None,
            };
            Some((Ok::<_, Infallible>(event), (live, shutdown)))
        },
    );
    Ok(Sse::new(first.chain(rest))
        .keep_alive(KeepAlive::default())
        .into_response())
}
