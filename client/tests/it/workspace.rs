//! Workspace rooms (protocol 2) through the client library: `Workspace`
//! driven by `WorkspaceClient` against a real server on 127.0.0.1:0.

use crate::common::Server;

use collab_client::workspace::{doc_file, file_doc};
use collab_client::{ClientEvent, RoomKind, WorkspaceClient, WsEvent};
use collab_doc::tree::{Kind, NodeId};
use collab_protocol::workspace::DocId;

/// A folder: README.md, src/, src/main.rs, src/lib.rs, with texts.
pub const FOLDER: [(&str, Kind, &str); 4] = [
    ("README.md", Kind::File, "# Hello\n"),
    ("src", Kind::Dir, ""),
    ("src/main.rs", Kind::File, "fn main() {}\n"),
    ("src/lib.rs", Kind::File, "pub fn lib() {}\n"),
];

/// Starts `user` sharing `folder` into `room` and waits until the files'
/// texts are acked.
pub async fn share(
    url: &str,
    room: &str,
    user: &str,
    folder: &[(&str, Kind, &str)],
) -> WorkspaceClient {
    let items: Vec<(String, Kind, String)> = folder
        .iter()
        .map(|(p, k, t)| ((*p).to_owned(), *k, (*t).to_owned()))
        .collect();
    let c = WorkspaceClient::start(url, room, user, Server::options(), move |w| {
        w.seed_tree(|tree| {
            let paths: Vec<(&str, Kind)> = items.iter().map(|(p, k, _)| (p.as_str(), *k)).collect();
            let ids = tree.create_paths(&paths)?;
            Ok(ids
                .into_iter()
                .zip(&items)
                .filter(|(_, (_, k, _))| *k == Kind::File)
                .map(|(id, (_, _, t))| (id, t.clone()))
                .collect())
        })
        .unwrap();
    })
    .unwrap();
    c.wait_for(|s| {
        s.events()
            .any(|e| matches!(e, WsEvent::TreeSeeded { applied: true }))
    })
    .await
    .unwrap();
    c.wait_synced().await.unwrap();
    c
}

pub async fn join(url: &str, room: &str, user: &str) -> WorkspaceClient {
    let c = WorkspaceClient::start(url, room, user, Server::options(), |_| {}).unwrap();
    c.wait_for(|s| *s.link() == collab_client::Link::Live)
        .await
        .unwrap();
    c
}

pub fn id_of(c: &WorkspaceClient, path: &str) -> NodeId {
    c.state()
        .tree()
        .find_path(path)
        .unwrap_or_else(|| panic!("no {path} in {}'s tree", c.user()))
        .id
}

pub fn text_of(c: &WorkspaceClient, id: NodeId) -> String {
    c.state().file(id).map(|r| r.text()).unwrap_or_default()
}

pub fn paths(c: &WorkspaceClient) -> Vec<String> {
    c.state().entries().into_iter().map(|e| e.path).collect()
}

/// Opens `id` and waits until its text is loaded.
pub async fn open(c: &WorkspaceClient, id: NodeId) {
    c.run(|w| Ok::<_, ()>(w.open(id))).unwrap();
    c.wait_for(|s| s.is_loaded(id)).await.unwrap();
}

fn edit(c: &WorkspaceClient, id: NodeId, pos: usize, insert: &str) {
    c.run(|w| w.edit(id, pos, 0, insert)).unwrap();
}

