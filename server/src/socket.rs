//! The WebSocket layer under a connection: handshake on [`WS_PATH`] only,
//! small buffers, fragmenting big messages, and closing so the peer reads
//! everything before the TCP connection goes.
//!
//! Buffers are the bulk of an idle connection's cost: tungstenite reserves
//! 128 KiB to read by default (here [`READ_BUFFER_BYTES`], 2 KiB), and its
//! write buffer keeps the capacity of the largest frame ever sent, so big
//! messages leave as 4 KiB fragments.

use std::time::Duration;

use collab_protocol::{ErrorCode, ProtocolError, ServerMsg, WS_PATH};
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::error::Error as WsError;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Bytes, Message, Utf8Bytes};
use tracing::debug;

use crate::Shared;
use crate::config::Config;
use crate::metrics::Refusal;
use crate::shutdown::Shutdown;
use crate::tls::Stream;

pub(crate) type Ws = WebSocketStream<Stream>;

/// Outgoing messages larger than this go out as fragments of this size.
pub(crate) const FRAGMENT_BYTES: usize = 4 * 1024;

/// Small events waiting in a member's queue are written together up to
/// about this many bytes. It is also the socket's write buffer: tungstenite
/// keeps that buffer's capacity, so a bound near [`FRAGMENT_BYTES`] keeps
/// what a connection holds after a burst small.
pub(crate) const COALESCE_BYTES: usize = 8 * 1024;

/// The socket's read buffer, allocated (and zeroed) for every connection:
/// a keystroke's frame is about 200 bytes, so 2 KiB reads a burst of them
/// at once, and two buffers share a page where 4 KiB took a page each
/// (about 2 KiB of resident memory per idle connection, BENCHMARKS.md issue
/// 16). A bigger frame is read 2 KiB per call (a 1 MiB paste: 512 reads).
pub(crate) const READ_BUFFER_BYTES: usize = 2 * 1024;

fn ws_config(config: &Config) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(COALESCE_BYTES)
        .max_message_size(Some(config.max_frame_bytes))
        .max_frame_size(Some(config.max_frame_bytes))
}

/// Refuses any path but [`WS_PATH`] with 404.
#[allow(clippy::result_large_err)] // the signature tungstenite asks for
fn check_path(req: &Request, resp: Response) -> Result<Response, ErrorResponse> {
    if req.uri().path() == WS_PATH {
        return Ok(resp);
    }
    let mut err = ErrorResponse::new(Some(format!("collab serves its WebSocket on {WS_PATH}\n")));
    *err.status_mut() = StatusCode::NOT_FOUND;
    Err(err)
}

/// What the first bytes of a connection ask for.
#[derive(Debug, PartialEq, Eq)]
enum Ask {
    /// A WebSocket upgrade on [`WS_PATH`] (or too little seen to tell):
    /// tungstenite decides.
    WebSocket,
    /// Another path: 404.
    OtherPath,
    /// Plain HTTP on [`WS_PATH`]: 426 Upgrade Required.
    NoUpgrade,
    /// `GET /healthz`: 200 `ok`.
    Health,
    /// `GET /metrics`: the Prometheus text.
    Metrics,
}

/// The liveness probe's path.
pub(crate) const HEALTH_PATH: &str = "/healthz";
/// The Prometheus scrape path.
pub(crate) const METRICS_PATH: &str = "/metrics";

/// Classifies the request in `head` (a prefix of what the client sent).
fn classify(head: &[u8]) -> Ask {
    let text = String::from_utf8_lossy(head);
    let Some(line_end) = text.find("\r\n") else {
        return Ask::WebSocket;
    };
    let path = text[..line_end].split(' ').nth(1).unwrap_or("");
    let path = path.split('?').next().unwrap_or("");
    match path {
        HEALTH_PATH => return Ask::Health,
        METRICS_PATH => return Ask::Metrics,
        WS_PATH => {}
        _ => return Ask::OtherPath,
    }
    let Some(end) = text.find("\r\n\r\n") else {
        return Ask::WebSocket;
    };
    let upgrade = text[..end].lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("upgrade:") && l.contains("websocket")
    });
    if upgrade {
        Ask::WebSocket
    } else {
        Ask::NoUpgrade
    }
}

/// Answers plain HTTP requests that tungstenite would just drop:
/// [`HEALTH_PATH`] and [`METRICS_PATH`], another path with 404, a
/// non-upgrade request on [`WS_PATH`] with 426. Reads the request head (up
/// to 2 KiB) and, when it is (or may be) a WebSocket handshake, returns the
/// stream with that head put back for tungstenite.
/// The first byte of a TLS ClientHello (a handshake record).
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

