//! The room the editor takes part in, as one of two kinds of session, and
//! the document on screen.
//!
//! `collab-tui --room R FILE` drives a protocol 1 [`Session`] exactly as
//! before workspaces existed (a server that predates them serves it, and
//! every test of the one-file editor drives it unchanged). `--room R DIR`
//! and `--room R` alone drive a [`Workspace`] (protocol 2), which joins
//! any room and says which it was: a DIR is shared into an empty room, a
//! bare join shows the tree, or the one-file room's text when that is
//! what the room holds. Both deref to the [`Replica`] of the document on
//! screen, so the editing code (edits, undo, deltas into the rope) is one
//! code for both; what is the room's rather than a document's (members,
//! me, the connection) is read through the inherent methods below, which
//! shadow the replica's. `docs/architecture.md` ("The session driver")
//! says why an enum rather than a `Workspace` everywhere.

use std::ops::{Deref, DerefMut};
use std::path::PathBuf;
use std::time::Instant;

use collab_client::workspace::{addressed, doc_file, file_doc};
use collab_client::{Link, Replica, RoomKind, Session, Workspace};
use collab_doc::tree::{Entry, NodeId};
use collab_protocol::workspace::{ClientEvent as WireOut, DocId};
use collab_protocol::{ClientMsg, Member, UserId};

/// The document on screen in a workspace session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Current {
    /// None yet: the tree is shown (a workspace joined without a path).
    Nothing,
    /// The room's main document: the room turned out to be a one-file room.
    Main,
    /// An open file of the tree.
    File(NodeId),
}

/// A workspace session and what the editor keeps beside it.
#[derive(Debug)]
pub struct Folder {
    pub ws: Workspace,
    pub current: Current,
    /// Where files are saved: DIR, or the folder asked for at the first
    /// save of a member who joined without one.
    pub dir: Option<PathBuf>,
    /// The tree as last listed: [`collab_doc::tree::Tree::entries`] costs
    /// milliseconds on a big tree, so it is listed once per tree change.
    pub entries: Vec<Entry>,
}

impl Folder {
    fn replica(&self) -> &Replica {
        match self.current {
            Current::File(id) => self.ws.file(id).unwrap_or_else(|| self.ws.room()),
            Current::Main | Current::Nothing => self.ws.room(),
        }
    }

    fn replica_mut(&mut self) -> &mut Replica {
        match self.current {
            Current::File(id) if self.ws.file(id).is_some() => {
                self.ws.file_mut(id).expect("checked open")
            }
            _ => self.ws.room_mut(),
        }
    }

    /// The document id of what is on screen.
    pub fn current_doc(&self) -> DocId {
        match self.current {
            Current::File(id) => file_doc(id),
            Current::Main | Current::Nothing => DocId::Main,
        }
    }

    /// The shown path of file `id`.
    pub fn path_of(&self, id: NodeId) -> Option<&str> {
        self.entries
            .iter()
            .find(|e| e.id == id)
            .map(|e| e.path.as_str())
    }

    /// Lists the tree again (after it changed).
    pub fn list(&mut self) {
        self.entries = self.ws.entries();
    }
}

/// The editor's session: see the module documentation.
#[derive(Debug)]
pub enum RoomSession {
    /// A one-file room over protocol 1 (FILE named).
    OneFile(Box<Session>),
    /// Protocol 2: a workspace, or whatever a bare join found.
    Folder(Box<Folder>),
}

/// A message for the server, on the session's wire.
#[derive(Debug, Clone, PartialEq)]
pub enum Out {
    V1(ClientMsg),
    V2(WireOut),
}

impl RoomSession {
    /// The workspace side, in a workspace session.
    pub fn folder(&self) -> Option<&Folder> {
        match self {
            RoomSession::Folder(f) => Some(f),
            RoomSession::OneFile(_) => None,
        }
    }

    pub fn folder_mut(&mut self) -> Option<&mut Folder> {
        match self {
            RoomSession::Folder(f) => Some(f),
            RoomSession::OneFile(_) => None,
        }
    }

    /// The room's replica: members, me, the session token.
    fn room(&self) -> &Replica {
        match self {
            RoomSession::OneFile(s) => s.replica(),
            RoomSession::Folder(f) => f.ws.room(),
        }
    }

    /// Whether there is a document on screen to edit (not so in a
    /// workspace before a file is opened).
    pub fn has_document(&self) -> bool {
        match self {
            RoomSession::OneFile(_) => true,
            RoomSession::Folder(f) => match f.current {
                Current::Nothing => false,
                Current::Main => f.ws.kind() == RoomKind::OneFile,
                Current::File(id) => f.ws.file(id).is_some(),
            },
        }
    }

    /// A message about the document on screen, on this session's wire.
    pub fn doc_msg(&self, m: ClientMsg) -> Out {
        match self {
            RoomSession::OneFile(_) => Out::V1(m),
            RoomSession::Folder(f) => Out::V2(addressed(f.current_doc(), m)),
        }
    }

    /// A message about the room (chat, leave), on this session's wire.
    pub fn room_msg(&self, m: ClientMsg) -> Out {
        match self {
            RoomSession::OneFile(_) => Out::V1(m),
            RoomSession::Folder(_) => Out::V2(addressed(DocId::Main, m)),
        }
    }