#[tokio::test]
async fn a_shared_folder_is_a_tree_and_a_newcomer_loads_only_what_it_opens() {
    let server = Server::start().await;
    let alice = share(&server.url, "ws", "alice", &FOLDER).await;
    assert_eq!(alice.state().kind(), RoomKind::Workspace);
    // The seeder has its files open, with their texts.
    let main_rs = id_of(&alice, "src/main.rs");
    assert_eq!(text_of(&alice, main_rs), "fn main() {}\n");

    let bob = join(&server.url, "ws", "bob").await;
    assert_eq!(bob.state().kind(), RoomKind::Workspace);
    assert_eq!(
        paths(&bob),
        ["README.md", "src", "src/lib.rs", "src/main.rs"]
    );
    assert_eq!(bob.state().open_files().count(), 0);
    assert!(bob.state().workspace_limits().is_some());

    open(&bob, main_rs).await;
    assert_eq!(text_of(&bob, main_rs), "fn main() {}\n");
    // Bob types in main.rs; alice, who has it open, gets it.
    edit(&bob, main_rs, 0, "// bob\n");
    alice
        .wait_for(|s| s.file(main_rs).unwrap().text() == "// bob\nfn main() {}\n")
        .await
        .unwrap();
    bob.wait_synced().await.unwrap();
    // Closing stops it: alice's edits no longer reach bob, and reopening
    // brings them.
    bob.run(|w| Ok::<_, ()>(w.close(main_rs))).unwrap();
    edit(&alice, main_rs, 0, "// alice\n");
    alice.wait_synced().await.unwrap();
    assert!(bob.state().file(main_rs).is_none());
    open(&bob, main_rs).await;
    assert_eq!(text_of(&bob, main_rs), "// alice\n// bob\nfn main() {}\n");
    server.stop().await;
}

#[tokio::test]
async fn a_renamed_file_stays_open_and_concurrent_edits_land_in_it() {
    let server = Server::start().await;
    let alice = share(&server.url, "ws", "alice", &FOLDER).await;
    let bob = join(&server.url, "ws", "bob").await;
    let lib = id_of(&bob, "src/lib.rs");
    open(&bob, lib).await;
    // Bob types while alice renames the file and moves it to the top.
    edit(&bob, lib, 0, "// typed during the rename\n");
    alice.run(|w| w.rename(lib, "core.rs")).unwrap();
    alice.run(|w| w.move_to(lib, None)).unwrap();
    edit(&bob, lib, 0, "// and after\n");
    for c in [&alice, &bob] {
        c.wait_for(|s| s.tree().find_path("core.rs").is_some())
            .await
            .unwrap();
        c.wait_synced().await.unwrap();
    }
    let want = "// and after\n// typed during the rename\npub fn lib() {}\n";
    alice
        .wait_for(|s| s.file(lib).unwrap().text() == want)
        .await
        .unwrap();
    assert_eq!(text_of(&bob, lib), want);
    assert_eq!(paths(&bob), ["README.md", "core.rs", "src", "src/main.rs"]);
    assert!(
        bob.state()
            .events()
            .any(|e| matches!(e, WsEvent::TreeChanged)),
    );
    server.stop().await;
}

#[tokio::test]
async fn a_rejoin_reopens_each_open_file_with_its_version() {
    let server = Server::start().await;
    let alice = share(&server.url, "ws", "alice", &FOLDER).await;
    let bob = join(&server.url, "ws", "bob").await;
    let (readme, main_rs) = (id_of(&bob, "README.md"), id_of(&bob, "src/main.rs"));
    open(&bob, readme).await;
    open(&bob, main_rs).await;
    let welcomes = bob.state().welcomes();
    let disconnects = bob.state().disconnects();
    bob.disconnect();
    bob.wait_for(|s| s.disconnects() > disconnects)
        .await
        .unwrap();
    // Offline: bob edits both files and creates nothing; alice edits one
    // and creates a file.
    edit(&bob, readme, 0, "bob was offline\n");
    edit(&bob, main_rs, 0, "// offline\n");
    edit(&alice, readme, 0, "alice stayed\n");
    alice.act(|w| w.create(None, "NEW.md", Kind::File)).unwrap();
    alice.wait_synced().await.unwrap();
    bob.reconnect();
    bob.wait_for(|s| s.welcomes() > welcomes).await.unwrap();
    bob.wait_synced().await.unwrap();
    bob.wait_for(|s| s.tree().find_path("NEW.md").is_some())
        .await
        .unwrap();
    alice
        .wait_for(|s| s.file(main_rs).unwrap().text() == "// offline\nfn main() {}\n")
        .await
        .unwrap();
    let readme_text = text_of(&alice, readme);
    bob.wait_for(|s| s.file(readme).unwrap().text() == readme_text)
        .await
        .unwrap();
    assert!(readme_text.contains("bob was offline\n") && readme_text.contains("alice stayed\n"));
    assert!(readme_text.ends_with("# Hello\n"), "{readme_text:?}");
    // Each file was opened again: a second `Welcome` of each file.
    let reopened = |id: NodeId| {
        bob.state()
            .events()
            .filter(|e| matches!(e, WsEvent::File { id: f, event: ClientEvent::Welcome { .. } } if *f == id))
            .count()
    };
    assert_eq!((reopened(readme), reopened(main_rs)), (2, 2));
    server.stop().await;
}

