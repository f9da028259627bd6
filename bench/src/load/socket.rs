//! The bench's WebSocket connections: which server it talks to
//! ([`Endpoint`]), opening a socket and joining a room. Apart from the
//! typing, so that `idle` (which only holds joined connections) shares it
//! with the load phases.

use std::time::Duration;

use collab_protocol::{ClientMsg, Join, PROTOCOL_VERSION, ServerMsg};
use futures::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long a connect, a join or one send may take before it is an error.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// Which server speaks to the bench.
#[derive(Debug, Clone)]
pub enum Endpoint {
    /// collab-server at `ws://ADDR/ws`; with several URLs, nodes sharing
    /// rooms through Redis, each room's members spread over `spread` of
    /// them ([`Endpoint::placed`]).
    Collab {
        urls: Vec<String>,
        spread: usize,
        token: Option<String>,
    },
    /// The bare relay at `ws://ADDR/relay/ROOM`: senders send frames
    /// already shaped like collab's `update` event (`from` = sender index),
    /// so readers parse the same JSON either way.
    Relay { base: String },
}

impl Endpoint {
    pub fn is_relay(&self) -> bool {
        matches!(self, Endpoint::Relay { .. })
    }

    /// Where member `user` of room `room` connects: node `(room + user mod
    /// spread) mod nodes`, so every room lives on `spread` nodes (one
    /// node's worth of rooms starting on each). The relay has one address.
    pub fn placed(&self, room: usize, user: usize) -> Endpoint {
        match self {
            Endpoint::Collab {
                urls,
                spread,
                token,
            } if urls.len() > 1 => {
                let node = (room + user % (*spread).max(1)) % urls.len();
                Endpoint::Collab {
                    urls: vec![urls[node].clone()],
                    spread: 1,
                    token: token.clone(),
                }
            }
            other => other.clone(),
        }
    }
}

/// The bench's own sockets. Frames are ~150 bytes: tungstenite zeroes up
/// to `read_buffer_size` of its buffer before every read (also the one that
/// finds nothing), so 16 KiB cost the generator a 16 KiB memset per read
/// (~5% of its CPU); 4 KiB holds any burst it gets.
fn client_ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0)
}

/// Opens a WebSocket (`TCP_NODELAY`), within [`IO_TIMEOUT`].
pub async fn connect(url: &str) -> Result<Ws, String> {
    let connecting =
        tokio_tungstenite::connect_async_with_config(url, Some(client_ws_config()), true);
    match timeout(IO_TIMEOUT, connecting).await {
        Ok(Ok((ws, _))) => Ok(ws),
        Ok(Err(e)) => Err(format!("connect: {e}")),
        Err(_) => Err("connect: timed out".into()),
    }
}

/// Connects and joins `room` as `user`; returns the socket and, for
/// collab, my member id (the relay has none). The welcome must come within
/// [`IO_TIMEOUT`].
pub async fn join(endpoint: &Endpoint, room: &str, user: &str) -> Result<(Ws, u64), String> {
    join_until(endpoint, room, user, Instant::now() + IO_TIMEOUT).await
}

/// [`join`], with the welcome awaited until `welcome_by` (a heavy stored
/// room's first joiner waits for its load).
pub async fn join_until(
    endpoint: &Endpoint,
    room: &str,
    user: &str,
    welcome_by: Instant,
) -> Result<(Ws, u64), String> {
    match endpoint {
        Endpoint::Collab { urls, token, .. } => {
            let url = urls
                .first()
                .ok_or_else(|| "join: no server URL".to_string())?;
            let mut ws = connect(url).await?;
            let join = ClientMsg::Join(Join {
                protocol: PROTOCOL_VERSION,
                room: room.to_string(),
                user: user.to_string(),
                session: None,
                token: token.clone(),
                version: None,
                doc_encodings: Vec::new(),
                text_first: false,
            });
            timeout(IO_TIMEOUT, ws.send(Message::text(join.to_json())))
                .await
                .map_err(|_| "join: send timed out".to_string())?
                .map_err(|e| format!("join: {e}"))?;
            loop {
                let frame = tokio::time::timeout_at(welcome_by, ws.next())
                    .await
                    .map_err(|_| "join: no welcome".to_string())?;
                match frame {
                    Some(Ok(Message::Text(t))) => match ServerMsg::from_json(&t) {
                        Ok(ServerMsg::Welcome(w)) => return Ok((ws, w.you.id)),
                        Ok(ServerMsg::Error { code, .. }) => {
                            return Err(format!("join refused: {code}"));
                        }
                        _ => {}
                    },
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Err(format!("join: {e}")),
                    None => return Err("join: closed".into()),
                }
            }
        }
        Endpoint::Relay { base } => {
            let mut ws = connect(&format!("{base}{room}")).await?;
            let frame = timeout(IO_TIMEOUT, ws.next())
                .await
                .map_err(|_| "relay: no ready".to_string())?;
            match frame {
                Some(Ok(Message::Text(t))) if t.as_str() == "ready" => Ok((ws, 0)),
                other => Err(format!("relay: expected ready, got {other:?}")),
            }
        }
    }
}
