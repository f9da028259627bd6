//! Workspace rooms (protocol 2, docs/protocol.md section 11) on a real
//! server over real WebSockets, with raw frames: what a client in another
//! language sends and reads. The tree and the files' texts are made with
//! `collab_doc` (`Tree`, `SharedDoc`), as any client would make them.

use crate::common;

use base64::Engine;
use collab_doc::SharedDoc;
use collab_doc::tree::{Kind, NodeId, Tree};
use common::{Client, Frame, Server, test_config};
use serde_json::{Value, json};

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn unb64(v: &Value) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(v.as_str().unwrap_or_else(|| panic!("no base64 in {v}")))
        .unwrap()
}

fn join2(room: &str, user: &str) -> Value {
    json!({"type":"join","protocol":2,"room":room,"user":user})
}

/// The next event, whatever it is.
async fn event(c: &mut Client) -> Value {
    match c.next_frame().await {
        Frame::Event(v) => v,
        other => panic!("expected an event, got {other:?}"),
    }
}

/// The next event of type `ty`, skipping others (joined, presence...).
async fn next_of(c: &mut Client, ty: &str) -> Value {
    loop {
        let v = event(c).await;
        if v["type"] == ty {
            return v;
        }
    }
}

/// The events before the first that `stop` accepts, and that one.
async fn until(c: &mut Client, stop: impl Fn(&Value) -> bool) -> Vec<Value> {
    let mut out = Vec::new();
    loop {
        let v = event(c).await;
        let done = stop(&v);
        out.push(v);
        if done {
            return out;
        }
    }
}

/// Sends a chat and reads to its echo: no update came in between.
async fn no_update_before_chat(c: &mut Client, text: &str) {
    c.send_raw(&json!({"type":"chat","text":text}).to_string())
        .await;
    let seen = until(c, |v| v["type"] == "chat" && v["text"] == text).await;
    assert!(
        seen.iter().all(|v| v["type"] != "update"),
        "an update reached a member without the file open: {seen:?}"
    );
}

/// A member on protocol 2, with its welcome and its copy of the tree.
struct Member {
    c: Client,
    welcome: Value,
    tree: Tree,
    seq: u64,
}

impl Member {
    async fn join(server: &Server, room: &str, user: &str) -> Member {
        Self::join_at(server.addr, room, user).await
    }

    async fn join_at(addr: std::net::SocketAddr, room: &str, user: &str) -> Member {
        let join = join2(room, user);
        let mut c = Client::connect(addr).await;
        c.send_raw(&join.to_string()).await;
        let welcome = event(&mut c).await;
        assert_eq!(welcome["type"], "welcome", "{welcome}");
        let mut doc = unb64(&welcome["doc"]);
        for _ in 0..welcome["doc_parts"].as_u64().unwrap_or(0) {
            let part = event(&mut c).await;
            assert_eq!(part["type"], "doc_part");
            doc.extend(unb64(&part["data"]));
        }
        let mut tree = Tree::from_snapshot(&doc).unwrap();
        for _ in 0..welcome["doc_updates"].as_u64().unwrap_or(0) {
            let u = event(&mut c).await;
            assert_eq!(
                (&u["type"], &u["doc_id"], &u["from"]),
                (&json!("update"), &json!("tree"), &json!(0)),
                "{u}"
            );
            tree.import(&unb64(&u["data"])).unwrap();
        }
        tree.author_as(welcome["peer"].as_u64().unwrap()).unwrap();
        Member {
            c,
            welcome,
            tree,
            seq: 0,
        }
    }

    fn peer(&self) -> u64 {
        self.welcome["peer"].as_u64().unwrap()
    }

    async fn send(&mut self, v: Value) {
        self.c.send_raw(&v.to_string()).await;
    }

    /// Sends an update of document `doc`; returns its seq.
    async fn update(&mut self, doc: &str, data: &[u8]) -> u64 {
        self.seq += 1;
        let seq = self.seq;
        self.send(json!({"type":"update","doc_id":doc,"seq":seq,"data":b64(data)}))
            .await;
        seq
    }