#[tokio::test]
async fn presence_names_the_file_and_reaches_members_without_it_open() {
    let server = Server::start().await;
    let alice = share(&server.url, "ws", "alice", &FOLDER).await;
    let bob = join(&server.url, "ws", "bob").await;
    let main_rs = id_of(&bob, "src/main.rs");
    open(&bob, main_rs).await;
    let bob_id = bob.state().room().you().unwrap().id;
    bob.run(|w| w.presence(main_rs, 3, None).map(|m| vec![m]))
        .unwrap();
    // Alice has main.rs open (she shared it): she resolves the caret.
    alice
        .wait_for(|s| s.member_location(bob_id) == Some((file_doc(main_rs), Some(3), None)))
        .await
        .unwrap();
    // Carol has no file open: she knows where bob is, not the caret.
    let carol = join(&server.url, "ws", "carol").await;
    bob.run(|w| w.presence(main_rs, 5, None).map(|m| vec![m]))
        .unwrap();
    carol
        .wait_for(|s| s.member_location(bob_id).is_some())
        .await
        .unwrap();
    let (doc, cursor, _) = carol.state().member_location(bob_id).unwrap();
    assert_eq!((doc_file(doc), cursor), (Some(main_rs), None));
    server.stop().await;
}

#[tokio::test]
async fn a_deleted_file_stays_open_and_editable_as_a_copy() {
    let server = Server::start().await;
    let alice = share(&server.url, "ws", "alice", &FOLDER).await;
    let bob = join(&server.url, "ws", "bob").await;
    let readme = id_of(&bob, "README.md");
    open(&bob, readme).await;
    let deleted = alice.act(|w| w.delete(readme)).unwrap();
    assert_eq!(deleted, [readme]);
    bob.wait_for(|s| s.tree().find_path("README.md").is_none())
        .await
        .unwrap();
    edit(&bob, readme, 0, "still here ");
    bob.wait_synced().await.unwrap();
    assert_eq!(text_of(&bob, readme), "still here # Hello\n");
    assert!(!bob.state().file(readme).unwrap().diverged());
    server.stop().await;
}

#[tokio::test]
async fn a_workspace_client_joins_a_one_file_room_as_it_is() {
    let server = Server::start().await;
    let v1 = server.join("plain", "alice").await;
    v1.edit(0, 0, "one file").unwrap();
    v1.wait_synced().await.unwrap();
    let bob = join(&server.url, "plain", "bob").await;
    assert_eq!(bob.state().kind(), RoomKind::OneFile);
    assert_eq!(bob.state().room().text(), "one file");
    // Its edits are version 1's.
    bob.run(|w| {
        w.room_mut().edit(0, 0, ">").map(|m| {
            m.map(|m| collab_client::workspace::addressed(DocId::Main, m))
                .into_iter()
                .collect()
        })
    })
    .unwrap();
    v1.wait_text(">one file").await.unwrap();
    // Sharing a folder into it is refused here, before anything is sent.
    assert!(bob.run(|w| w.seed_tree(|_| Ok(Vec::new()))).is_err());
    server.stop().await;
}

