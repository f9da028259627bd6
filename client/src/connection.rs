//! [`Connection`]: the WebSocket transport, with reconnect and backoff.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use collab_protocol::{ClientMsg, ErrorCode, ProtocolError, ServerMsg, WS_PATH};
use futures::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::Connector;
use tokio_tungstenite::tungstenite::Message;

use crate::ClientError;

/// What a [`Connection`] carries each way, and how it reads the server's
/// events: version 1's [`ClientMsg`] and [`ServerMsg`] ([`V1`]), or a
/// workspace connection's (`crate::workspace::WorkspaceWire`). The
/// reconnecting transport is the same for both.
pub trait Wire: Send + Sync + 'static {
    /// What the owner sends.
    type Out: Send + 'static;
    /// What the server sends, parsed.
    type In: Send + std::fmt::Debug + 'static;
    /// The JSON text of an event to send.
    fn encode(msg: &Self::Out) -> String;
    /// Whether the event is a `join` (the first event of a connection).
    fn is_join(msg: &Self::Out) -> bool;
    /// Reads a server event; `Err` names what is wrong.
    fn decode(text: &str) -> Result<Self::In, String>;
    /// What the transport itself looks at in a server event.
    fn peek(msg: &Self::In) -> Peek<'_>;
}

/// What the transport itself reads from a server event: a welcome resets
/// the backoff, and some errors stop the reconnecting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peek<'a> {
    Welcome,
    Error { code: ErrorCode, message: &'a str },
    Other,
}

/// The version 1 wire: [`ClientMsg`] out, [`ServerMsg`] in.
#[derive(Debug, Clone, Copy, Default)]
pub struct V1;

impl Wire for V1 {
    type Out = ClientMsg;
    type In = ServerMsg;
    fn encode(msg: &ClientMsg) -> String {
        msg.to_json()
    }
    fn is_join(msg: &ClientMsg) -> bool {
        matches!(msg, ClientMsg::Join(_))
    }
    fn decode(text: &str) -> Result<ServerMsg, String> {
        ServerMsg::from_json(text).map_err(|e| e.to_string())
    }
    fn peek(msg: &ServerMsg) -> Peek<'_> {
        match msg {
            ServerMsg::Welcome(_) => Peek::Welcome,
            ServerMsg::Error { code, message, .. } => Peek::Error {
                code: *code,
                message,
            },
            _ => Peek::Other,
        }
    }
}

/// What the transport reports, in order (`M`: the server's events, as the
/// [`Wire`] reads them).
#[derive(Debug, Clone, PartialEq)]
pub enum TransportEvent<M = ServerMsg> {
    /// A WebSocket is open: send `join` now ([`crate::Replica::join_msg`]).
    /// Anything else sent before that `join` on this connection is dropped,
    /// and so is any later `join` (so answering a stale `Connected` late
    /// is harmless).
    Connected,
    /// An event from the server.
    Message(M),
    /// The connection dropped or could not be made. `retry_in` is when the
    /// next attempt starts; `None` while suspended (see
    /// [`Connection::suspend`]). Messages sent meanwhile are dropped: the
    /// replica resyncs by version on the next welcome.
    Disconnected {
        reason: String,
        retry_in: Option<Duration>,
    },
    /// The transport stopped for good: [`Connection::close`] was called, or
    /// the server refused this client with an error that retrying cannot fix
    /// (`error`: name taken, bad session, unauthorized, version mismatch...).
    /// No event follows.
    Closed { error: Option<ProtocolError> },
}

/// Reconnect delays: exponential from `initial`, capped at `max`, each
/// shortened by a random part of up to `jitter` (0 to 1) so that many
/// clients dropped at once do not come back at once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
    pub jitter: f64,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(5),
            jitter: 0.5,
        }
    }
}

