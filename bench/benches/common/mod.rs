//! What the benches that need a server share: a real server on
//! 127.0.0.1:0 in this process and a raw WebSocket member speaking the
//! protocol's JSON (version 1 through `collab_protocol`'s types, version 2
//! as JSON values), as the server's tests drive them. Every wait is
//! bounded.
#![allow(dead_code, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::Duration;

use collab_doc::SharedDoc;
use collab_doc::tree::{Kind, NodeId, Tree};
use collab_protocol::{Base64Bytes, ClientMsg, Join, PROTOCOL_VERSION, ServerMsg, WS_PATH};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;

/// How long any expected event may take.
pub const WAIT: Duration = Duration::from_secs(30);

/// A server running `collab_server::run` in this process.
pub struct Server {
    pub addr: SocketAddr,
    stop: oneshot::Sender<()>,
    handle: JoinHandle<std::io::Result<()>>,
}

impl Server {
    pub async fn start(config: collab_server::Config) -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let config = collab_server::Config {
            shutdown_grace: Duration::from_secs(2),
            ..config
        };
        let handle = tokio::spawn(collab_server::run(listener, config, async move {
            let _ = stopped.await;
        }));
        Server { addr, stop, handle }
    }

    /// Stops the server and waits for it (its store flushed).
    pub async fn stop(self) {
        let _ = self.stop.send(());
        timeout(WAIT, self.handle).await.unwrap().unwrap().unwrap();
    }
}

/// A raw WebSocket member.
pub struct Member {
    ws: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    pub seq: u64,
}

impl Member {
    pub async fn connect(addr: SocketAddr) -> Member {
        let url = format!("ws://{addr}{WS_PATH}");
        let (ws, _) = timeout(WAIT, tokio_tungstenite::connect_async(url))
            .await
            .unwrap()
            .unwrap();
        Member { ws, seq: 0 }
    }

    /// Connects with a receive buffer of `bytes` (a reader that never
    /// reads fills it at once).
    pub async fn connect_with_recv_buffer(addr: SocketAddr, bytes: u32) -> Member {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(bytes).unwrap();
        let stream = socket.connect(addr).await.unwrap();
        let stream = tokio_tungstenite::MaybeTlsStream::Plain(stream);
        let url = format!("ws://{addr}{WS_PATH}");
        let (ws, _) = timeout(WAIT, tokio_tungstenite::client_async(url, stream))
            .await
            .unwrap()
            .unwrap();
        Member { ws, seq: 0 }
    }

    /// The next event if one comes `within`.
    pub async fn try_event(&mut self, within: Duration) -> Option<Value> {
        match timeout(within, self.ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => serde_json::from_str(t.as_str()).ok(),
            _ => None,
        }
    }

    pub async fn send_json(&mut self, text: String) {
        timeout(WAIT, self.ws.send(Message::Text(text.into())))
            .await
            .unwrap()
            .unwrap();
    }

    pub async fn send(&mut self, msg: &ClientMsg) {
        self.send_json(msg.to_json()).await;
    }

    /// The next event as JSON.
    pub async fn event(&mut self) -> Value {
        loop {
            match timeout(WAIT, self.ws.next()).await.unwrap() {
                Some(Ok(Message::Text(t))) => return serde_json::from_str(t.as_str()).unwrap(),
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => panic!("closed"),
                Some(Ok(_)) => {}
            }
        }
    }

    /// The next event of type `ty`, skipping others.
    pub async fn next_of(&mut self, ty: &str) -> Value {
        loop {
            let v = self.event().await;
            if v["type"] == ty {
                return v;
            }
        }
    }

    /// Skips version 1 events until one matches.
    pub async fn recv_until(&mut self, pred: impl Fn(&ServerMsg) -> bool) -> ServerMsg {
        loop {
            let m = ServerMsg::from_json(&self.event().await.to_string()).unwrap();
            if pred(&m) {
                return m;
            }
        }
    }

    /// Joins `room` on protocol 1: the member and its replica of the room,
    /// assembled from the welcome and what follows it.
    pub async fn join(addr: SocketAddr, room: &str, user: &str) -> (Member, SharedDoc) {
        Member::connect(addr).await.join_as(room, user).await
    }

    /// [`Member::join`] on this connection.
    pub async fn join_as(self, room: &str, user: &str) -> (Member, SharedDoc) {
        let mut m = self;
        m.send(&ClientMsg::Join(Join {
            protocol: PROTOCOL_VERSION,
            room: room.into(),
            user: user.into(),
            session: None,
            token: None,
            version: None,
            doc_encodings: Vec::new(),
            text_first: false,
        }))
        .await;
        let welcome = m.event().await;
        assert_eq!(welcome["type"], "welcome", "{welcome}");
        let (bytes, updates) = m.assemble(&welcome).await;
        let mut doc = SharedDoc::from_snapshot(&bytes).unwrap();
        for _ in 0..updates {
            doc.import(&unb64(&m.next_of("update").await["data"]))
                .unwrap();
        }
        doc.author_as(welcome["peer"].as_u64().unwrap()).unwrap();
        (m, doc)
    }

    /// Joins `room` on protocol 2: the member, its welcome and its tree.
    pub async fn join2(addr: SocketAddr, room: &str, user: &str) -> (Member, Value, Tree) {
        let mut m = Member::connect(addr).await;
        m.send_json(json!({"type":"join","protocol":2,"room":room,"user":user}).to_string())
            .await;
        let welcome = m.event().await;
        assert_eq!(welcome["type"], "welcome", "{welcome}");
        let (doc, updates) = m.assemble(&welcome).await;
        let mut tree = Tree::from_snapshot(&doc).unwrap();
        for _ in 0..updates {
            tree.import(&unb64(&m.next_of("update").await["data"]))
                .unwrap();
        }
        tree.author_as(welcome["peer"].as_u64().unwrap()).unwrap();
        (m, welcome, tree)
    }