    /// Sends an update and expects its ack.
    async fn update_acked(&mut self, doc: &str, data: &[u8]) {
        let seq = self.update(doc, data).await;
        let ack = next_of(&mut self.c, "ack").await;
        assert_eq!(ack, json!({"type":"ack","doc_id":doc,"seq":seq}));
    }

    /// Shares `paths` into the (empty) room: the seed's relay and `seeded`.
    async fn seed(&mut self, paths: &[(&str, Kind)]) -> Vec<NodeId> {
        let ids = self.tree.create_paths(paths).unwrap();
        let data = self.tree.take_local_update().unwrap();
        self.send(json!({"type":"seed_tree","data":b64(&data)}))
            .await;
        let relayed = next_of(&mut self.c, "update").await;
        assert_eq!(relayed["doc_id"], "tree");
        assert_eq!(
            next_of(&mut self.c, "seeded").await,
            json!({"type":"seeded","doc_id":"tree","applied":true})
        );
        ids
    }

    /// Opens file `id`: its document, assembled from `opened` and what
    /// follows it, authoring under this member's peer id.
    async fn open(&mut self, id: NodeId) -> SharedDoc {
        let doc_id = id.to_string();
        self.send(json!({"type":"open","doc_id":doc_id})).await;
        let opened = next_of(&mut self.c, "opened").await;
        assert_eq!(opened["doc_id"], json!(doc_id));
        let mut bytes = unb64(&opened["doc"]);
        for _ in 0..opened["doc_parts"].as_u64().unwrap() {
            let part = event(&mut self.c).await;
            assert_eq!(part["type"], "doc_part");
            bytes.extend(unb64(&part["data"]));
        }
        let mut doc = SharedDoc::from_snapshot(&bytes).unwrap();
        for _ in 0..opened["doc_updates"].as_u64().unwrap() {
            let u = event(&mut self.c).await;
            assert_eq!(
                (&u["type"], &u["doc_id"]),
                (&json!("update"), &json!(doc_id))
            );
            doc.import(&unb64(&u["data"])).unwrap();
        }
        doc.author_as(self.peer()).unwrap();
        doc
    }

    async fn error(&mut self) -> Value {
        next_of(&mut self.c, "error").await
    }
}

fn typed(doc: &mut SharedDoc, text: &str) -> Vec<u8> {
    let at = doc.len_chars();
    doc.splice(at, 0, text).unwrap();
    doc.take_local_update().unwrap()
}

const FOLDER: [(&str, Kind); 4] = [
    ("README.md", Kind::File),
    ("src", Kind::Dir),
    ("src/main.rs", Kind::File),
    ("src/lib.rs", Kind::File),
];

/// A version 2 client in a one-file room is a version 1 client: its
/// welcome names no document and carries no workspace; its events
/// without `doc_id` mean what they mean in version 1.
#[tokio::test]
async fn a_version_2_client_in_a_one_file_room_is_a_version_1_client() {
    let server = Server::start(test_config()).await;
    let (mut v1, _) = server.join("plain", "alice").await;
    let mut bob = Member::join(&server, "plain", "bob").await;
    assert_eq!(bob.welcome["protocol"], 2);
    assert!(bob.welcome.get("doc_id").is_none(), "{}", bob.welcome);
    assert!(bob.welcome.get("workspace").is_none(), "{}", bob.welcome);
    let mut doc = SharedDoc::from_snapshot(&unb64(&bob.welcome["doc"])).unwrap();
    doc.author_as(bob.peer()).unwrap();
    let data = typed(&mut doc, "hello");
    bob.send(json!({"type":"update","seq":1,"data":b64(&data)}))
        .await;
    assert_eq!(
        next_of(&mut bob.c, "ack").await,
        json!({"type":"ack","seq":1})
    );
    let relayed = v1
        .recv_until(|m| matches!(m, collab_protocol::ServerMsg::Update { .. }))
        .await;
    assert!(matches!(relayed, collab_protocol::ServerMsg::Update { .. }));
    // Workspace events in a room that is not a workspace.
    bob.send(json!({"type":"open","doc_id":"1@2"})).await;
    let e = bob.error().await;
    assert_eq!(
        (&e["code"], &e["doc_id"]),
        (&json!("no_such_doc"), &json!("1@2"))
    );
    bob.update("tree", &data).await;
    let e = bob.error().await;
    assert_eq!(
        (&e["code"], &e["doc_id"], &e["seq"]),
        (&json!("no_such_doc"), &json!("tree"), &json!(1))
    );
    // A room with text is not turned into a workspace.
    let mut tree = Tree::new();
    tree.create_paths(&FOLDER).unwrap();
    let seed = tree.take_local_update().unwrap();
    bob.send(json!({"type":"seed_tree","data":b64(&seed)}))
        .await;
    assert_eq!(
        next_of(&mut bob.c, "seeded").await,
        json!({"type":"seeded","doc_id":"tree","applied":false})
    );
}