impl Backoff {
    /// The delay before attempt `attempt` (0 for the first retry), given a
    /// random number in `0..1`.
    pub fn delay(&self, attempt: u32, random: f64) -> Duration {
        let base = self
            .initial
            .saturating_mul(1u32.checked_shl(attempt.min(20)).unwrap_or(u32::MAX))
            .min(self.max);
        let cut = self.jitter.clamp(0.0, 1.0) * random.clamp(0.0, 1.0);
        base.mul_f64(1.0 - cut)
    }
}

/// How the transport behaves.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    pub backoff: Backoff,
    /// Give up one connection attempt after this long.
    pub connect_timeout: Duration,
    /// Send a WebSocket ping this often; with nothing received for two
    /// intervals the connection counts as dropped. `None`: no pings.
    pub ping_interval: Option<Duration>,
    /// Capacity of the event channel (the reader waits when it is full, so
    /// a slow owner slows the socket, not memory).
    pub event_buffer: usize,
    /// For `wss://`: a PEM file of CA certificates to trust besides the
    /// system's (a self-signed or private-CA server certificate). `None`:
    /// the system's roots only.
    pub extra_ca: Option<PathBuf>,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self {
            backoff: Backoff::default(),
            connect_timeout: Duration::from_secs(5),
            ping_interval: Some(Duration::from_secs(15)),
            event_buffer: 1024,
            extra_ca: None,
        }
    }
}

/// Turns what a user types into the server's WebSocket URL:
/// `host:port`, `ws://host:port`, `http://host:port` and full
/// `ws://host:port/ws` all work; a URL without a path gets `/ws`
/// ([`WS_PATH`]). `https://`/`wss://` become `wss://` (TLS, with the
/// system's roots and [`ConnectOptions::extra_ca`]).
pub fn ws_url(input: &str) -> Result<String, ClientError> {
    let input = input.trim();
    if input.is_empty() {
        return Err(ClientError::BadUrl("the server address is empty".into()));
    }
    let (scheme, rest) = match input.split_once("://") {
        Some((s, rest)) => match s.to_ascii_lowercase().as_str() {
            "ws" | "http" => ("ws", rest),
            "wss" | "https" => ("wss", rest),
            other => {
                return Err(ClientError::BadUrl(format!(
                    "unknown scheme {other:?} in {input:?}; use ws://host:port"
                )));
            }
        },
        None => ("ws", input),
    };
    let (authority, path) = match rest.find(['/', '?', '#']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    if authority.is_empty() || authority.chars().any(char::is_whitespace) {
        return Err(ClientError::BadUrl(format!(
            "no host in {input:?}; use ws://host:port"
        )));
    }
    let path = if path.is_empty() || path == "/" {
        WS_PATH
    } else {
        path
    };
    Ok(format!("{scheme}://{authority}{path}"))
}

/// Whether an error means retrying the same join cannot succeed: every
/// fatal error except the transient ones (a full server may have room
/// later; a slow consumer or an oversized frame is about that connection).
pub fn stops_reconnecting(code: ErrorCode) -> bool {
    code.is_fatal()
        && !matches!(
            code,
            ErrorCode::ServerFull | ErrorCode::SlowConsumer | ErrorCode::FrameTooLarge
        )
}

enum Command<O> {
    Send(O),
    Suspend,
    Resume,
    Close,
}

/// The receiving end of a [`Connection`]'s events.
pub type TransportEvents<M = ServerMsg> = mpsc::Receiver<TransportEvent<M>>;

/// A handle on the WebSocket transport: cheap to clone, usable from sync
/// code (nothing here blocks or awaits).
///
/// [`Connection::open`] spawns a tokio task that connects, reports
/// [`TransportEvent`]s and reconnects with [`Backoff`] after every drop,
/// until [`Connection::close`], a fatal server error, or until every handle
/// and the event receiver are dropped.
pub struct Connection<W: Wire = V1> {
    commands: mpsc::UnboundedSender<Command<W::Out>>,
}

impl<W: Wire> Clone for Connection<W> {
    fn clone(&self) -> Self {
        Self {
            commands: self.commands.clone(),
        }
    }
}

impl<W: Wire> std::fmt::Debug for Connection<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("open", &!self.commands.is_closed())
            .finish()
    }
}

