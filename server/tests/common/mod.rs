//! Test helpers: a real server on 127.0.0.1:0 and real WebSocket clients.
//! Every wait is bounded by a timeout; nothing sleeps to synchronise.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

#[cfg(target_os = "linux")]
pub mod caddy;
#[cfg(target_os = "linux")]
pub mod daemon;
#[cfg(target_os = "linux")]
pub mod nginx;
pub mod redis;

use std::net::SocketAddr;
use std::time::Duration;

use collab_doc::SharedDoc;
use collab_protocol::{
    Base64Bytes, ClientMsg, ErrorCode, Join, PROTOCOL_VERSION, ServerMsg, WS_PATH, Welcome,
};
use collab_server::Config;
use futures::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long any expected event may take.
pub const WAIT: Duration = Duration::from_secs(5);

/// A config with short timers for tests.
pub fn test_config() -> Config {
    Config {
        shutdown_grace: Duration::from_secs(2),
        // Tests that send megabytes are not about pacing (`budget.rs` is):
        // at the default 1 MiB/s the history churn alone would take a minute.
        inbound_bytes_per_second: 1 << 40,
        ..Config::default()
    }
}

pub struct Server {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    pub handle: JoinHandle<std::io::Result<()>>,
}

impl Server {
    pub async fn start(config: Config) -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let handle = tokio::spawn(collab_server::run(listener, config, async move {
            let _ = stopped.await;
        }));
        Server {
            addr,
            stop: Some(stop),
            handle,
        }
    }

    pub fn url(&self) -> String {
        format!("ws://{}{}", self.addr, WS_PATH)
    }

    /// Triggers shutdown (run keeps going until the clients are gone).
    pub fn trigger_shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Shuts down and waits for `run` to return.
    pub async fn stop(mut self) {
        self.trigger_shutdown();
        timeout(WAIT, self.handle)
            .await
            .expect("run returns after shutdown")
            .unwrap()
            .unwrap();
    }

    pub async fn client(&self) -> Client {
        Client::connect(self.addr).await
    }

    /// A client joined to `room` as `user`, its welcome read.
    pub async fn join(&self, room: &str, user: &str) -> (Client, Welcome) {
        let mut c = self.client().await;
        let w = c.join(room, user).await;
        (c, w)
    }
}

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// One thing the server sent, as it came on the wire.
#[derive(Debug)]
pub enum Frame {
    /// A text frame's JSON.
    Event(serde_json::Value),
    /// A close frame: its code and reason, if it had them.
    Close(Option<(u16, String)>),
    /// The TCP connection ended without a close frame.
    Ended,
}

pub struct Client {
    pub ws: Ws,
}