/// The path: alice shares a folder, bob joins and gets the tree
/// and no file; each opens files, and a file's updates reach only the
/// members that have it open while presence reaches everyone.
#[tokio::test]
async fn a_newcomer_loads_the_tree_and_only_the_files_it_opens() {
    let server = Server::start(test_config()).await;
    let mut alice = Member::join(&server, "ws", "alice").await;
    let ids = alice.seed(&FOLDER).await;
    let (readme, main_rs) = (ids[0], ids[2]);

    // Alice sends each file's text after opening it.
    let mut readme_doc = alice.open(readme).await;
    assert_eq!(readme_doc.text(), "");
    alice
        .update_acked(&readme.to_string(), &typed(&mut readme_doc, "# Hello\n"))
        .await;
    let mut main_doc = alice.open(main_rs).await;
    alice
        .update_acked(
            &main_rs.to_string(),
            &typed(&mut main_doc, "fn main() {}\n"),
        )
        .await;

    let mut bob = Member::join(&server, "ws", "bob").await;
    assert_eq!(bob.welcome["doc_id"], "tree");
    assert_eq!(
        bob.welcome["workspace"],
        json!({"max_files":20000,"max_workspace_bytes":268435456,"max_tree_ops_per_update":65536})
    );
    let paths: Vec<String> = bob.tree.entries().into_iter().map(|e| e.path).collect();
    assert_eq!(paths, ["README.md", "src", "src/lib.rs", "src/main.rs"]);
    let mut carol = Member::join(&server, "ws", "carol").await;

    let mut bobs_main = bob.open(main_rs).await;
    assert_eq!(bobs_main.text(), "fn main() {}\n");
    // Bob types in main.rs: alice (who has it open) gets it, carol not.
    let data = typed(&mut bobs_main, "// bob\n");
    bob.update_acked(&main_rs.to_string(), &data).await;
    let u = next_of(&mut alice.c, "update").await;
    assert_eq!(
        (&u["doc_id"], &u["from"]),
        (&json!(main_rs.to_string()), &bob.welcome["you"]["id"])
    );
    main_doc.import(&unb64(&u["data"])).unwrap();
    assert_eq!(main_doc.text(), bobs_main.text());
    // Presence names the file and reaches carol, who has not opened it.
    bob.send(json!({"type":"presence","doc_id":main_rs.to_string(),"cursor":null,"anchor":null}))
        .await;
    let seen = until(&mut carol.c, |v| v["type"] == "presence").await;
    assert_eq!(seen.last().unwrap()["doc_id"], json!(main_rs.to_string()));
    assert!(seen.iter().all(|v| v["type"] != "update"), "{seen:?}");
    // Carol's presence in a file she has not opened is refused.
    carol
        .send(json!({"type":"presence","doc_id":readme.to_string(),"cursor":null,"anchor":null}))
        .await;
    assert_eq!(carol.error().await["code"], "no_such_doc");
    // Closing stops the updates.
    alice
        .send(json!({"type":"close","doc_id":main_rs.to_string()}))
        .await;
    alice
        .send(json!({"type":"close","doc_id":main_rs.to_string()}))
        .await;
    assert_eq!(alice.error().await["code"], "no_such_doc");
    bob.update_acked(&main_rs.to_string(), &typed(&mut bobs_main, "x"))
        .await;
    no_update_before_chat(&mut alice.c, "quiet").await;
}

