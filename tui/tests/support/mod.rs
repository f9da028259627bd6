//! A fake room for driving an `App` without a network: server events are
//! built from a real `SharedDoc`, as the server would, and fed to the app
//! as transport actions.
#![allow(dead_code, clippy::unwrap_used)]

use std::time::Instant;

use collab_client::TransportEvent;
use collab_doc::SharedDoc;
use collab_protocol::{
    Base64Bytes, DocKind, LeftReason, Limits, Member, MemberRef, Presence, ServerMsg, Welcome,
};
use collab_tui::action::Action;
use collab_tui::app::{App, Startup};
use collab_tui::theme::ColorMode;
use collab_tui::ui;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ropey::Rope;

pub fn member(id: u64, name: &str, color: &str) -> Member {
    Member {
        id,
        name: name.into(),
        color: color.into(),
        read_only: false,
    }
}

pub fn alice() -> Member {
    member(1, "alice", "#e06c75")
}

pub fn bob() -> Member {
    member(2, "bob", "#61afef")
}

/// The server's copy of the room.
pub struct Room {
    pub doc: SharedDoc,
}

impl Room {
    pub fn new(text: &str) -> Self {
        let mut doc = SharedDoc::new();
        doc.splice(0, 0, text).unwrap();
        Self { doc }
    }

    pub fn welcome(&self, you: Member, members: Vec<Member>) -> ServerMsg {
        self.welcome_with_limit(you, members, 8 << 20)
    }

    /// A welcome from a server whose documents hold at most `max_doc_bytes`.
    pub fn welcome_with_limit(
        &self,
        you: Member,
        members: Vec<Member>,
        max_doc_bytes: usize,
    ) -> ServerMsg {
        ServerMsg::Welcome(Box::new(Welcome {
            protocol: collab_protocol::PROTOCOL_VERSION,
            you,
            members,
            session: "s1".into(),
            peer: next_test_peer(),
            resumed: false,
            doc_kind: DocKind::Snapshot,
            doc: Base64Bytes(self.doc.snapshot().unwrap()),
            doc_encoding: None,
            doc_parts: 0,
            doc_updates: 0,
            text: None,
            version: Base64Bytes(self.doc.version()),
            limits: Limits {
                max_frame_bytes: 1 << 20,
                max_doc_bytes,
                messages_per_second: 100,
                burst: 200,
            },
        }))
    }

    pub fn presence(&self, id: u64, head: usize, anchor: Option<usize>) -> ServerMsg {
        ServerMsg::Presence {
            id,
            presence: Presence {
                cursor: self.doc.cursor_at(head).map(Base64Bytes),
                anchor: anchor.and_then(|a| self.doc.cursor_at(a)).map(Base64Bytes),
            },
        }
    }

    /// A remote edit, as the update the server relays.
    pub fn edit(&mut self, from: u64, pos: usize, del: usize, ins: &str) -> ServerMsg {
        self.doc.mark_all_sent();
        self.doc.splice(pos, del, ins).unwrap();
        let data = self.doc.take_local_update().unwrap();
        ServerMsg::Update {
            from,
            data: Base64Bytes(data),
        }
    }
}

pub fn chat(from: &Member, text: &str) -> ServerMsg {
    ServerMsg::Chat {
        from: MemberRef {
            id: from.id,
            name: from.name.clone(),
        },
        text: text.into(),
        time: 0,
    }
}

pub fn direct(from: &Member, to: &str, text: &str) -> ServerMsg {
    ServerMsg::Direct {
        from: MemberRef {
            id: from.id,
            name: from.name.clone(),
        },
        to: to.into(),
        text: text.into(),
        time: 0,
    }
}

pub fn left(m: &Member) -> ServerMsg {
    ServerMsg::Left {
        id: m.id,
        name: m.name.clone(),
        reason: LeftReason::Left,
    }
}

pub fn config(file: &str, text: Option<&str>) -> Startup {
    Startup {
        room: "abc".into(),
        user: "alice".into(),
        server: "ws://127.0.0.1:7878".into(),
        token: None,
        file: (!file.is_empty()).then(|| file.into()),
        file_text: text.map(Rope::from_str),
        file_stamp: None,
        local_server: None,
        file_on_disk: Default::default(),
        colors: ColorMode::Mono,
        utc_offset: 0,
    }
}

pub fn msg(app: &mut App, m: ServerMsg) {
    app.update(Action::Transport(TransportEvent::Message(m)));
}

/// An app joined to `room` as alice, with bob in the room too.
pub fn joined(room: &Room, file: &str, width: u16, height: u16) -> App {
    let text = room.doc.text();
    let mut app = App::new(config(file, Some(&text)), Instant::now());
    app.update(Action::Resize { width, height });
    app.update(Action::Transport(TransportEvent::Connected));
    msg(&mut app, room.welcome(alice(), vec![alice(), bob()]));
    app
}

/// The screen as text.
pub fn render(app: &mut App) -> String {
    app.update(Action::Frame);
    let size = app.size();
    let mut term = Terminal::new(TestBackend::new(size.width, size.height)).unwrap();
    term.draw(|f| ui::draw(app, f)).unwrap();
    app.update(Action::Sync);
    format!("{}", term.backend())
}

/// A distinct peer id for every welcome a test makes, as a server gives
/// each session its own.
fn next_test_peer() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1 << 40);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// The files under `dir`, by path, sorted.
pub fn files_under(dir: &std::path::Path) -> Vec<String> {
    fn walk(root: &std::path::Path, dir: &std::path::Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                out.push(p.strip_prefix(root).unwrap().display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}
