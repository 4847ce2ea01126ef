//! Connections from the gateway to web instances.
//!
//! Many apps write a response's headers and its body in two sends (Python's
//! `http.server`, among others). With Nagle's algorithm on the app's side the
//! body waits until the headers are acknowledged, and on a kept-alive
//! connection Linux delays that ACK by up to 40 ms, hoping to piggyback it on
//! data the gateway never sends while it waits for the body. Re-arming
//! `TCP_QUICKACK` after every read sends the ACK at once. (`TCP_NODELAY` on
//! our side cannot help: the delay is in the app's sends.)

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::Uri;
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tower_service::Service;

/// [`HttpConnector`] whose connections acknowledge every read at once.
#[derive(Clone)]
pub(crate) struct UpstreamConnector {
    http: HttpConnector,
}

impl UpstreamConnector {
    pub(crate) fn new() -> UpstreamConnector {
        let mut http = HttpConnector::new();
        http.set_nodelay(true);
        UpstreamConnector { http }
    }
}

type ConnectError = <HttpConnector as Service<Uri>>::Error;

impl Service<Uri> for UpstreamConnector {
    type Response = QuickAck;
    type Error = ConnectError;
    type Future = Pin<Box<dyn Future<Output = Result<QuickAck, ConnectError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), ConnectError>> {
        self.http.poll_ready(cx)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let connecting = self.http.call(uri);
        Box::pin(async move { connecting.await.map(|io| QuickAck { io }) })
    }
}

/// A connection to an instance that re-arms `TCP_QUICKACK` after each read.
pub(crate) struct QuickAck {
    io: TokioIo<TcpStream>,
}

impl Read for QuickAck {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let read = Pin::new(&mut self.io).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = read {
            // The kernel leaves quick-ACK mode on its own; failing to re-enter
            // it only costs latency, never correctness.
            let _ = socket2::SockRef::from(self.io.inner()).set_tcp_quickack(true);
        }
        read
    }
}

impl Write for QuickAck {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }
}

impl Connection for QuickAck {
    fn connected(&self) -> Connected {
        self.io.connected()
    }
}