    /// The connection as last heard of.
    pub fn link(&self) -> &Link {
        match self {
            RoomSession::OneFile(s) => s.link(),
            RoomSession::Folder(f) => f.ws.link(),
        }
    }

    /// The room's text is on screen ahead of its document, which waits
    /// for [`App::settle_text_first`](super::App).
    pub fn is_showing_text_first(&self) -> bool {
        match self {
            RoomSession::OneFile(s) => s.is_showing_text_first(),
            RoomSession::Folder(f) => f.ws.is_showing_text_first(),
        }
    }

    /// Welcomes into the room so far.
    pub fn welcomes(&self) -> u64 {
        self.room().welcomes()
    }

    /// Welcomed, and every edit acked.
    pub fn is_synced(&self) -> bool {
        match self {
            RoomSession::OneFile(s) => s.is_synced(),
            RoomSession::Folder(f) => f.ws.is_synced(),
        }
    }

    /// FILE's seed, or DIR's share, waits for its answer.
    pub fn seeding(&self) -> bool {
        match self {
            RoomSession::OneFile(s) => s.seeding(),
            RoomSession::Folder(f) => f.ws.seeding_tree(),
        }
    }

    pub fn members(&self) -> &[Member] {
        self.room().members()
    }

    pub fn you(&self) -> Option<&Member> {
        self.room().you()
    }

    pub fn read_only(&self) -> bool {
        self.room().read_only()
    }

    /// Edits the server has not acknowledged, in every document.
    pub fn unsent_edits(&self) -> usize {
        match self {
            RoomSession::OneFile(s) => s.unsent_edits(),
            RoomSession::Folder(f) => {
                f.ws.room().unsent_edits()
                    + f.ws
                        .open_files()
                        .map(|(_, r)| r.unsent_edits())
                        .sum::<usize>()
            }
        }
    }

    /// Member `id`'s caret and anchor in the document on screen (`None`
    /// when they are elsewhere).
    pub fn member_cursor(&self, id: UserId) -> Option<(Option<usize>, Option<usize>)> {
        match self {
            RoomSession::OneFile(s) => s.member_cursor(id),
            RoomSession::Folder(f) => {
                let (doc, head, anchor) = f.ws.member_location(id)?;
                (doc == f.current_doc()).then_some((head, anchor))
            }
        }
    }

    /// The file member `id` is in (a workspace), if any.
    pub fn member_file(&self, id: UserId) -> Option<NodeId> {
        let f = self.folder()?;
        doc_file(f.ws.member_location(id)?.0)
    }

    /// My caret on the document on screen.
    pub fn presence_msg(&self, cursor: usize, anchor: Option<usize>) -> Out {
        self.doc_msg(self.deref().presence(cursor, anchor))
    }

    /// Edits made since the last flush, of every document (each file's
    /// keeps its own batch), as updates.
    pub fn flush_all(&mut self) -> Vec<Out> {
        match self {
            RoomSession::OneFile(s) => s.flush().map(Out::V1).into_iter().collect(),
            RoomSession::Folder(f) => {
                let mut out: Vec<Out> =
                    f.ws.room_mut()
                        .flush()
                        .map(|m| Out::V2(addressed(DocId::Main, m)))
                        .into_iter()
                        .collect();
                let ids: Vec<NodeId> = f.ws.open_files().map(|(id, _)| id).collect();
                for id in ids {
                    if let Some(m) = f.ws.file_mut(id).and_then(Replica::flush) {
                        out.push(Out::V2(addressed(file_doc(id), m)));
                    }
                }
                out
            }
        }
    }

    /// The clock: resends when acks stall.
    pub fn handle_timeout(&mut self, now: Instant) -> Vec<Out> {
        match self {
            RoomSession::OneFile(s) => effects_v1(s.handle_timeout(now)).0,
            RoomSession::Folder(f) => Workspace::sends_of(f.ws.handle_timeout(now))
                .into_iter()
                .map(Out::V2)
                .collect(),
        }
    }

    pub fn poll_timeout(&mut self, now: Instant) -> Option<Instant> {
        match self {
            RoomSession::OneFile(s) => s.poll_timeout(now),
            RoomSession::Folder(f) => f.ws.poll_timeout(now),
        }
    }
}

/// A session's effects, split into what to send and what to show.
pub fn effects_v1(
    effects: Vec<collab_client::Effect>,
) -> (Vec<Out>, Vec<collab_client::ClientEvent>) {
    let mut sends = Vec::new();
    let mut events = Vec::new();
    for e in effects {
        match e {
            collab_client::Effect::Send(m) => sends.push(Out::V1(m)),
            collab_client::Effect::Event(ev) => events.push(ev),
        }
    }
    (sends, events)
}

impl Deref for RoomSession {
    type Target = Replica;
    fn deref(&self) -> &Replica {
        match self {
            RoomSession::OneFile(s) => s,
            RoomSession::Folder(f) => f.replica(),
        }
    }
}

impl DerefMut for RoomSession {
    fn deref_mut(&mut self) -> &mut Replica {
        match self {
            RoomSession::OneFile(s) => s,
            RoomSession::Folder(f) => f.replica_mut(),
        }
    }
}