/// A version 1 client never enters a workspace ("upgrade the client"), and
/// a folder is shared only into a room whose members all speak protocol 2.
#[tokio::test]
async fn version_1_clients_and_workspaces_never_meet() {
    let server = Server::start(test_config()).await;
    let (old, _) = server.join("mixed", "old").await;
    let mut alice = Member::join(&server, "mixed", "alice").await;
    let mut tree = Tree::new();
    tree.create_paths(&FOLDER).unwrap();
    let seed = tree.take_local_update().unwrap();
    alice
        .send(json!({"type":"seed_tree","data":b64(&seed)}))
        .await;
    assert_eq!(
        next_of(&mut alice.c, "seeded").await,
        json!({"type":"seeded","doc_id":"tree","applied":false})
    );
    old.close().await;
    next_of(&mut alice.c, "left").await;
    alice.seed(&FOLDER).await;
    let mut again = server.client().await;
    again
        .send_raw(&json!({"type":"join","protocol":1,"room":"mixed","user":"old"}).to_string())
        .await;
    let (events, close) = again.until_close().await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["code"], "version_mismatch");
    assert!(
        events[0]["message"]
            .as_str()
            .unwrap()
            .contains("upgrade the client"),
        "{events:?}"
    );
    assert_eq!(close, Some(1008));
    // A text seed does not turn the workspace into a one-file room either.
    alice.send(json!({"type":"seed","text":"hello"})).await;
    assert_eq!(
        next_of(&mut alice.c, "seeded").await,
        json!({"type":"seeded","applied":false})
    );
    // Nor does the main document take updates.
    let mut doc = SharedDoc::new();
    doc.author_as(alice.peer()).unwrap();
    alice.update("main", &typed(&mut doc, "x")).await;
    let e = alice.error().await;
    assert_eq!((&e["code"], &e["seq"]), (&json!("no_such_doc"), &json!(1)));
}

/// Two members sharing a folder into one room at once: one tree.
#[tokio::test]
async fn two_seeds_at_once_make_one_tree() {
    let server = Server::start(test_config()).await;
    let mut alice = Member::join(&server, "race", "alice").await;
    let mut bob = Member::join(&server, "race", "bob").await;
    let mut seeds = Vec::new();
    for m in [&mut alice, &mut bob] {
        m.tree.create_paths(&FOLDER).unwrap();
        seeds.push(m.tree.take_local_update().unwrap());
    }
    alice
        .send(json!({"type":"seed_tree","data":b64(&seeds[0])}))
        .await;
    bob.send(json!({"type":"seed_tree","data":b64(&seeds[1])}))
        .await;
    let a = next_of(&mut alice.c, "seeded").await["applied"]
        .as_bool()
        .unwrap();
    let b = next_of(&mut bob.c, "seeded").await["applied"]
        .as_bool()
        .unwrap();
    assert!(a ^ b, "alice {a}, bob {b}");
    let carol = Member::join(&server, "race", "carol").await;
    assert_eq!(carol.tree.entries().len(), FOLDER.len());
}