    /// A welcome's or an `opened`'s document with its parts, and how many
    /// updates follow it.
    async fn assemble(&mut self, head: &Value) -> (Vec<u8>, u64) {
        let mut doc = unb64(&head["doc"]);
        for _ in 0..head["doc_parts"].as_u64().unwrap_or(0) {
            doc.extend(unb64(&self.next_of("doc_part").await["data"]));
        }
        (doc, head["doc_updates"].as_u64().unwrap_or(0))
    }

    /// Sends an update of document `doc` (protocol 2) and waits for its ack.
    pub async fn update_acked(&mut self, doc: &str, data: &[u8]) {
        self.seq += 1;
        let seq = self.seq;
        self.send_json(
            json!({"type":"update","doc_id":doc,"seq":seq,"data":b64(data)}).to_string(),
        )
        .await;
        let ack = self.next_of("ack").await;
        assert_eq!(ack, json!({"type":"ack","doc_id":doc,"seq":seq}));
    }

    /// Shares `paths` into the (empty) workspace `tree` is the copy of.
    pub async fn seed_tree(&mut self, tree: &mut Tree, paths: &[(&str, Kind)]) -> Vec<NodeId> {
        let ids = tree.create_paths(paths).unwrap();
        let data = tree.take_local_update().unwrap();
        self.send_json(json!({"type":"seed_tree","data":b64(&data)}).to_string())
            .await;
        let seeded = self.next_of("seeded").await;
        assert_eq!(seeded["applied"], true, "{seeded}");
        ids
    }

    /// Opens file `id`: its document, assembled from `opened` and what
    /// follows it, authoring under `peer`.
    pub async fn open(&mut self, id: NodeId, peer: u64) -> SharedDoc {
        let doc_id = id.to_string();
        self.send_json(json!({"type":"open","doc_id":doc_id}).to_string())
            .await;
        let opened = self.next_of("opened").await;
        let (bytes, updates) = self.assemble(&opened).await;
        let mut doc = SharedDoc::from_snapshot(&bytes).unwrap();
        for _ in 0..updates {
            doc.import(&unb64(&self.next_of("update").await["data"]))
                .unwrap();
        }
        doc.author_as(peer).unwrap();
        doc
    }

    /// Leaves and waits for the server to close the connection.
    pub async fn leave(mut self) {
        self.send_json(json!({"type":"leave"}).to_string()).await;
        let _ = timeout(WAIT, async {
            while let Some(Ok(_)) = self.ws.next().await {}
        })
        .await;
    }
}

/// A line of some forty bytes, of which the benches' files are made.
pub const LINE: &str = "let x = 1; // a line of some forty bytes\n";

/// Alice shares a workspace of `items` in `room` (a stored server, as the
/// workspace benches run), fills the first `filled` of its files with 50
/// [`LINE`]s each, closes them, and leaves: a room nobody is in, its
/// files in the store. Returns the ids of every file, in `items`' order.
pub async fn share_workspace(
    addr: SocketAddr,
    room: &str,
    items: &[(String, Kind)],
    filled: usize,
) -> Vec<NodeId> {
    let refs: Vec<(&str, Kind)> = items.iter().map(|(p, k)| (p.as_str(), *k)).collect();
    let (mut alice, welcome, mut tree) = Member::join2(addr, room, "alice").await;
    let peer = welcome["peer"].as_u64().unwrap();
    let ids = alice.seed_tree(&mut tree, &refs).await;
    let files: Vec<NodeId> = ids
        .iter()
        .zip(&refs)
        .filter(|(_, (_, k))| *k == Kind::File)
        .map(|(id, _)| *id)
        .collect();
    for id in files.iter().take(filled) {
        let mut doc = alice.open(*id, peer).await;
        doc.splice(doc.len_chars(), 0, &LINE.repeat(50)).unwrap();
        let data = doc.take_local_update().unwrap();
        alice.update_acked(&id.to_string(), &data).await;
        alice
            .send_json(json!({"type":"close","doc_id":id.to_string()}).to_string())
            .await;
    }
    alice.leave().await;
    files
}

pub fn b64(bytes: &[u8]) -> Value {
    serde_json::to_value(Base64Bytes(bytes.to_vec())).unwrap()
}

pub fn unb64(v: &Value) -> Vec<u8> {
    serde_json::from_value::<Base64Bytes>(v.clone()).unwrap().0
}

/// The automerge-paper editing trace: its patches as (pos, delete, insert)
/// and its final text.
pub fn automerge_paper() -> (Vec<(usize, usize, String)>, String) {
    use collab_bench::trace;
    let t = trace::load(&trace::trace_path("automerge-paper")).unwrap();
    let patches = t
        .txns
        .into_iter()
        .flat_map(|txn| txn.patches)
        .map(|trace::Patch(pos, del, ins)| (pos, del, ins))
        .collect();
    (patches, t.end_content)
}

/// A directory of its own under the system's temporary one, removed when
/// dropped.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("collab-bench-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The median of `v`.
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Runs `measure` on a two-worker runtime when `cargo bench` runs this
/// bench (it passes `--bench`); `cargo test --benches`, which does not,
/// only builds it.
pub fn bench_main(measure: impl std::future::Future<Output = ()>) {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(measure);
}
