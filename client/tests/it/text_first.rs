//! A newcomer's first welcome with the room's text ahead of its document
//! (`join.text_first`, `welcome.text`): the text is shown at once, the
//! document loads on `settle`, and the buffer that mirrored the text ends
//! on the document's text whatever happens in between.

use collab_client::{ClientEvent, Effect, Replica, SyncState};
use collab_doc::SharedDoc;
use collab_protocol::{Base64Bytes, ClientMsg, DocKind, ServerMsg};

use crate::replica::{mirror, sends, welcome};

/// A room of `text`, and a newcomer's welcome to it with `shown` as its
/// text first.
fn room_and_welcome(text: &str, shown: &str) -> (SharedDoc, ServerMsg) {
    let mut room = SharedDoc::new();
    room.splice(0, 0, text).unwrap();
    let mut w = welcome(&room, DocKind::Updates, Some(&SharedDoc::new().version()));
    if let ServerMsg::Welcome(w) = &mut w {
        w.text = Some(Base64Bytes(collab_doc::zlib::deflate(shown.as_bytes())));
    }
    (room, w)
}

fn events(effects: &[Effect]) -> Vec<&ClientEvent> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Event(e) => Some(e),
            Effect::Send(_) => None,
        })
        .collect()
}

/// What the editor does with `TextFirst`: the text becomes its buffer.
fn show(effects: &[Effect], buf: &mut Vec<char>) -> bool {
    let shown = events(effects).into_iter().find_map(|e| match e {
        ClientEvent::TextFirst { text } => Some(text.clone()),
        _ => None,
    });
    if let Some(text) = &shown {
        *buf = text.chars().collect();
    }
    shown.is_some()
}

fn joined(r: &mut Replica) -> bool {
    let ClientMsg::Join(j) = r.join_msg("room", "bob", None) else {
        panic!("a join")
    };
    j.text_first
}

#[test]
fn the_text_is_shown_first_and_the_document_loads_on_settle() {
    let text = "fn main() {\n    println!(\"héllo 🦀\");\n}\n".repeat(50);
    let (_, w) = room_and_welcome(&text, &text);
    let mut r = Replica::new().text_first();
    assert!(joined(&mut r), "a newcomer asks for the text first");
    let mut buf = Vec::new();
    let effects = r.handle(w);
    assert!(show(&effects, &mut buf));
    assert_eq!(events(&effects).len(), 1, "only the text: {effects:?}");
    assert!(r.is_showing_text_first());
    assert_eq!(r.state(), SyncState::Joining);
    assert_eq!(r.text(), "", "the document waits");

    let effects = r.settle();
    assert!(
        events(&effects)
            .iter()
            .any(|e| matches!(e, ClientEvent::Welcome { first: true, .. })),
        "{effects:?}"
    );
    assert_eq!(r.state(), SyncState::Live);
    assert!(!r.is_showing_text_first());
    assert_eq!(r.text(), text);
    assert!(r.take_changes().is_empty(), "the buffer already shows it");
    mirror(&r, &mut buf);
    assert_eq!(buf.iter().collect::<String>(), text);
    assert!(r.settle().is_empty(), "settled once");
}

/// The text kept since the room's last compaction lags the document: the
/// buffer gets the one change between them.
#[test]
fn an_older_text_becomes_the_documents_through_one_change() {
    let text = "line one\nline two, edited since\nline three\n";
    let (_, w) = room_and_welcome(text, "line one\nline two\nline three\n");
    let mut r = Replica::new().text_first();
    joined(&mut r);
    let mut buf = Vec::new();
    assert!(show(&r.handle(w), &mut buf));
    r.settle();
    let changes = r.take_changes();
    assert_eq!(changes.len(), 1, "{changes:?}");
    for d in &changes {
        collab_client::apply_delta(&mut buf, d).unwrap();
    }
    assert_eq!(buf.iter().collect::<String>(), text);
}