/// Limits: a file within `max_doc_bytes` but past what the room's
/// `max_workspace_bytes` leaves is `workspace_full`; a tree over
/// `max_files`, too; a tree update with too many operations is
/// `bad_update`; each with its `seq`, and nothing changed.
#[tokio::test]
async fn the_workspace_limits_hold() {
    let server = Server::start(collab_server::Config {
        max_files: 6,
        max_workspace_bytes: 4096,
        max_tree_ops_per_update: 12,
        ..test_config()
    })
    .await;
    let mut alice = Member::join(&server, "full", "alice").await;
    let ids = alice.seed(&FOLDER[..3]).await;
    let mut doc = alice.open(ids[0]).await;
    alice
        .update_acked(&ids[0].to_string(), &typed(&mut doc, &"a".repeat(400)))
        .await;
    let seq = alice
        .update(&ids[0].to_string(), &typed(&mut doc, &"b".repeat(8000)))
        .await;
    let e = alice.error().await;
    assert_eq!(
        (&e["code"], &e["seq"], &e["doc_id"]),
        (
            &json!("workspace_full"),
            &json!(seq),
            &json!(ids[0].to_string())
        ),
        "{e}"
    );
    // Four more files: 16 operations, over 12 per update.
    let before = alice.tree.snapshot().unwrap();
    alice
        .tree
        .create_paths(&[
            ("w", Kind::File),
            ("x", Kind::File),
            ("y", Kind::File),
            ("z", Kind::File),
        ])
        .unwrap();
    let data = alice.tree.take_local_update().unwrap();
    let seq = alice.update("tree", &data).await;
    let e = alice.error().await;
    assert_eq!(
        (&e["code"], &e["seq"]),
        (&json!("bad_update"), &json!(seq)),
        "{e}"
    );
    // Four more files, in four updates: the fourth is the seventh node.
    alice.tree = Tree::from_snapshot(&before).unwrap();
    alice.tree.author_as(alice.peer()).unwrap();
    for (i, name) in ["u", "v", "w", "x"].into_iter().enumerate() {
        alice.tree.create(None, name, Kind::File).unwrap();
        let data = alice.tree.take_local_update().unwrap();
        if i < 3 {
            alice.update_acked("tree", &data).await;
        } else {
            let seq = alice.update("tree", &data).await;
            let e = alice.error().await;
            assert_eq!(
                (&e["code"], &e["seq"]),
                (&json!("workspace_full"), &json!(seq)),
                "{e}"
            );
        }
    }
    let bob = Member::join(&server, "full", "bob").await;
    assert_eq!(bob.tree.entries().len(), 6);
}

/// Nobody writes under another member's peer id, in any document; and a
/// file the tree does not hold cannot be opened.
#[tokio::test]
async fn peer_ids_are_owned_across_documents() {
    let server = Server::start(test_config()).await;
    let mut alice = Member::join(&server, "own", "alice").await;
    let ids = alice.seed(&FOLDER).await;
    let mut bob = Member::join(&server, "own", "bob").await;
    bob.open(ids[0]).await;
    // Bob forges a change under alice's peer id.
    let mut forged = SharedDoc::new();
    forged.author_as(alice.peer()).unwrap();
    let seq = bob
        .update(&ids[0].to_string(), &typed(&mut forged, "mallory"))
        .await;
    let e = bob.error().await;
    assert_eq!(
        (&e["code"], &e["seq"]),
        (&json!("bad_update"), &json!(seq)),
        "{e}"
    );
    assert!(e["message"].as_str().unwrap().contains("peer id"), "{e}");
    // A folder is no file; an id the tree never had is nothing.
    for id in [ids[1].to_string(), "99@1".to_owned()] {
        bob.send(json!({"type":"open","doc_id":id})).await;
        let e = bob.error().await;
        assert_eq!(
            (&e["code"], &e["doc_id"]),
            (&json!("no_such_doc"), &json!(id))
        );
    }
}

/// The server binary on `dir`: its child and address.
async fn stored_server(
    dir: &std::path::Path,
    extra: &[&str],
) -> (std::process::Child, std::net::SocketAddr) {
    let mut args = vec!["--data-dir", dir.to_str().unwrap()];
    args.extend_from_slice(extra);
    common::spawn_binary(&args).await
}

fn sigterm(mut child: std::process::Child) {
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(child.wait().unwrap().success(), "the server exits cleanly");
}

