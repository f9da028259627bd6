//! The baseline: the least a WebSocket room server can do. It parses
//! nothing and keeps no document; each text frame a connection sends is
//! forwarded as is to the other connections of its room. The room is the
//! last segment of the path (`ws://ADDR/relay/ROOM`). After the handshake
//! the relay sends one text frame, `ready`, once the connection is in its
//! room.
//!
//! It is built the way collab-server is (one task per connection, a
//! bounded outbound queue per connection filled with `try_send` under the
//! room's lock, a connection whose queue is full is dropped, the same
//! WebSocket buffer sizes and `TCP_NODELAY`), so the difference between the
//! two is the price of collab's protocol and document: JSON, base64, the
//! Loro import, the ack.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

use futures::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

/// The path prefix the relay serves.
pub const RELAY_PATH: &str = "/relay/";

type Members = Arc<Mutex<Vec<(u64, mpsc::Sender<Utf8Bytes>)>>>;

#[derive(Default)]
struct Rooms {
    rooms: Mutex<HashMap<String, Members>>,
    next_id: AtomicU64,
}

impl Rooms {
    fn enter(&self, room: &str, tx: mpsc::Sender<Utf8Bytes>) -> (u64, Members) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let members = {
            let mut rooms = self.rooms.lock();
            Arc::clone(rooms.entry(room.to_string()).or_default())
        };
        members.lock().push((id, tx));
        (id, members)
    }

    fn leave(&self, room: &str, id: u64, members: &Members) {
        let empty = {
            let mut m = members.lock();
            m.retain(|(i, _)| *i != id);
            m.is_empty()
        };
        if empty {
            let mut rooms = self.rooms.lock();
            if rooms.get(room).is_some_and(|m| m.lock().is_empty()) {
                rooms.remove(room);
            }
        }
    }
}

/// The same read buffer as collab-server (2 KiB, its `READ_BUFFER_BYTES`),
/// no write buffering.
fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(2 * 1024)
        .write_buffer_size(0)
        .max_message_size(Some(1024 * 1024))
        .max_frame_size(Some(1024 * 1024))
}

/// Serves the relay on `listener` until `shutdown` completes. `queue` is
/// the per-connection outbound queue (collab-server's default is 256).
pub async fn run(listener: TcpListener, queue: usize, shutdown: impl std::future::Future) {
    let rooms = Arc::new(Rooms::default());
    let queue = queue.max(1);
    let accept = async {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    tokio::spawn(serve(stream, Arc::clone(&rooms), queue));
                }
                Err(_) => {
                    // Out of descriptors or similar: back off briefly.
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
            }
        }
    };
    tokio::select! {
        () = accept => {}
        _ = shutdown => {}
    }
}

async fn serve(stream: TcpStream, rooms: Arc<Rooms>, queue: usize) {
    let _ = stream.set_nodelay(true);
    let mut room = String::new();
    #[allow(clippy::result_large_err)] // the signature tungstenite asks for
    let callback = |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
        match req.uri().path().strip_prefix(RELAY_PATH) {
            Some(r) if !r.is_empty() => {
                room = r.to_string();
                Ok(resp)
            }
            _ => {
                let mut err = ErrorResponse::new(Some("the relay serves /relay/ROOM\n".into()));
                *err.status_mut() = tokio_tungstenite::tungstenite::http::StatusCode::NOT_FOUND;
                Err(err)
            }
        }
    };
    let accepted = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        tokio_tungstenite::accept_hdr_async_with_config(stream, callback, Some(ws_config())),
    )
    .await;
    let Ok(Ok(mut ws)) = accepted else {
        return;
    };
    let (tx, mut rx) = mpsc::channel::<Utf8Bytes>(queue);
    let (id, members) = rooms.enter(&room, tx);
    if ws.send(Message::text("ready")).await.is_ok() {
        loop {
            tokio::select! {
                frame = ws.next() => match frame {
                    Some(Ok(Message::Text(text))) => {
                        let mut m = members.lock();
                        // A member whose queue is full is dropped, like
                        // collab-server's slow consumer: its sender goes,
                        // its task sees the queue close and ends.
                        m.retain(|(other, q)| {
                            *other == id || !matches!(
                                q.try_send(text.clone()),
                                Err(mpsc::error::TrySendError::Full(_))
                            )
                        });
                    }
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                    Some(Ok(_)) => {}
                },
                out = rx.recv() => match out {
                    Some(text) => {
                        if ws.send(Message::Text(text)).await.is_err() {
                            break;
                        }
                    }
                    None => break,
                },
            }
        }
    }
    rooms.leave(&room, id, &members);
    let _ = ws.close(None).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    #[allow(clippy::unwrap_used)]
    async fn forwards_to_the_others_of_the_room_only() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(run(listener, 16, stopped));
        let url = |room: &str| format!("ws://{addr}{RELAY_PATH}{room}");
        let mut a = tokio_tungstenite::connect_async(url("r")).await.unwrap().0;
        let mut b = tokio_tungstenite::connect_async(url("r")).await.unwrap().0;
        let mut c = tokio_tungstenite::connect_async(url("other"))
            .await
            .unwrap()
            .0;
        for ws in [&mut a, &mut b, &mut c] {
            let ready = ws.next().await.unwrap().unwrap();
            assert_eq!(ready.into_text().unwrap().as_str(), "ready");
        }
        a.send(Message::text("hello")).await.unwrap();
        let got = b.next().await.unwrap().unwrap();
        assert_eq!(got.into_text().unwrap().as_str(), "hello");
        let none = tokio::time::timeout(std::time::Duration::from_millis(100), c.next()).await;
        assert!(none.is_err(), "another room got the frame");
        let _ = stop.send(());
        server.await.unwrap();
    }
}