async fn screen(mut stream: Stream, shared: &Shared) -> Option<Stream> {
    let mut head = vec![0u8; 2048];
    let mut n = 0;
    while n < head.len() && !head[..n].windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut head[n..]).await {
            Ok(0) if n == 0 => return None,
            Ok(0) => break,
            Ok(read) => n += read,
            Err(_) => return None,
        }
        // A TLS handshake record (a `wss://` client at a plain server; no
        // HTTP request starts with it) never ends in a blank line and waits
        // for our answer: close at once, so the client fails now instead of
        // at the handshake deadline (and collab-tui says to use `ws://`).
        if head[0] == TLS_HANDSHAKE_RECORD {
            shared.metrics.http_request();
            return None;
        }
    }
    head.truncate(n);
    let (status, extra, body) = match classify(&head) {
        Ask::WebSocket => {
            stream.unread(head);
            return Some(stream);
        }
        Ask::Health if shared.healthy() => ("200 OK", "", "ok\n".to_owned()),
        Ask::Health => (
            "503 Service Unavailable",
            "",
            "redis unreachable\n".to_owned(),
        ),
        Ask::Metrics => ("200 OK", "", shared.render_metrics()),
        Ask::OtherPath => (
            "404 Not Found",
            "",
            format!("collab serves its WebSocket on {WS_PATH}\n"),
        ),
        Ask::NoUpgrade => (
            "426 Upgrade Required",
            "Upgrade: websocket\r\n",
            "This is a collab WebSocket endpoint; connect with a collab client.\n".to_owned(),
        ),
    };
    shared.metrics.http_request();
    let content_type = if matches!(classify(&head), Ask::Metrics) {
        "text/plain; version=0.0.4; charset=utf-8"
    } else {
        "text/plain; charset=utf-8"
    };
    let head_only = head.starts_with(b"HEAD ");
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nConnection: close\r\n{extra}\r\n{}",
        body.len(),
        if head_only { "" } else { body.as_str() }
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
    if !head.windows(4).any(|w| w == b"\r\n\r\n") {
        // A head longer than we read: closing with it unread would make the
        // kernel answer with a reset that can destroy the response.
        drain(&mut stream, 64 * 1024).await;
    }
    None
}

/// Handshakes a fresh TCP connection (TLS first when configured) within
/// the configured time, answering plain HTTP on the way.
pub(crate) async fn handshake(tcp: TcpStream, shared: &Shared) -> Option<Ws> {
    let config = &shared.config;
    let _ = tcp.set_nodelay(true);
    let opened = async {
        let stream = match &shared.tls {
            Some(tls) => match tls.accept(tcp).await {
                Ok(s) => s,
                Err(e) => {
                    debug!(error = %e, "TLS handshake failed");
                    return None;
                }
            },
            None => Stream::plain(tcp),
        };
        screen(stream, shared).await
    };
    let stream = timeout(config.handshake_timeout, opened).await.ok()??;
    let accept = tokio_tungstenite::accept_hdr_async_with_config(
        stream,
        check_path,
        Some(ws_config(config)),
    );
    match timeout(config.handshake_timeout, accept).await {
        Ok(Ok(ws)) => Some(ws),
        Ok(Err(e)) => {
            debug!(error = %e, "handshake failed");
            None
        }
        Err(_) => {
            debug!("handshake timed out");
            None
        }
    }
}

/// The frames of one text message: itself when small, else fragments of
/// [`FRAGMENT_BYTES`] (slices of one buffer, no copies).
pub(crate) fn fragments(text: Utf8Bytes) -> impl Iterator<Item = Message> {
    let bytes = Bytes::from(text);
    let len = bytes.len();
    let whole = len <= FRAGMENT_BYTES;
    let count = if whole {
        1
    } else {
        len.div_ceil(FRAGMENT_BYTES)
    };
    (0..count).map(move |i| {
        let at = i * FRAGMENT_BYTES;
        let end = (at + FRAGMENT_BYTES).min(len);
        let op = if i == 0 { Data::Text } else { Data::Continue };
        Message::Frame(Frame::message(
            bytes.slice(at..end),
            OpCode::Data(op),
            end == len,
        ))
    })
}

pub(crate) fn close_frame(code: CloseCode, reason: &'static str) -> Option<CloseFrame> {
    Some(CloseFrame {
        code,
        reason: Utf8Bytes::from_static(reason),
    })
}