/// An owner that goes on without settling still converges: the next
/// server event, an edit or a dropped connection loads the document
/// first, and the welcome's effects come before what follows them.
#[test]
fn whatever_needs_the_document_settles_it_first() {
    let text = "shared text\n";
    // A remote edit right behind the welcome.
    let (mut room, w) = room_and_welcome(text, text);
    let mut r = Replica::new().text_first();
    joined(&mut r);
    let mut buf = Vec::new();
    assert!(show(&r.handle(w), &mut buf));
    let before = room.version();
    room.splice(0, 0, "// ").unwrap();
    let effects = r.handle(ServerMsg::Update {
        from: 2,
        data: Base64Bytes(room.updates_since(&before).unwrap()),
    });
    let kinds = events(&effects);
    let welcome_at = kinds
        .iter()
        .position(|e| matches!(e, ClientEvent::Welcome { .. }));
    assert!(welcome_at.is_some(), "{kinds:?}");
    assert!(
        matches!(kinds.last(), Some(ClientEvent::DocChanged)),
        "the update's change after the welcome: {kinds:?}"
    );
    mirror(&r, &mut buf);
    assert_eq!(buf.iter().collect::<String>(), format!("// {text}"));

    // An edit typed on the text shown: made on the document, sent once
    // live, and the welcome's effects come with the next event.
    let (_, w) = room_and_welcome(text, text);
    let mut r = Replica::new().text_first();
    joined(&mut r);
    let mut buf = Vec::new();
    assert!(show(&r.handle(w), &mut buf));
    let sent = r.edit(0, 0, "> ").unwrap();
    assert!(sent.is_some(), "live once settled: the edit goes");
    mirror(&r, &mut buf);
    assert_eq!(buf.iter().collect::<String>(), format!("> {text}"));
    let late = r.handle(ServerMsg::Ack { seq: 1 });
    assert!(
        events(&late)
            .iter()
            .any(|e| matches!(e, ClientEvent::Welcome { .. })),
        "{late:?}"
    );

    // A drop: the welcome came whole, so its document is the room's.
    let (_, w) = room_and_welcome(text, text);
    let mut r = Replica::new().text_first();
    joined(&mut r);
    let mut buf = Vec::new();
    assert!(show(&r.handle(w), &mut buf));
    r.on_disconnect();
    assert_eq!(r.text(), text);
    mirror(&r, &mut buf);
    assert_eq!(buf.iter().collect::<String>(), text);
    let ClientMsg::Join(j) = r.join_msg("room", "bob", None) else {
        panic!()
    };
    assert!(
        j.version.is_some() && !j.text_first,
        "a rejoiner asks by version"
    );
}

/// Only a newcomer that asked and has nothing of its own shows the text
/// first; a text that does not inflate is said and the welcome goes on.
#[test]
fn other_welcomes_with_text_are_handled_at_once() {
    let text = "room text\n";
    let welcomed_at_once = |r: &mut Replica, w: ServerMsg| {
        let effects = r.handle(w);
        assert!(
            events(&effects)
                .iter()
                .all(|e| !matches!(e, ClientEvent::TextFirst { .. })),
            "{effects:?}"
        );
        assert_eq!(r.state(), SyncState::Live);
        effects
    };
    // Did not ask.
    let (_, w) = room_and_welcome(text, text);
    let mut r = Replica::new();
    assert!(!joined(&mut r));
    welcomed_at_once(&mut r, w);
    assert_eq!(r.text(), text);

    // Typed before joining: its edits and the room's merge at once.
    let (_, w) = room_and_welcome(text, text);
    let mut r = Replica::new().text_first();
    r.edit(0, 0, "mine ").unwrap();
    assert!(!joined(&mut r), "a replica with history joins by version");
    let effects = welcomed_at_once(&mut r, w);
    assert_eq!(sends(&effects).len(), 1, "my edit goes");
    assert!(r.text().contains("mine ") && r.text().contains("room text"));

    // A text that is not zlib.
    let (_, mut w) = room_and_welcome(text, text);
    if let ServerMsg::Welcome(w) = &mut w {
        w.text = Some(Base64Bytes(b"not zlib".to_vec()));
    }
    let mut r = Replica::new().text_first();
    joined(&mut r);
    let effects = welcomed_at_once(&mut r, w);
    assert!(
        events(&effects)
            .iter()
            .any(|e| matches!(e, ClientEvent::BadServerData { .. }))
    );
    assert_eq!(r.text(), text);
}
