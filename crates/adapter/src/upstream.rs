//! The HTTP/1.1 client to the app on 127.0.0.1.

use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, Uri};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};

/// Idle connections are closed before common app servers close them (Node
/// and gunicorn use 5 s): a request sent on a connection the app is closing
/// would fail with a reset.
const POOL_IDLE: Duration = Duration::from_secs(4);

pub(crate) struct Upstream {
    client: Client<HttpConnector, Full<Bytes>>,
    port: u16,
}

impl Upstream {
    pub(crate) fn new(port: u16) -> Upstream {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(POOL_IDLE)
            .pool_timer(TokioTimer::new())
            // Lambda sends one event at a time, so one connection is all
            // that is ever busy.
            .pool_max_idle_per_host(1)
            .build(connector);
        Upstream { client, port }
    }

    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT{path_and_query}`; fails on a target that is
    /// not valid in a request line.
    pub(crate) fn uri(&self, path_and_query: &str) -> Result<Uri, http::uri::InvalidUri> {
        format!("http://127.0.0.1:{}{path_and_query}", self.port).parse()
    }

    pub(crate) async fn send(
        &self,
        request: Request<Full<Bytes>>,
    ) -> Result<Response<Incoming>, hyper_util::client::legacy::Error> {
        self.client.request(request).await
    }
}
