//! Protocol sniffing, and HTTP/1.1 for what is not HTTP/2.

use std::{
    io,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use bytes::{Buf, Bytes, BytesMut};
use http::StatusCode;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio_util::sync::CancellationToken;

use super::{answer, HttpHandler, PLAIN_BODY_LIMIT};

/// The client connection preface of HTTP/2 (RFC 9113 §3.4).
const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// I/O with bytes already read put back in front.
#[derive(Debug)]
pub(super) struct Rewind<IO> {
    prefix: Bytes,
    io: IO,
}

/// How much the first read takes: a prober's whole first flight (the preface, SETTINGS,
/// WINDOW_UPDATE and its request, about 250 bytes from grpc-go or tonic), so that serving
/// it takes one read, not one for the preface and one for the rest.
const FIRST_READ: usize = 1024;

/// Reads until the first bytes either are the HTTP/2 preface or cannot be; returns which,
/// with the I/O rewound to the start.
pub(super) async fn sniff<IO>(mut io: IO) -> io::Result<(bool, Rewind<IO>)>
where
    IO: AsyncRead + Unpin,
{
    let mut buf = BytesMut::with_capacity(FIRST_READ);
    while buf.len() < PREFACE.len() {
        if io.read_buf(&mut buf).await? == 0 {
            break;
        }
        let n = buf.len().min(PREFACE.len());
        if buf[..n] != PREFACE[..n] {
            break;
        }
    }
    let h2 = buf.len() >= PREFACE.len() && buf[..PREFACE.len()] == PREFACE[..];
    Ok((
        h2,
        Rewind {
            prefix: buf.freeze(),
            io,
        },
    ))
}

impl<IO: AsyncRead + Unpin> AsyncRead for Rewind<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.prefix.is_empty() {
            let n = self.prefix.len().min(buf.remaining());
            buf.put_slice(&self.prefix[..n]);
            self.prefix.advance(n);
            if self.prefix.is_empty() {
                // Frees the first read's buffer: a long-lived connection keeps nothing of it.
                self.prefix = Bytes::new();
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Rewind<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// Serves an HTTP/1.1 connection: each request (body bounded by [`PLAIN_BODY_LIMIT`]) goes
/// to the plain-HTTP handler, or gets 404 without one.
pub(super) async fn serve<IO>(
    io: Rewind<IO>,
    handler: Option<Arc<dyn HttpHandler>>,
    drain: CancellationToken,
) -> io::Result<()>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service =
        hyper::service::service_fn(move |request: http::Request<hyper::body::Incoming>| {
            let handler = handler.clone();
            async move {
                let (head, body) = request.into_parts();
                let response = match Limited::new(body, PLAIN_BODY_LIMIT).collect().await {
                    Ok(body) => {
                        let request = http::Request::from_parts(head, body.to_bytes());
                        match &handler {
                            Some(handler) => handler.handle(request),
                            None => answer::plain(StatusCode::NOT_FOUND, "not found\n"),
                        }
                    }
                    Err(_) => {
                        answer::plain(StatusCode::PAYLOAD_TOO_LARGE, "request body too large\n")
                    }
                };
                Ok::<_, std::convert::Infallible>(response.map(Full::new))
            }
        });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .serve_connection(TokioIo::new(io), service);
    let mut conn = std::pin::pin!(conn);
    let result = tokio::select! {
        result = conn.as_mut() => result,
        () = drain.cancelled() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    result.map_err(io::Error::other)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sniffing_tells_http2_from_anything_else() {
        let (h2, mut io) = sniff(&b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\nrest"[..])
            .await
            .unwrap();
        assert!(h2);
        let mut all = Vec::new();
        io.read_to_end(&mut all).await.unwrap();
        assert_eq!(all, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\nrest");
        let (h2, mut io) = sniff(&b"GET / HTTP/1.1\r\n\r\n"[..]).await.unwrap();
        assert!(!h2);
        let mut all = Vec::new();
        io.read_to_end(&mut all).await.unwrap();
        assert_eq!(all, b"GET / HTTP/1.1\r\n\r\n");
        let (h2, _) = sniff(&b"PRI"[..]).await.unwrap();
        assert!(!h2);
    }
}
