//! Which HTTP version a new connection speaks, read under the header
//! deadline. hyper-util's auto builder reads the same bytes with no
//! timeout, so a client that connects and sends nothing (or `PR` and
//! nothing) would hold its descriptor forever.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};

/// HTTP/2 with prior knowledge starts with this.
const H2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Protocol {
    Http1,
    Http2,
}

/// The protocol the first bytes announce, or `None` while they are still
/// a prefix of the HTTP/2 preface.
pub(crate) fn detect(first: &[u8]) -> Option<Protocol> {
    let n = first.len().min(H2_PREFACE.len());
    if first[..n] != H2_PREFACE[..n] {
        Some(Protocol::Http1)
    } else if n == H2_PREFACE.len() {
        Some(Protocol::Http2)
    } else {
        None
    }
}

/// A stream whose first bytes were already read; they are served again
/// before the rest.
pub(crate) struct Prefixed<S> {
    prefix: [u8; 24],
    start: usize,
    end: usize,
    inner: S,
}

/// Reads until the protocol is known. `Ok(None)`: the client closed first.
pub(crate) async fn read_protocol<S: AsyncRead + Unpin>(
    mut stream: S,
) -> io::Result<Option<(Protocol, Prefixed<S>)>> {
    let mut prefix = [0u8; 24];
    let mut end = 0;
    loop {
        let n = stream.read(&mut prefix[end..]).await?;
        if n == 0 {
            return Ok(None);
        }
        end += n;
        if let Some(protocol) = detect(&prefix[..end]) {
            let stream = Prefixed {
                prefix,
                start: 0,
                end,
                inner: stream,
            };
            return Ok(Some((protocol, stream)));
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Prefixed<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.start < this.end {
            let n = (this.end - this.start).min(buf.remaining());
            buf.put_slice(&this.prefix[this.start..this.start + n]);
            this.start += n;
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Prefixed<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_bytes_decide() {
        let table: [(&[u8], Option<Protocol>); 8] = [
            (b"G", Some(Protocol::Http1)),
            (b"GET / HTTP/1.1\r\n", Some(Protocol::Http1)),
            (b"P", None),
            (b"PR", None),
            (b"PROPFIND", Some(Protocol::Http1)),
            (b"POST", Some(Protocol::Http1)),
            (b"PRI * HTTP/2.0\r\n\r\nSM\r\n", None),
            (H2_PREFACE, Some(Protocol::Http2)),
        ];
        for (first, expected) in table {
            assert_eq!(
                detect(first),
                expected,
                "{:?}",
                String::from_utf8_lossy(first)
            );
        }
    }

    #[tokio::test]
    async fn read_bytes_are_served_again() {
        let (mut client, server) = tokio::io::duplex(64);
        tokio::io::AsyncWriteExt::write_all(&mut client, b"GET / HTTP/1.1\r\n")
            .await
            .unwrap();
        drop(client);
        let (protocol, mut stream) = read_protocol(server).await.unwrap().unwrap();
        assert_eq!(protocol, Protocol::Http1);
        let mut all = Vec::new();
        stream.read_to_end(&mut all).await.unwrap();
        assert_eq!(all, b"GET / HTTP/1.1\r\n");
    }

    #[tokio::test]
    async fn a_client_that_closes_first_is_none() {
        let (client, server) = tokio::io::duplex(64);
        drop(client);
        assert!(read_protocol(server).await.unwrap().is_none());
    }
}
