//! TLS (`wss://`) with rustls and its `ring` provider, and the byte stream
//! under every connection: plain TCP or TLS over TCP, with the first bytes
//! of the request (read to answer plain HTTP) put back in front.

use std::fmt;
use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::server::TlsStream;

use crate::Config;

/// The server's TLS settings, loaded once at start.
#[derive(Clone)]
pub(crate) struct Tls(TlsAcceptor);

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Tls")
    }
}

impl Tls {
    /// Loads the certificate chain and key named in `config`; `None` when
    /// TLS is off. Both or neither must be set.
    pub(crate) fn from_config(config: &Config) -> io::Result<Option<Tls>> {
        match (&config.tls_cert, &config.tls_key) {
            (None, None) => Ok(None),
            (Some(cert), Some(key)) => Tls::load(cert, key).map(Some),
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "TLS needs both a certificate (--tls-cert) and its key (--tls-key)",
            )),
        }
    }

    /// A PEM certificate chain (leaf first) and a PEM private key (PKCS#8,
    /// PKCS#1 or SEC1).
    pub(crate) fn load(cert: &Path, key: &Path) -> io::Result<Tls> {
        let bad = |what: &str, path: &Path, e: &dyn fmt::Display| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("cannot read the TLS {what} {}: {e}", path.display()),
            )
        };
        let certs = CertificateDer::pem_file_iter(cert)
            .map_err(|e| bad("certificate", cert, &e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| bad("certificate", cert, &e))?;
        if certs.is_empty() {
            return Err(bad("certificate", cert, &"no CERTIFICATE block in it"));
        }
        let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| bad("key", key, &e))?;
        let config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_safe_default_protocol_versions()
            .and_then(|b| b.with_no_client_auth().with_single_cert(certs, key_der))
            .map_err(|e| bad("certificate and key", cert, &e))?;
        Ok(Tls(TlsAcceptor::from(Arc::new(config))))
    }

    /// The TLS handshake on a fresh connection.
    pub(crate) async fn accept(&self, tcp: TcpStream) -> io::Result<Stream> {
        let tls = self.0.accept(tcp).await?;
        Ok(Stream::new(Inner::Tls(Box::new(tls))))
    }
}

enum Inner {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// A connection's bytes: TCP or TLS, with `head` (bytes already read)
/// replayed before the rest.
pub(crate) struct Stream {
    head: Vec<u8>,
    at: usize,
    inner: Inner,
}

impl fmt::Debug for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.inner {
            Inner::Plain(_) => "plain",
            Inner::Tls(_) => "tls",
        };
        f.debug_struct("Stream").field("kind", &kind).finish()
    }
}

impl Stream {
    fn new(inner: Inner) -> Self {
        Self {
            head: Vec::new(),
            at: 0,
            inner,
        }
    }

    pub(crate) fn plain(tcp: TcpStream) -> Self {
        Self::new(Inner::Plain(tcp))
    }

    /// Puts `head` back: the next reads return it first.
    pub(crate) fn unread(&mut self, head: Vec<u8>) {
        self.head = head;
        self.at = 0;
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.at < this.head.len() {
            let n = (this.head.len() - this.at).min(buf.remaining());
            buf.put_slice(&this.head[this.at..this.at + n]);
            this.at += n;
            if this.at == this.head.len() {
                this.head = Vec::new();
                this.at = 0;
            }
            return Poll::Ready(Ok(()));
        }
        match &mut this.inner {
            Inner::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Inner::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().inner {
            Inner::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Inner::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().inner {
            Inner::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Inner::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match &self.inner {
            Inner::Plain(s) => s.is_write_vectored(),
            Inner::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().inner {
            Inner::Plain(s) => Pin::new(s).poll_flush(cx),
            Inner::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().inner {
            Inner::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Inner::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
