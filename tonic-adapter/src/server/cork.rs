//! Holding an HTTP/2 connection's writes until its wake-up is done: one write per wake-up.
//!
//! `h2` flushes whenever reading runs dry. On a probe's connection that is three writes for
//! one Check: the server SETTINGS at the handshake, the SETTINGS ACK (and WINDOW_UPDATE)
//! once the request is read, and then the answer, one wake-up round later. Each is a
//! `writev`, a loopback segment and a wake-up of the client. [`Corked`] keeps what `h2`
//! writes in memory while the connection's [`Cork`] is held, and lets it go in one write
//! when the connection releases the cork at the end of its wake-up, so a probe costs the
//! server one write. While the cork is held, at most [`HELD_MAX`] bytes wait; more goes
//! through at once.

use std::{
    io,
    pin::Pin,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    task::{ready, Context, Poll},
};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Bytes held back at most while corked; a wake-up that writes more writes in pieces of
/// about this size (a fan-out's thousands of status frames, say).
pub(super) const HELD_MAX: usize = 16 * 1024;

/// A held buffer that grew past this is freed once written, so an idle connection keeps
/// no more than this.
const KEEP: usize = 1024;

/// The connection's handle on its I/O's cork (the I/O itself is inside `h2`).
#[derive(Debug, Clone)]
pub(super) struct Cork(Arc<AtomicBool>);

impl Cork {
    /// Writes from now on wait in memory.
    pub(super) fn hold(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// The next flush writes what waits, and later writes go straight through.
    pub(super) fn release(&self) {
        self.0.store(false, Ordering::Relaxed);
    }

    fn held(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// I/O whose writes wait in memory while its [`Cork`] is held.
#[derive(Debug)]
pub(super) struct Corked<IO> {
    io: IO,
    held: Vec<u8>,
    /// How much of `held` is written already.
    written: usize,
    cork: Cork,
}

impl<IO> Corked<IO> {
    /// Wraps `io` with the cork held (so the handshake's SETTINGS wait for the answers),
    /// and returns the cork.
    pub(super) fn new(io: IO) -> (Self, Cork) {
        let cork = Cork(Arc::new(AtomicBool::new(true)));
        let corked = Self {
            io,
            held: Vec::new(),
            written: 0,
            cork: cork.clone(),
        };
        (corked, cork)
    }
}

impl<IO: AsyncWrite + Unpin> Corked<IO> {
    /// Writes everything held.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.written < self.held.len() {
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, &self.held[self.written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.written += n;
        }
        self.written = 0;
        if self.held.capacity() > KEEP {
            self.held = Vec::new();
        } else {
            self.held.clear();
        }
        Poll::Ready(Ok(()))
    }

    /// Whether `len` more bytes may wait.
    fn holds(&self, len: usize) -> bool {
        self.cork.held() && self.held.len() + len <= HELD_MAX
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Corked<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Corked<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.holds(buf.len()) {
            this.held.extend_from_slice(buf);
            return Poll::Ready(Ok(buf.len()));
        }
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let len = bufs.iter().map(|b| b.len()).sum();
        if this.holds(len) {
            for b in bufs {
                this.held.extend_from_slice(b);
            }
            return Poll::Ready(Ok(len));
        }
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        // Held writes take every slice at once; others go to the I/O's own vectored write.
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.cork.held() {
            return Poll::Ready(Ok(()));
        }
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[tokio::test]
    async fn held_writes_leave_together_on_the_flush_after_release() {
        let (client, mut server) = tokio::io::duplex(64 * 1024);
        let (mut corked, cork) = Corked::new(client);
        corked.write_all(b"SETTINGS ").await.unwrap();
        corked.flush().await.unwrap();
        corked.write_all(b"ACK ").await.unwrap();
        corked.flush().await.unwrap();
        // Nothing reached the peer while the cork was held, flushes or not.
        let mut buf = [0u8; 64];
        let early =
            tokio::time::timeout(std::time::Duration::from_millis(20), server.read(&mut buf)).await;
        assert!(early.is_err(), "bytes left while corked");
        cork.release();
        corked.write_all(b"ANSWER").await.unwrap();
        corked.flush().await.unwrap();
        let n = server.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"SETTINGS ACK ANSWER");
    }

    #[tokio::test]
    async fn more_than_the_cap_goes_through_in_order() {
        let (client, mut server) = tokio::io::duplex(4 * HELD_MAX);
        let (mut corked, _cork) = Corked::new(client);
        let first = vec![1u8; HELD_MAX - 10];
        let second = vec![2u8; 100];
        corked.write_all(&first).await.unwrap();
        corked.write_all(&second).await.unwrap();
        // The cork is still held: the first write waited, then went out ahead of the second.
        let mut got = vec![0u8; first.len() + second.len()];
        server.read_exact(&mut got).await.unwrap();
        assert_eq!(&got[..first.len()], &first[..]);
        assert_eq!(&got[first.len()..], &second[..]);
    }

    #[tokio::test]
    async fn shutdown_writes_what_is_held() {
        let (client, mut server) = tokio::io::duplex(1024);
        let (mut corked, _cork) = Corked::new(client);
        corked.write_all(b"GOAWAY").await.unwrap();
        corked.shutdown().await.unwrap();
        let mut all = Vec::new();
        server.read_to_end(&mut all).await.unwrap();
        assert_eq!(all, b"GOAWAY");
    }
}