/// A workspace survives SIGTERM (the tree and each file under their own
/// keys, files loaded lazily on `open`) and SIGKILL (what the store had
/// not written comes back from the member, which rejoins with the tree's
/// version and reopens its file with the file's version, as section 11.3
/// says a rejoin does).
#[tokio::test]
async fn a_workspace_survives_sigterm_and_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    // A window so long that only the shutdown flush writes anything.
    let (child, server) = stored_server(dir.path(), &["--flush-interval", "1h"]).await;
    let mut alice = Member::join_at(server, "kept", "alice").await;
    let ids = alice.seed(&FOLDER).await;
    let (readme, main_rs) = (ids[0].to_string(), ids[2].to_string());
    let mut readme_doc = alice.open(ids[0]).await;
    alice
        .update_acked(&readme, &typed(&mut readme_doc, "# Kept\n"))
        .await;
    let mut main_doc = alice.open(ids[2]).await;
    alice
        .update_acked(&main_rs, &typed(&mut main_doc, "fn main() {}\n"))
        .await;
    alice.tree.create(None, "NEW.md", Kind::File).unwrap();
    let data = alice.tree.take_local_update().unwrap();
    alice.update_acked("tree", &data).await;
    sigterm(child);

    let (child, server) = stored_server(dir.path(), &[]).await;
    let mut bob = Member::join_at(server, "kept", "bob").await;
    let paths: Vec<String> = bob.tree.entries().into_iter().map(|e| e.path).collect();
    assert_eq!(
        paths,
        ["NEW.md", "README.md", "src", "src/lib.rs", "src/main.rs"]
    );
    assert_eq!(bob.open(ids[0]).await.text(), "# Kept\n");
    let mut bobs_main = bob.open(ids[2]).await;
    assert_eq!(bobs_main.text(), "fn main() {}\n");
    // Bob types; the server is killed before (or while) it writes.
    bob.update_acked(
        &main_rs,
        &typed(&mut bobs_main, "// typed before the kill\n"),
    )
    .await;
    let mut child = child;
    child.kill().unwrap();
    child.wait().unwrap();

    // Bob rejoins with what he has: the tree's version, then the file's.
    let (child, server) = stored_server(dir.path(), &[]).await;
    let tree_version = b64(&bob.tree.version());
    let mut bob2 = Client::connect(server).await;
    bob2.send_raw(
        &json!({"type":"join","protocol":2,"room":"kept","user":"bob","version":tree_version})
            .to_string(),
    )
    .await;
    let w = next_of(&mut bob2, "welcome").await;
    assert_eq!(
        (&w["doc_id"], &w["doc_kind"]),
        (&json!("tree"), &json!("updates"))
    );
    bob2.send_raw(
        &json!({"type":"open","doc_id":main_rs,"version":b64(&bobs_main.version())}).to_string(),
    )
    .await;
    let opened = next_of(&mut bob2, "opened").await;
    assert_eq!(opened["doc_kind"], "updates");
    bobs_main.import(&unb64(&opened["doc"])).unwrap();
    let missing = bobs_main.updates_since(&unb64(&opened["version"])).unwrap();
    bob2.send_raw(
        &json!({"type":"update","doc_id":main_rs,"seq":1,"data":b64(&missing)}).to_string(),
    )
    .await;
    assert_eq!(
        next_of(&mut bob2, "ack").await,
        json!({"type":"ack","doc_id":main_rs,"seq":1})
    );
    sigterm(child);

    // Everything is on disk: a newcomer after another restart sees it.
    let (child, server) = stored_server(dir.path(), &[]).await;
    let mut carol = Member::join_at(server, "kept", "carol").await;
    assert_eq!(carol.tree.entries().len(), 5);
    assert_eq!(
        carol.open(ids[2]).await.text(),
        "fn main() {}\n// typed before the kill\n"
    );
    sigterm(child);
}

/// With a store, a newcomer's join loads the room and its tree, and its
/// `open` loads that one file: no other file's records are read.
#[tokio::test]
async fn a_join_loads_the_tree_and_an_open_one_file() {
    let dir = tempfile::tempdir().unwrap();
    let probe = collab_server::StoreProbe::default();
    let server = Server::start(collab_server::Config {
        storage: collab_server::Storage::Dir(dir.path().to_path_buf()),
        store_probe: Some(probe.clone()),
        ..test_config()
    })
    .await;
    let mut alice = Member::join(&server, "lazy", "alice").await;
    let ids = alice.seed(&FOLDER).await;
    for (i, id) in [ids[0], ids[2], ids[3]].into_iter().enumerate() {
        let mut doc = alice.open(id).await;
        alice
            .update_acked(&id.to_string(), &typed(&mut doc, &format!("file {i}\n")))
            .await;
    }
    alice.send(json!({"type":"leave"})).await;
    alice.c.until_close().await;

    let mut events = probe.subscribe();
    let mut bob = Member::join(&server, "lazy", "bob").await;
    assert_eq!(bob.open(ids[2]).await.text(), "file 1\n");
    let mut decoded = Vec::new();
    while let Ok(e) = events.try_recv() {
        if let collab_server::StoreEvent::Decoding(name) = e {
            decoded.push(name);
        }
    }
    assert_eq!(decoded, ["lazy", "lazy/tree", &format!("lazy/{}", ids[2])]);
}

