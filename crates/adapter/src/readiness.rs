//! Waiting until the app can take requests.

use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitStatus;
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use tokio::net::TcpStream;

use crate::app::App;
use crate::config::Readiness;
use crate::upstream::Upstream;

/// First pause between probes. Apps often listen within a millisecond of
/// exec, and every microsecond here is cold-start time on Lambda.
const INITIAL_BACKOFF: Duration = Duration::from_micros(50);
/// A slow starter is still probed at least this often.
const MAX_BACKOFF: Duration = Duration::from_millis(10);

/// Probes until the app is ready. Fails with the exit status if the app
/// exits first. There is no time limit: Lambda bounds init itself.
pub(crate) async fn wait_ready(
    app: &mut App,
    upstream: &Upstream,
    readiness: &Readiness,
) -> Result<(), ExitStatus> {
    let mut delay = INITIAL_BACKOFF;
    loop {
        if let Some(status) = app.try_exited() {
            return Err(status);
        }
        let ready = tokio::select! {
            // A probe can hang on an app that accepts but never answers; its
            // exit must still end the wait.
            status = app.exited() => return Err(status),
            ready = probe(upstream, readiness) => ready,
        };
        if ready {
            return Ok(());
        }
        pause(delay).await;
        delay = (delay * 2).min(MAX_BACKOFF);
    }
}

async fn probe(upstream: &Upstream, readiness: &Readiness) -> bool {
    match readiness {
        Readiness::Tcp => {
            let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, upstream.port()));
            TcpStream::connect(addr).await.is_ok()
        }
        Readiness::Http(path) => {
            let Ok(uri) = upstream.uri(path) else {
                return false;
            };
            let request = Request::get(uri)
                .header(http::header::USER_AGENT, "rouse-adapter-readiness")
                .body(Full::new(Bytes::new()));
            match request {
                Ok(request) => upstream
                    .send(request)
                    .await
                    .is_ok_and(|response| response.status().is_success()),
                Err(_) => false,
            }
        }
    }
}

/// Sleeps for `delay`. tokio's timer rounds up to whole milliseconds, which
/// would make the first probes 20 times slower than asked; below 1 ms the
/// thread sleeps instead. That blocks the runtime, which has nothing else
/// to do while the app starts.
async fn pause(delay: Duration) {
    if delay < Duration::from_millis(1) {
        std::thread::sleep(delay);
        tokio::task::yield_now().await;
    } else {
        tokio::time::sleep(delay).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AppCommand;

    #[tokio::test]
    async fn ready_once_the_port_listens() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let upstream = Upstream::new(port);
        let mut app = App::external();
        wait_ready(&mut app, &upstream, &Readiness::Tcp)
            .await
            .expect("ready");
    }

    #[tokio::test]
    async fn an_app_that_exits_is_never_ready() {
        let mut app =
            App::start(&AppCommand::Shell("sleep 0.05; exit 4".into()), 1).expect("start");
        // Port 1 never listens here.
        let upstream = Upstream::new(1);
        let started = std::time::Instant::now();
        let status = wait_ready(&mut app, &upstream, &Readiness::Tcp)
            .await
            .expect_err("exited");
        assert_eq!(status.code(), Some(4));
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