/// Sends a close frame and reads until the peer's close (or the end), so the
/// peer sees everything before the TCP connection goes.
pub(crate) async fn close_and_wait(ws: &mut Ws, frame: Option<CloseFrame>) -> Result<(), WsError> {
    ws.close(frame).await?;
    while let Some(Ok(_)) = ws.next().await {}
    Ok(())
}

/// Sends one event, then closes and waits for the peer's close.
pub(crate) async fn say_and_close(
    ws: &mut Ws,
    msg: &ServerMsg,
    frame: Option<CloseFrame>,
) -> Result<(), WsError> {
    ws.send(Message::Text(msg.to_json().into())).await?;
    close_and_wait(ws, frame).await
}

/// Reads and discards up to `limit` bytes until the peer closes: after a
/// frame over the limit the stream is out of step, and closing with unread
/// data would make the kernel answer with a reset that can destroy our
/// error event in flight.
pub(crate) async fn drain(stream: &mut Stream, limit: usize) {
    let mut buf = [0u8; 4096];
    let mut total = 0usize;
    while total < limit {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => total += n,
        }
    }
}

/// Refuses a connection over a limit: `server_full`, close. (Plain HTTP
/// requests, `/healthz` and `/metrics` included, were answered during the
/// handshake.)
pub(crate) async fn refuse_full(mut ws: Ws, shared: &Shared, why: Refusal, _shutdown: Shutdown) {
    let config = &shared.config;
    let message = match why {
        Refusal::MaxConnections => format!(
            "The server has {} connections, its limit: try again later.",
            config.max_connections
        ),
        Refusal::MaxConnectionsPerIp => format!(
            "Your address has {} connections to this server, its limit: close some and try again.",
            config.max_connections_per_ip
        ),
        Refusal::HalfOpenPerIp | Refusal::HalfOpenEvicted => {
            "Too many connections are opening: try again later.".to_owned()
        }
    };
    shared.metrics.error(ErrorCode::ServerFull);
    let msg = ServerMsg::from(ProtocolError::new(ErrorCode::ServerFull, message));
    let frame = close_frame(CloseCode::Again, "server full");
    let _ = timeout(Duration::from_secs(1), say_and_close(&mut ws, &msg, frame)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_is_told_apart_from_websocket() {
        let ws =
            b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n";
        assert_eq!(classify(ws), Ask::WebSocket);
        assert_eq!(
            classify(b"GET /ws?x=1 HTTP/1.1\r\nUpgrade: WebSocket\r\n\r\n"),
            Ask::WebSocket
        );
        assert_eq!(
            classify(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
            Ask::OtherPath
        );
        assert_eq!(classify(b"GET /wsx HTTP/1.1\r\n"), Ask::OtherPath);
        assert_eq!(
            classify(b"GET /ws HTTP/1.1\r\nHost: x\r\n\r\n"),
            Ask::NoUpgrade
        );
        assert_eq!(classify(b"GET /healthz HTTP/1.1\r\n\r\n"), Ask::Health);
        assert_eq!(classify(b"HEAD /healthz?x HTTP/1.1\r\n\r\n"), Ask::Health);
        assert_eq!(classify(b"GET /metrics HTTP/1.1\r\n\r\n"), Ask::Metrics);
        assert_eq!(classify(b"GET /metricsx HTTP/1.1\r\n"), Ask::OtherPath);
        assert_eq!(classify(b"GET /w"), Ask::WebSocket, "too little to tell");
        assert_eq!(classify(b"GET /ws HTTP/1.1\r\nHost"), Ask::WebSocket);
    }

    #[test]
    fn small_messages_are_one_frame_big_ones_fragments() {
        let small: Vec<_> = fragments(Utf8Bytes::from_static("{}")).collect();
        assert_eq!(small.len(), 1);
        let text = "é".repeat(FRAGMENT_BYTES); // 2 bytes each: 2 fragments
        let frames: Vec<_> = fragments(Utf8Bytes::from(text.clone())).collect();
        assert_eq!(frames.len(), 2);
        let mut joined = Vec::new();
        for (i, m) in frames.into_iter().enumerate() {
            let Message::Frame(f) = m else {
                panic!("frames expected")
            };
            assert_eq!(f.header().is_final, i == 1);
            let op = if i == 0 { Data::Text } else { Data::Continue };
            assert_eq!(f.header().opcode, OpCode::Data(op));
            joined.extend_from_slice(f.payload());
        }
        assert_eq!(joined, text.as_bytes());
    }
}