/// The workspace limits are the server's flags, announced in a workspace
/// room's welcome and enforced.
#[tokio::test]
async fn the_workspace_limits_are_flags_in_the_welcome() {
    let (mut child, addr) = common::spawn_binary(&[
        // Hermetic: not the user's data directory (another server may hold it).
        "--memory",
        "--max-files",
        "5",
        "--max-workspace-bytes",
        "100000",
        "--max-tree-ops-per-update",
        "40",
    ])
    .await;
    let mut alice = Member::join_at(addr, "flags", "alice").await;
    assert!(
        alice.welcome.get("workspace").is_none(),
        "not a workspace yet"
    );
    let ids = alice.seed(&FOLDER).await;
    let bob = Member::join_at(addr, "flags", "bob").await;
    assert_eq!(
        bob.welcome["workspace"],
        json!({"max_files":5,"max_workspace_bytes":100000,"max_tree_ops_per_update":40})
    );
    // The fifth node fits, the sixth does not.
    for (name, code) in [("e", None), ("f", Some("workspace_full"))] {
        alice.tree.create(Some(ids[1]), name, Kind::File).unwrap();
        let data = alice.tree.take_local_update().unwrap();
        match code {
            None => alice.update_acked("tree", &data).await,
            Some(code) => {
                alice.update("tree", &data).await;
                assert_eq!(alice.error().await["code"], code);
            }
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

/// A room's byte total holds across its reload from the store: a file
/// closed and not opened since still counts (its size is stored when it
/// leaves memory).
#[tokio::test]
async fn the_byte_total_survives_a_reload() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(collab_server::Config {
        storage: collab_server::Storage::Dir(dir.path().to_path_buf()),
        max_workspace_bytes: 4096,
        ..test_config()
    })
    .await;
    let mut alice = Member::join(&server, "sz", "alice").await;
    let ids = alice.seed(&FOLDER).await;
    let mut readme = alice.open(ids[0]).await;
    alice
        .update_acked(&ids[0].to_string(), &typed(&mut readme, &"a".repeat(3000)))
        .await;
    alice
        .send(json!({"type":"close","doc_id":ids[0].to_string()}))
        .await;
    alice.send(json!({"type":"leave"})).await;
    alice.c.until_close().await;

    // The room reloads with bob; README.md is not loaded, yet counts.
    let mut bob = Member::join(&server, "sz", "bob").await;
    let mut main_rs = bob.open(ids[2]).await;
    let seq = bob
        .update(&ids[2].to_string(), &typed(&mut main_rs, &"b".repeat(2000)))
        .await;
    let e = bob.error().await;
    assert_eq!(
        (&e["code"], &e["seq"]),
        (&json!("workspace_full"), &json!(seq)),
        "{e}"
    );
}

/// A tiny deterministic generator (xorshift), so a failing schedule can be
/// replayed from its seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        usize::try_from(self.0 % n.max(1) as u64).unwrap()
    }
}

/// Sends a chat and reads to its echo, importing the tree updates relayed
/// before it; no error may come.
async fn drain(m: &mut Member) {
    m.seq += 1;
    let mark = format!("mark-{}-{}", m.welcome["you"]["name"], m.seq);
    m.send(json!({"type":"chat","text":mark})).await;
    loop {
        let v = event(&mut m.c).await;
        match v["type"].as_str().unwrap() {
            "update" => {
                assert_eq!(v["doc_id"], "tree", "{v}");
                m.tree.import(&unb64(&v["data"])).unwrap();
            }
            "error" => panic!("refused: {v}"),
            "chat" if v["text"] == mark => return,
            _ => {}
        }
    }
}