impl Connection {
    /// Starts connecting to `url` (anything [`ws_url`] accepts). Must be
    /// called inside a tokio runtime.
    pub fn open(
        url: &str,
        options: ConnectOptions,
    ) -> Result<(Connection, TransportEvents), ClientError> {
        Self::open_wire(url, options)
    }
}

impl<W: Wire> Connection<W> {
    /// [`Connection::open`] for any [`Wire`] (a workspace connection:
    /// `crate::WorkspaceConnection`).
    pub fn open_wire(
        url: &str,
        options: ConnectOptions,
    ) -> Result<(Connection<W>, TransportEvents<W::In>), ClientError> {
        let url = ws_url(url)?;
        let tls = if url.starts_with("wss://") {
            Some(tls_connector(options.extra_ca.as_deref())?)
        } else {
            None
        };
        let (commands, command_rx) = mpsc::unbounded_channel();
        let (events, event_rx) = mpsc::channel(options.event_buffer.max(1));
        tokio::spawn(run::<W>(url, tls, options, command_rx, events));
        Ok((Connection { commands }, event_rx))
    }

    /// Queues an event for the server. Returns false once the transport has
    /// stopped. While disconnected (or before the `join` of a new
    /// connection) non-join events are dropped, which is safe for a
    /// [`crate::Replica`]: it resends what the server lacks on the welcome.
    pub fn send(&self, msg: W::Out) -> bool {
        self.commands.send(Command::Send(msg)).is_ok()
    }

    /// Drops the connection and stays offline until [`Self::resume`]
    /// (to simulate a network drop in tests, or a "go offline" switch).
    pub fn suspend(&self) {
        let _ = self.commands.send(Command::Suspend);
    }

    /// Connects again now (after [`Self::suspend`], or to skip a backoff).
    pub fn resume(&self) {
        let _ = self.commands.send(Command::Resume);
    }

    /// Closes the connection for good; [`TransportEvent::Closed`] follows.
    pub fn close(&self) {
        let _ = self.commands.send(Command::Close);
    }

    /// Whether the transport task has stopped.
    pub fn is_closed(&self) -> bool {
        self.commands.is_closed()
    }
}

/// How one connection ended.
enum End {
    /// Reconnect after a backoff.
    Dropped(String),
    /// Stay offline until resumed.
    Suspended,
    /// Stop for good.
    Closed(Option<ProtocolError>),
}

/// The TLS settings for `wss://`: rustls (ring), trusting the system's
/// roots and the certificates in `extra_ca`. A certificate in `extra_ca`
/// that the server presents itself, byte for byte, is trusted as that
/// server's own (pinned): a self-signed certificate made with a plain
/// `openssl req -x509` carries `CA:TRUE`, which WebPKI refuses as a
/// server certificate (`CaUsedAsEndEntity`), and often no name for the
/// host; the user named this exact certificate, so it is accepted.
fn tls_connector(extra_ca: Option<&std::path::Path>) -> Result<Connector, ClientError> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    use tokio_rustls::rustls::client::WebPkiServerVerifier;
    use tokio_rustls::rustls::{ClientConfig, RootCertStore, crypto::ring};

    let mut roots = RootCertStore::empty();
    // Unreadable system certificates are skipped: the extra CA may be all
    // this server needs.
    let native = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(native.certs);
    let mut pinned = Vec::new();
    if let Some(path) = extra_ca {
        let bad = |e: &dyn std::fmt::Display| {
            ClientError::Tls(format!("cannot use the CA file {}: {e}", path.display()))
        };
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|e| bad(&e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| bad(&e))?;
        if certs.is_empty() {
            return Err(bad(&"no CERTIFICATE block in it"));
        }
        for cert in certs {
            roots.add(cert.clone()).map_err(|e| bad(&e))?;
            pinned.push(cert);
        }
    }
    if roots.is_empty() {
        return Err(ClientError::Tls(
            "no trusted certificates: the system has none; pass a CA file".into(),
        ));
    }
    let provider = Arc::new(ring::default_provider());
    let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| ClientError::Tls(e.to_string()))?;
    let verifier = Arc::new(PinnedOrRoots {
        pinned,
        webpki,
        provider: provider.clone(),
    });
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ClientError::Tls(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(Connector::Rustls(Arc::new(config)))
}