pub fn join_msg(room: &str, user: &str) -> Join {
    Join {
        protocol: PROTOCOL_VERSION,
        room: room.into(),
        user: user.into(),
        session: None,
        token: None,
        version: None,
        doc_encodings: Vec::new(),
        text_first: false,
    }
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> Client {
        let url = format!("ws://{addr}{WS_PATH}");
        let (ws, _) = timeout(WAIT, tokio_tungstenite::connect_async(url))
            .await
            .expect("connect in time")
            .expect("connect");
        Client { ws }
    }

    pub async fn send(&mut self, msg: &ClientMsg) {
        self.send_raw(&msg.to_json()).await;
    }

    pub async fn send_raw(&mut self, text: &str) {
        timeout(WAIT, self.ws.send(Message::Text(text.into())))
            .await
            .expect("send in time")
            .expect("send");
    }

    /// Sends a join and expects the welcome.
    pub async fn join(&mut self, room: &str, user: &str) -> Welcome {
        self.join_with(join_msg(room, user)).await
    }

    /// Sends a join and expects the welcome, with its document assembled
    /// from the `doc_part` events that follow it when it came in parts.
    pub async fn join_with(&mut self, join: Join) -> Welcome {
        self.send(&ClientMsg::Join(join)).await;
        let mut w = match self.recv().await {
            ServerMsg::Welcome(w) => *w,
            other => panic!("expected welcome, got {other:?}"),
        };
        while w.doc_parts > 0 {
            match self.recv().await {
                ServerMsg::DocPart { data } => w.doc.0.extend_from_slice(data.as_slice()),
                other => panic!("expected doc_part, got {other:?}"),
            }
            w.doc_parts -= 1;
        }
        // The updates after the document (a snapshot, or updates): folded into it, so the welcome a
        // test sees is the whole room, as a client sees it once assembled.
        if w.doc_updates > 0 {
            if w.doc_encoding.take().is_some() {
                w.doc = Base64Bytes(
                    collab_doc::zlib::inflate(w.doc.as_slice(), 1 << 26).expect("welcome zlib"),
                );
            }
            let mut doc = SharedDoc::from_snapshot(w.doc.as_slice()).expect("welcome snapshot");
            while w.doc_updates > 0 {
                match self.recv().await {
                    ServerMsg::Update { from: 0, data } => {
                        doc.import(data.as_slice()).expect("welcome update");
                    }
                    other => panic!("expected the welcome's update, got {other:?}"),
                }
                w.doc_updates -= 1;
            }
            w.doc = Base64Bytes(doc.snapshot().expect("snapshot"));
        }
        w
    }

    /// The next text message as it came, or None when the connection
    /// closed.
    pub async fn next_raw(&mut self) -> Option<String> {
        loop {
            let frame = timeout(WAIT, self.ws.next())
                .await
                .expect("a server event in time");
            match frame {
                Some(Ok(Message::Text(t))) => return Some(t.as_str().to_owned()),
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return None,
                Some(Ok(_)) => continue,
            }
        }
    }

    /// The next server event, or None when the connection closed.
    pub async fn next(&mut self) -> Option<ServerMsg> {
        loop {
            let frame = timeout(WAIT, self.ws.next())
                .await
                .expect("a server event in time");
            match frame {
                None | Some(Err(_)) => return None,
                Some(Ok(Message::Text(t))) => {
                    return Some(ServerMsg::from_json(t.as_str()).expect("server JSON"));
                }
                Some(Ok(Message::Close(_))) => return None,
                Some(Ok(_)) => continue,
            }
        }
    }

    /// The next server event; panics if the connection closed.
    pub async fn recv(&mut self) -> ServerMsg {
        self.next().await.expect("connection open")
    }

    /// Skips events until one matches.
    pub async fn recv_until(&mut self, mut pred: impl FnMut(&ServerMsg) -> bool) -> ServerMsg {
        loop {
            let m = self.recv().await;
            if pred(&m) {
                return m;
            }
        }
    }

    /// Expects an error event with `code`; returns its message and seq.
    pub async fn expect_error(&mut self, code: ErrorCode) -> (String, Option<u64>) {
        match self.recv().await {
            ServerMsg::Error {
                code: c,
                message,
                seq,
            } => {
                assert_eq!(c, code, "{message}");
                (message, seq)
            }
            other => panic!("expected error {code}, got {other:?}"),
        }
    }

    /// Expects the server to close the connection (after any events, which
    /// are returned).
    pub async fn expect_closed(&mut self) -> Vec<ServerMsg> {
        let mut seen = Vec::new();
        while let Some(m) = self.next().await {
            seen.push(m);
        }
        seen
    }

    /// Expects no event for `dur` (pings are answered meanwhile).
    pub async fn expect_silence(&mut self, dur: Duration) {
        let deadline = tokio::time::Instant::now() + dur;
        loop {
            match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Err(_) => return,
                Ok(Some(Ok(Message::Text(t)))) => panic!("expected silence, got {t}"),
                Ok(Some(Ok(Message::Close(_)))) | Ok(None) => panic!("connection closed"),
                Ok(_) => continue,
            }
        }
    }

    /// Every event until `dur` passes with none.
    pub async fn collect_until_quiet(&mut self, dur: Duration) -> Vec<ServerMsg> {
        let mut seen = Vec::new();
        loop {
            match timeout(dur, self.ws.next()).await {
                Err(_) => return seen,
                Ok(Some(Ok(Message::Text(t)))) => {
                    seen.push(ServerMsg::from_json(t.as_str()).expect("server JSON"));
                }
                Ok(Some(Ok(Message::Close(_)))) | Ok(None) | Ok(Some(Err(_))) => {
                    panic!("connection closed")
                }
                Ok(_) => continue,
            }
        }
    }

    /// A chat round trip: proves the connection still works and that
    /// everything sent before it was handled.
    pub async fn ping_chat(&mut self, text: &str) {
        self.send(&ClientMsg::Chat { text: text.into() }).await;
        self.recv_until(|m| matches!(m, ServerMsg::Chat { text: t, .. } if t == text))
            .await;
    }

    /// The next frame as it came on the wire: an event as JSON (not parsed
    /// into the Rust types, so an event the types lack still shows), the
    /// server's close frame, or the end of the TCP connection without one.
    pub async fn next_frame(&mut self) -> Frame {
        loop {
            let frame = timeout(WAIT, self.ws.next())
                .await
                .expect("a frame in time");
            return match frame {
                Some(Ok(Message::Text(t))) => {
                    Frame::Event(serde_json::from_str(t.as_str()).expect("server JSON"))
                }
                Some(Ok(Message::Close(c))) => {
                    Frame::Close(c.map(|c| (u16::from(c.code), c.reason.as_str().to_owned())))
                }
                Some(Ok(Message::Binary(_))) => panic!("the server sent a binary frame"),
                Some(Ok(_)) => continue,
                None | Some(Err(_)) => Frame::Ended,
            };
        }
    }

    /// Reads to the server's close: the events before it and the close
    /// code (`None`: the connection ended without a close frame, what a
    /// WebSocket library reports as 1006; `Some(None)` would be a close
    /// frame without a code, reported as 1005).
    pub async fn until_close(&mut self) -> (Vec<serde_json::Value>, Option<u16>) {
        let mut events = Vec::new();
        loop {
            match self.next_frame().await {
                Frame::Event(e) => events.push(e),
                Frame::Close(c) => {
                    // Reading on sends our answer to the close.
                    let _ = timeout(WAIT, async {
                        while let Some(Ok(_)) = self.ws.next().await {}
                    })
                    .await;
                    return (events, Some(c.map_or(1005, |(code, _)| code)));
                }
                Frame::Ended => return (events, None),
            }
        }
    }

    /// Expects the events `codes` (error codes, in order), then a close
    /// frame with `close`.
    pub async fn expect_errors_then_close(&mut self, codes: &[ErrorCode], close: u16) {
        let (events, code) = self.until_close().await;
        let got: Vec<&str> = events
            .iter()
            .map(|e| e["code"].as_str().unwrap_or("(not an error)"))
            .collect();
        let want: Vec<&str> = codes.iter().map(|c| c.as_str()).collect();
        assert_eq!(got, want, "{events:?}");
        assert_eq!(code, Some(close), "{events:?}");
    }

    pub async fn close(mut self) {
        let _ = timeout(WAIT, self.ws.close(None)).await;
        // Read the close reply.
        let _ = timeout(WAIT, async {
            while let Some(Ok(_)) = self.ws.next().await {}
        })
        .await;
    }
}