/// Concurrent tree operations of 3 members (creations, renames, moves and
/// deletes made without seeing each other's, members dropping and
/// rejoining with their session and the tree's version, then sending what
/// the server lacks): every member and a newcomer end with one tree.
/// `COLLAB_SEED=N` replays one schedule.
#[tokio::test]
async fn concurrent_tree_operations_converge_through_the_server() {
    let seeds: Vec<u64> = match std::env::var("COLLAB_SEED") {
        Ok(s) => vec![s.parse().unwrap()],
        Err(_) => (1..=4).collect(),
    };
    for seed in seeds {
        converge(seed).await;
    }
}

async fn converge(seed: u64) {
    let server = Server::start(collab_server::Config {
        messages_per_second: 100_000,
        burst: 100_000,
        ..test_config()
    })
    .await;
    let room = format!("conv{seed}");
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let mut ms = vec![Member::join(&server, &room, "m0").await];
    ms[0].seed(&FOLDER).await;
    for i in 1..3 {
        ms.push(Member::join(&server, &room, &format!("m{i}")).await);
    }
    for step in 0..120 {
        let i = rng.below(ms.len());
        let m = &mut ms[i];
        match rng.below(10) {
            0 => {
                // Drop, then rejoin with the session and the tree's version.
                let session = m.welcome["session"].clone();
                let version = b64(&m.tree.version());
                let old = std::mem::replace(&mut m.c, Client::connect(server.addr).await);
                drop(old);
                m.c.send_raw(
                    &json!({"type":"join","protocol":2,"room":room,"user":format!("m{i}"),
                        "session":session,"version":version})
                    .to_string(),
                )
                .await;
                let w = next_of(&mut m.c, "welcome").await;
                assert_eq!(w["doc_kind"], "updates", "{w}");
                m.tree.import(&unb64(&w["doc"])).unwrap();
                m.tree.author_as(w["peer"].as_u64().unwrap()).unwrap();
                let lacking = m.tree.updates_since(&unb64(&w["version"])).unwrap();
                m.welcome = w;
                m.update("tree", &lacking).await;
            }
            1 | 2 => drain(m).await,
            op => {
                let view = m.tree.entries();
                let pick = |rng: &mut Rng| view.get(rng.below(view.len())).map(|e| e.id);
                let dirs: Vec<NodeId> = view
                    .iter()
                    .filter(|e| e.kind == Kind::Dir)
                    .map(|e| e.id)
                    .collect();
                let folder = |rng: &mut Rng| match rng.below(dirs.len() + 1) {
                    0 => None,
                    k => Some(dirs[k - 1]),
                };
                let name = format!("n{step}-{i}");
                let done = match op {
                    3 | 4 => {
                        let kind = if rng.below(3) == 0 {
                            Kind::Dir
                        } else {
                            Kind::File
                        };
                        let at = folder(&mut rng);
                        m.tree.create(at, &name, kind).map(|_| ())
                    }
                    5 | 6 => match pick(&mut rng) {
                        Some(id) => m.tree.rename(id, &name),
                        None => continue,
                    },
                    7 | 8 => match pick(&mut rng) {
                        Some(id) => {
                            let to = folder(&mut rng);
                            m.tree.move_to(id, to)
                        }
                        None => continue,
                    },
                    _ => match pick(&mut rng) {
                        Some(id) => m.tree.delete(id).map(|_| ()),
                        None => continue,
                    },
                };
                if done.is_ok()
                    && let Some(data) = m.tree.take_local_update()
                {
                    m.update("tree", &data).await;
                }
            }
        }
    }
    for m in &mut ms {
        drain(m).await;
    }
    // Each drained after the others' last updates? Drain once more so
    // every member has read what the others sent before their marks.
    for m in &mut ms {
        drain(m).await;
    }
    let mut newcomer = Member::join(&server, &room, "late").await;
    let want = newcomer.tree.entries();
    for m in &ms {
        assert_eq!(m.tree.entries(), want, "seed {seed}");
        // Nothing a member has is missing from the server's tree.
        let more = m.tree.updates_since(&newcomer.tree.version()).unwrap();
        assert!(!newcomer.tree.import(&more).unwrap(), "seed {seed}");
    }
}