/// Trusts a server certificate that is one of `pinned` exactly, else asks
/// WebPKI (the roots). Handshake signatures are checked the usual way
/// either way, so the server must hold the pinned certificate's key.
#[derive(Debug)]
struct PinnedOrRoots {
    pinned: Vec<rustls_pki_types::CertificateDer<'static>>,
    webpki: Arc<tokio_rustls::rustls::client::WebPkiServerVerifier>,
    provider: Arc<tokio_rustls::rustls::crypto::CryptoProvider>,
}

impl tokio_rustls::rustls::client::danger::ServerCertVerifier for PinnedOrRoots {
    fn verify_server_cert(
        &self,
        end_entity: &rustls_pki_types::CertificateDer<'_>,
        intermediates: &[rustls_pki_types::CertificateDer<'_>],
        server_name: &rustls_pki_types::ServerName<'_>,
        ocsp_response: &[u8],
        now: rustls_pki_types::UnixTime,
    ) -> Result<tokio_rustls::rustls::client::danger::ServerCertVerified, tokio_rustls::rustls::Error>
    {
        if self
            .pinned
            .iter()
            .any(|c| c.as_ref() == end_entity.as_ref())
        {
            return Ok(tokio_rustls::rustls::client::danger::ServerCertVerified::assertion());
        }
        self.webpki
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &tokio_rustls::rustls::DigitallySignedStruct,
    ) -> Result<
        tokio_rustls::rustls::client::danger::HandshakeSignatureValid,
        tokio_rustls::rustls::Error,
    > {
        tokio_rustls::rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &tokio_rustls::rustls::DigitallySignedStruct,
    ) -> Result<
        tokio_rustls::rustls::client::danger::HandshakeSignatureValid,
        tokio_rustls::rustls::Error,
    > {
        tokio_rustls::rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<tokio_rustls::rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

async fn run<W: Wire>(
    url: String,
    tls: Option<Connector>,
    options: ConnectOptions,
    mut commands: mpsc::UnboundedReceiver<Command<W::Out>>,
    events: mpsc::Sender<TransportEvent<W::In>>,
) {
    let mut attempt: u32 = 0;
    let mut welcomed = false;
    let mut suspended = false;
    loop {
        if suspended {
            // Offline on purpose: wait for resume, dropping sends.
            loop {
                match commands.recv().await {
                    Some(Command::Resume) => break,
                    Some(Command::Send(_) | Command::Suspend) => {}
                    Some(Command::Close) | None => {
                        let _ = events.send(TransportEvent::Closed { error: None }).await;
                        return;
                    }
                }
            }
            suspended = false;
            attempt = 0;
        }
        let end = match tokio::time::timeout(
            options.connect_timeout,
            tokio_tungstenite::connect_async_tls_with_config(url.as_str(), None, true, tls.clone()),
        )
        .await
        {
            Ok(Ok((ws, _response))) => {
                if events.send(TransportEvent::Connected).await.is_err() {
                    return;
                }
                session::<W>(
                    ws,
                    &options,
                    &mut commands,
                    &events,
                    &mut attempt,
                    &mut welcomed,
                )
                .await
            }
            Ok(Err(e)) => End::Dropped(format!("cannot connect to {url}: {e}")),
            Err(_) => End::Dropped(format!(
                "cannot connect to {url}: no answer in {:?}",
                options.connect_timeout
            )),
        };
        match end {
            End::Closed(error) => {
                let _ = events.send(TransportEvent::Closed { error }).await;
                return;
            }
            End::Suspended => {
                suspended = true;
                let ev = TransportEvent::Disconnected {
                    reason: "suspended".into(),
                    retry_in: None,
                };
                if events.send(ev).await.is_err() {
                    return;
                }
            }
            End::Dropped(reason) => {
                let delay = options.backoff.delay(attempt, rand::random::<f64>());
                attempt = attempt.saturating_add(1);
                let ev = TransportEvent::Disconnected {
                    reason,
                    retry_in: Some(delay),
                };
                if events.send(ev).await.is_err() {
                    return;
                }
                // Wait out the backoff, dropping sends, obeying commands.
                let deadline = Instant::now() + delay;
                loop {
                    tokio::select! {
                        _ = tokio::time::sleep_until(deadline) => break,
                        cmd = commands.recv() => match cmd {
                            Some(Command::Send(_)) => {}
                            Some(Command::Resume) => { attempt = 0; break; }
                            Some(Command::Suspend) => {
                                suspended = true;
                                let ev = TransportEvent::Disconnected {
                                    reason: "suspended".into(),
                                    retry_in: None,
                                };
                                if events.send(ev).await.is_err() {
                                    return;
                                }
                                break;
                            }
                            Some(Command::Close) | None => {
                                let _ = events.send(TransportEvent::Closed { error: None }).await;
                                return;
                            }
                        },
                    }
                }
            }
        }
    }
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn session<W: Wire>(
    ws: Ws,
    options: &ConnectOptions,
    commands: &mut mpsc::UnboundedReceiver<Command<W::Out>>,
    events: &mpsc::Sender<TransportEvent<W::In>>,
    attempt: &mut u32,
    welcomed: &mut bool,
) -> End {
    let (mut sink, mut stream) = ws.split();
    let mut awaiting_join = true;
    let mut fatal: Option<ProtocolError> = None;
    let ping_every = options.ping_interval.unwrap_or(Duration::from_secs(3600));
    let mut ping = tokio::time::interval_at(Instant::now() + ping_every, ping_every);
    let mut last_heard = Instant::now();
    loop {
        tokio::select! {
            cmd = commands.recv() => match cmd {
                Some(Command::Send(msg)) => {
                    let is_join = W::is_join(&msg);
                    if awaiting_join != is_join {
                        // Before the join: stale, meant for the previous
                        // connection. A second join: the owner answered
                        // both this connection's `Connected` and an older
                        // one's; the first join does for both.
                        continue;
                    }
                    awaiting_join = false;
                    if let Err(e) = sink.send(Message::text(W::encode(&msg))).await {
                        return End::Dropped(format!("send failed: {e}"));
                    }
                }
                Some(Command::Resume) => {}
                Some(Command::Suspend) => {
                    let _ = sink.close().await;
                    return End::Suspended;
                }
                Some(Command::Close) | None => {
                    let _ = sink.send(ClientMsg::Leave.to_json().into()).await;
                    let _ = sink.close().await;
                    return End::Closed(None);
                }
            },
            frame = stream.next() => {
                last_heard = Instant::now();
                match frame {
                    Some(Ok(Message::Text(text))) => {
                        let msg = match W::decode(text.as_str()) {
                            Ok(m) => m,
                            Err(e) => {
                                tracing::warn!("ignoring a server event that does not parse: {e}");
                                continue;
                            }
                        };
                        match W::peek(&msg) {
                            Peek::Welcome => {
                                *attempt = 0;
                                *welcomed = true;
                            }
                            // Welcomed before, the session token may be one
                            // the server never read back to us: after a
                            // restart the server gives a new session, and if
                            // the connection drops before its welcome is
                            // read, our dropped connection holds the name
                            // with a token we do not know. The replica
                            // forgets its token; join again after a backoff.
                            Peek::Error {
                                code: ErrorCode::BadSession,
                                ..
                            } if *welcomed => {}
                            Peek::Error { code, message } if stops_reconnecting(code) => {
                                fatal = Some(ProtocolError::new(code, message));
                            }
                            _ => {}
                        }
                        if events.send(TransportEvent::Message(msg)).await.is_err() {
                            return End::Closed(None);
                        }
                    }
                    Some(Ok(Message::Close(frame))) => {
                        if fatal.is_some() {
                            return End::Closed(fatal);
                        }
                        let reason = frame
                            .map(|f| format!("closed by the server ({}): {}", f.code, f.reason))
                            .unwrap_or_else(|| "closed by the server".into());
                        return End::Dropped(reason);
                    }
                    Some(Ok(_)) => {} // ping/pong/binary: tungstenite answers pings
                    Some(Err(e)) => {
                        if fatal.is_some() {
                            return End::Closed(fatal);
                        }
                        return End::Dropped(format!("connection error: {e}"));
                    }
                    None => {
                        if fatal.is_some() {
                            return End::Closed(fatal);
                        }
                        return End::Dropped("connection closed".into());
                    }
                }
            }
            _ = ping.tick(), if options.ping_interval.is_some() => {
                if last_heard.elapsed() > ping_every * 2 {
                    return End::Dropped(format!("no answer from the server for {:?}", ping_every * 2));
                }
                if let Err(e) = sink.send(Message::Ping(Vec::new().into())).await {
                    return End::Dropped(format!("ping failed: {e}"));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn urls_are_completed() {
        let ok = |s: &str| ws_url(s).unwrap();
        assert_eq!(ok("127.0.0.1:7878"), "ws://127.0.0.1:7878/ws");
        assert_eq!(ok("ws://h:1"), "ws://h:1/ws");
        assert_eq!(ok("ws://h:1/"), "ws://h:1/ws");
        assert_eq!(ok("ws://h:1/ws"), "ws://h:1/ws");
        assert_eq!(ok("http://h:1"), "ws://h:1/ws");
        assert_eq!(
            ok("HTTPS://example.org/collab/ws"),
            "wss://example.org/collab/ws"
        );
        assert_eq!(ok(" [::1]:80 "), "ws://[::1]:80/ws");
        assert_eq!(ok("ws://h:1/ws?token=x"), "ws://h:1/ws?token=x");
        assert!(ws_url("").is_err());
        assert!(ws_url("ftp://h").is_err());
        assert!(ws_url("ws:///ws").is_err());
    }

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let b = Backoff::default();
        assert_eq!(b.delay(0, 0.0), Duration::from_millis(100));
        assert_eq!(b.delay(1, 0.0), Duration::from_millis(200));
        assert_eq!(b.delay(3, 0.0), Duration::from_millis(800));
        assert_eq!(b.delay(10, 0.0), Duration::from_secs(5));
        assert_eq!(b.delay(u32::MAX, 0.0), Duration::from_secs(5));
        assert_eq!(b.delay(10, 1.0), Duration::from_millis(2500));
        let d = b.delay(2, 0.5);
        assert!(
            d > Duration::from_millis(250) && d < Duration::from_millis(400),
            "{d:?}"
        );
    }

    #[test]
    fn only_hopeless_refusals_stop_reconnecting() {
        assert!(stops_reconnecting(ErrorCode::NameTaken));
        assert!(stops_reconnecting(ErrorCode::VersionMismatch));
        assert!(stops_reconnecting(ErrorCode::Unauthorized));
        assert!(stops_reconnecting(ErrorCode::BadSession));
        assert!(!stops_reconnecting(ErrorCode::SlowConsumer));
        assert!(!stops_reconnecting(ErrorCode::ServerFull));
        assert!(!stops_reconnecting(ErrorCode::RateLimited));
    }
}