/// A replica loaded from a welcome, authoring under the welcome's peer id
/// as an honest client does.
pub fn replica(w: &Welcome) -> SharedDoc {
    let mut doc = SharedDoc::from_snapshot(w.doc.as_slice()).expect("welcome snapshot");
    doc.author_as(w.peer).expect("welcome peer");
    doc
}

/// An update inserting `text` at `pos` into `doc`.
pub fn edit(doc: &mut SharedDoc, pos: usize, text: &str) -> Base64Bytes {
    doc.splice(pos, 0, text).unwrap();
    Base64Bytes(doc.take_local_update().unwrap())
}

/// The real `collab-server` binary on 127.0.0.1:0 with `args`, and the
/// address it prints on its first line of stdout.
pub async fn spawn_binary(args: &[&str]) -> (std::process::Child, SocketAddr) {
    spawn_binary_logging(args, Some("warn"), None).await
}

/// [`spawn_binary`] with `RUST_LOG` set to `rust_log` (unset: `None`) and
/// its log (stderr) written to `log` (discarded: `None`).
pub async fn spawn_binary_logging(
    args: &[&str],
    rust_log: Option<&str>,
    log: Option<&std::path::Path>,
) -> (std::process::Child, SocketAddr) {
    spawn_binary_env(args, &[], rust_log, log).await
}

/// [`spawn_binary_logging`] with the environment variables `envs` set.
pub async fn spawn_binary_env(
    args: &[&str],
    envs: &[(&str, &str)],
    rust_log: Option<&str>,
    log: Option<&std::path::Path>,
) -> (std::process::Child, SocketAddr) {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_collab-server"));
    cmd.args(["--bind", "127.0.0.1:0"])
        .args(args)
        .env_remove("RUST_LOG")
        .envs(envs.iter().copied())
        .stdout(Stdio::piped());
    if let Some(filter) = rust_log {
        cmd.env("RUST_LOG", filter);
    }
    match log {
        Some(path) => cmd.stderr(std::fs::File::create(path).unwrap()),
        None => cmd.stderr(Stdio::null()),
    };
    let mut child = cmd.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        line
    });
    let line = timeout(WAIT, line).await.unwrap().unwrap();
    // "collab-server listening on ws://127.0.0.1:PORT/ws"
    let addr = line
        .trim()
        .rsplit("ws://")
        .next()
        .and_then(|s| s.strip_suffix("/ws"))
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .parse()
        .unwrap();
    (child, addr)
}