#[tokio::test]
async fn a_folder_shared_into_a_room_with_text_is_refused() {
    let server = Server::start().await;
    let v2 = join(&server.url, "taken", "alice").await;
    // Text arrives between bob's start and his welcome: bob's seed was
    // made for an empty room and goes with the welcome, or is refused.
    v2.run(|w| {
        w.room_mut().edit(0, 0, "text").map(|m| {
            m.map(|m| collab_client::workspace::addressed(DocId::Main, m))
                .into_iter()
                .collect()
        })
    })
    .unwrap();
    v2.wait_synced().await.unwrap();
    let bob = WorkspaceClient::start(&server.url, "taken", "bob", Server::options(), |w| {
        w.seed_tree(|t| Ok(vec![(t.create(None, "a.txt", Kind::File)?, "a".into())]))
            .unwrap();
    })
    .unwrap();
    bob.wait_for(|s| {
        s.events()
            .any(|e| matches!(e, WsEvent::TreeSeeded { applied: false }))
    })
    .await
    .unwrap();
    assert_eq!(bob.state().kind(), RoomKind::OneFile);
    assert!(bob.state().tree().is_empty());
    assert_eq!(bob.state().room().text(), "text");
    // A member who was in the room as it turned into a workspace sees it.
    let empty = join(&server.url, "later", "carol").await;
    let dave = share(&server.url, "later", "dave", &FOLDER).await;
    empty
        .wait_for(|s| s.kind() == RoomKind::Workspace && s.entries().len() == 4)
        .await
        .unwrap();
    drop(dave);
    server.stop().await;
}

/// A tree and a file too big for one frame come in `doc_part`s: the
/// tree's to the tree, an opened file's to that file, and the updates the
/// seeder sends are cut to fit too. A seed too big for one frame is
/// refused here, without a word to the server (which would close the
/// connection, again at every reconnect).
#[tokio::test]
async fn a_big_tree_and_a_big_file_arrive_in_parts() {
    let config = collab_server::Config {
        max_frame_bytes: 4096,
        ..collab_server::Config::default()
    };
    let server = Server::start_with(config).await;
    let names: Vec<String> = (0..300).map(|i| format!("f{i:03}.txt")).collect();
    let huge: Vec<(&str, Kind, &str)> =
        names.iter().map(|n| (n.as_str(), Kind::File, "")).collect();
    let carol = WorkspaceClient::start(&server.url, "parts", "carol", Server::options(), |w| {
        w.seed_tree(|t| {
            let items: Vec<(&str, Kind)> = huge.iter().map(|(p, k, _)| (*p, *k)).collect();
            t.create_paths(&items).map(|_| Vec::new())
        })
        .unwrap();
    })
    .unwrap();
    carol
        .wait_for(|s| {
            s.events().any(|e| {
                matches!(
                    e,
                    WsEvent::TreeError {
                        code: collab_protocol::ErrorCode::FrameTooLarge,
                        ..
                    }
                )
            })
        })
        .await
        .unwrap();
    assert!(
        carol
            .state()
            .events()
            .any(|e| matches!(e, WsEvent::TreeSeeded { applied: false }))
    );
    // One guard: two `state()` calls in one expression would hold the
    // first lock while taking the second (the test hung on that).
    {
        let st = carol.state();
        assert_eq!((st.disconnects(), st.kind()), (0, RoomKind::OneFile));
    }
    drop(carol);

    let big: String = (0..2000).map(|i| format!("line {i}\n")).collect();
    let folder = [
        ("big.txt", Kind::File, big.as_str()),
        ("a.txt", Kind::File, "a"),
    ];
    let alice = share(&server.url, "parts", "alice", &folder).await;
    // The tree grows past a frame one file at a time.
    for name in &names {
        alice.act(|w| w.create(None, name, Kind::File)).unwrap();
    }
    alice.wait_synced().await.unwrap();
    let bob = join(&server.url, "parts", "bob").await;
    assert_eq!(bob.state().entries().len(), 302);
    let id = id_of(&bob, "big.txt");
    open(&bob, id).await;
    assert_eq!(text_of(&bob, id), big);
    // And a file opened after it, while nothing is in parts.
    let small = id_of(&bob, "f007.txt");
    open(&bob, small).await;
    edit(&bob, small, 0, "seven");
    alice.run(|w| Ok::<_, ()>(w.open(small))).unwrap();
    alice
        .wait_for(|s| s.file(small).is_some_and(|r| r.text() == "seven"))
        .await
        .unwrap();
    server.stop().await;
}
