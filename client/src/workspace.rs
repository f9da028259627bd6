//! [`Workspace`]: a session in a room of protocol 2 (`docs/protocol.md`
//! section 11, `docs/workspace.md`), sans-IO like [`crate::Session`].
//!
//! One connection carries several documents: the room's tree (a
//! [`Tree`] replica) and one [`Replica`] per open file, each synced as a
//! one-file room's document is (its welcome is the file's `opened`, its
//! updates and acks name it). A third replica, the *room* replica, holds
//! what is the room's rather than a document's (the session token, the
//! members, chat) and, in a one-file room, the main document: a
//! `Workspace` joins any room, and [`Workspace::kind`] says which it was.
//!
//! The owner drives it as a `Session`: every [`TransportEvent`] of a
//! [`WorkspaceConnection`] to [`Workspace::handle`], the clock to
//! [`Workspace::handle_timeout`], and carries out the [`WsEffect`]s in
//! order. Its own actions (`open`, `edit`, `create`...) return the events
//! to send. After every call, the changed files' deltas are in
//! [`Workspace::take_changes`] (per file; the main document's through the
//! room replica).
//!
//! On every welcome the tree resyncs by version, then each open file is
//! opened again with its version: each answer carries what the file lacks,
//! and the file's replica sends what the server lacks, as on a one-file
//! rejoin. A file stays open across renames (its id is its node's) and
//! across its deletion (the text stays here as an unsaved copy until the
//! owner closes it).

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use collab_doc::tree::{Entry, Kind, NodeId, Tree, TreeError};
use collab_doc::{DocError, TextChange};
use collab_protocol::workspace::{
    Addressed, ClientEvent as WireOut, DocId, Opened, ServerEvent, WORKSPACE_PROTOCOL_VERSION,
    WorkspaceLimits,
};
use collab_protocol::{
    Base64Bytes, ClientMsg, DocKind, ErrorCode, Presence, ServerMsg, UserId, Welcome,
};

use crate::connection::{Peek, Wire};
use crate::{
    ClientEvent, Connection, Effect, JoinAs, Link, RESEND_AFTER, Replica, SyncState, TransportEvent,
};

/// The workspace wire: [`WireOut`] out, [`ServerEvent`] in.
#[derive(Debug, Clone, Copy, Default)]
pub struct WorkspaceWire;

impl Wire for WorkspaceWire {
    type Out = WireOut;
    type In = ServerEvent;
    fn encode(msg: &WireOut) -> String {
        msg.to_json()
    }
    fn is_join(msg: &WireOut) -> bool {
        matches!(
            msg,
            WireOut::V1(Addressed {
                msg: ClientMsg::Join(_),
                ..
            })
        )
    }
    fn decode(text: &str) -> Result<ServerEvent, String> {
        ServerEvent::from_json(text).map_err(|e| e.to_string())
    }
    fn peek(msg: &ServerEvent) -> Peek<'_> {
        match msg {
            ServerEvent::Welcome(_) => Peek::Welcome,
            ServerEvent::V1(Addressed {
                msg: ServerMsg::Error { code, message, .. },
                ..
            }) => Peek::Error {
                code: *code,
                message,
            },
            _ => Peek::Other,
        }
    }
}

/// A connection speaking protocol 2; open one with
/// `WorkspaceConnection::open_wire(url, options)`.
pub type WorkspaceConnection = Connection<WorkspaceWire>;

/// What a [`WorkspaceConnection`] reports.
pub type WorkspaceTransportEvent = TransportEvent<ServerEvent>;

/// What the owner of a [`Workspace`] must do after [`Workspace::handle`].
#[derive(Debug, Clone, PartialEq)]
pub enum WsEffect {
    /// Send this event to the server.
    Send(WireOut),
    /// Tell the user (or the test) about this.
    Event(WsEvent),
}

/// Something that happened, for the user interface.
#[derive(Debug, Clone, PartialEq)]
pub enum WsEvent {
    /// About the connection, the room (members, chat) or, in a one-file
    /// room, its document: what a [`crate::Session`] reports.
    Room(ClientEvent),
    /// About an open file: `Welcome` when it was opened (or opened again
    /// after a rejoin), `DocChanged`, `Acked`, `Error`...
    File { id: NodeId, event: ClientEvent },
    /// The room is a workspace: welcomed into one, or a folder was shared
    /// into the one-file room this was (by anyone).
    BecameWorkspace,
    /// The tree changed (a remote operation, the welcome): read
    /// [`Workspace::entries`] again.
    TreeChanged,
    /// The answer to [`Workspace::seed_tree`]; on `applied`, the files'
    /// texts are on their way (each file is open).
    TreeSeeded { applied: bool },
    /// The server refused a tree operation of mine (the tree here and the
    /// room's then differ, see [`Workspace::tree_diverged`]), or an event
    /// about the tree.
    TreeError { code: ErrorCode, message: String },
    /// A member's caret moved; `doc` is the file it is in (`Main` in a
    /// one-file room). See [`Workspace::member_location`].
    Presence { id: UserId, doc: DocId },
}

/// What the room turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoomKind {
    /// No welcome yet.
    Unknown,
    /// A room with one document (or an empty room: see
    /// [`Workspace::seed_tree`]).
    OneFile,
    /// A workspace: a tree of files.
    Workspace,
}

/// Why a workspace action was refused (nothing was changed or sent).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WorkspaceError {
    #[error("file {0} is not open")]
    NotOpen(NodeId),
    #[error("the room is not a workspace")]
    NotAWorkspace,
    #[error("the room already holds text or a tree")]
    NotEmpty,
    #[error("{0}")]
    TooBig(String),
    #[error(transparent)]
    Tree(#[from] TreeError),
    #[error(transparent)]
    Doc(#[from] DocError),
}

/// The tree's sync state: a simpler cousin of [`Replica`]'s, as tree
/// updates are few and small.
#[derive(Debug)]
struct TreeSync {
    tree: Tree,
    /// Welcomed on this connection: tree updates go out at once.
    live: bool,
    next_seq: u64,
    /// The first seq of this connection: answers to earlier ones are
    /// stale (the welcome resynced by version).
    seqs_from: u64,
    /// Tree updates sent and not acked, by seq.
    unacked: BTreeMap<u64, Vec<u8>>,
    /// The server refused a tree update of mine.
    diverged: bool,
    /// A welcome's tree still arriving in parts and updates.
    assembling: Option<TreeAssembly>,
}

#[derive(Debug)]
struct TreeAssembly {
    doc: Vec<u8>,
    parts: u32,
    updates: u32,
    tail: Vec<Vec<u8>>,
    version: Vec<u8>,
    peer: u64,
}

impl TreeSync {
    fn new() -> Self {
        Self {
            tree: Tree::new(),
            live: false,
            next_seq: 1,
            seqs_from: 1,
            unacked: BTreeMap::new(),
            diverged: false,
            assembling: None,
        }
    }

    /// Starts a connection's tree sync under the session's peer id.
    fn welcomed(&mut self, peer: u64) {
        let _ = self.tree.author_as(peer);
        self.seqs_from = self.next_seq;
        self.unacked.clear();
        self.live = true;
    }

    fn send(&mut self, data: Vec<u8>) -> WireOut {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.unacked.insert(seq, data.clone());
        addressed(
            DocId::Tree,
            ClientMsg::Update {
                seq,
                data: Base64Bytes(data),
            },
        )
    }

    /// The local operations not sent yet, as an update (when live).
    fn flush(&mut self) -> Option<WireOut> {
        if !self.live {
            return None;
        }
        let data = self.tree.take_local_update()?;
        Some(self.send(data))
    }

    /// Sends again every update not acked (in order, under new seqs): the
    /// server ignores what it has, and one refused for lack of an earlier
    /// dropped one goes with it.
    fn resend(&mut self) -> Vec<WireOut> {
        let lost = std::mem::take(&mut self.unacked);
        lost.into_values().map(|d| self.send(d)).collect()
    }
}

/// A file waiting for the answer to [`Workspace::seed_tree`], with its
/// text.
#[derive(Debug)]
struct Seed {
    data: Vec<u8>,
    texts: Vec<(NodeId, String)>,
    sent: bool,
}

/// Where the next `doc_part`s belong.
#[derive(Debug, Clone, Copy)]
enum PartsTo {
    Main,
    Tree,
    File(NodeId),
    /// Of a file closed before its `opened` came.
    Nowhere,
}

/// A member of a room of protocol 2; see the module documentation.
#[derive(Debug)]
pub struct Workspace {
    join: JoinAs,
    link: Link,
    kind: RoomKind,
    room: Replica,
    tree: TreeSync,
    files: BTreeMap<NodeId, Replica>,
    /// The last welcome, without its document: what a file's `opened`
    /// lacks to be a welcome of that file's replica.
    identity: Option<Welcome>,
    workspace_limits: Option<WorkspaceLimits>,
    parts_to: Option<(PartsTo, u32)>,
    presence: HashMap<UserId, (DocId, Presence)>,
    seed: Option<Seed>,
    resend_after: Duration,
    waiting_since: Option<Instant>,
    resends: u64,
    disconnects: u64,
}

/// A version 1 event about document `doc`.
pub fn addressed(doc: DocId, msg: ClientMsg) -> WireOut {
    WireOut::V1(Addressed { doc, msg })
}

/// The document id of file `id`.
pub fn file_doc(id: NodeId) -> DocId {
    DocId::File {
        // A tree node's counter is never negative (a Loro op counter).
        counter: u32::try_from(id.counter).unwrap_or_default(),
        peer: id.peer,
    }
}

/// The file a document id names.
pub fn doc_file(doc: DocId) -> Option<NodeId> {
    match doc {
        DocId::File { counter, peer } => Some(NodeId {
            peer,
            counter: i32::try_from(counter).ok()?,
        }),
        _ => None,
    }
}

fn map_effects(doc: DocId, effects: Vec<Effect>, out: &mut Vec<WsEffect>) {
    for e in effects {
        out.push(match e {
            Effect::Send(m) => WsEffect::Send(addressed(doc, m)),
            Effect::Event(ev) => WsEffect::Event(match doc_file(doc) {
                Some(id) => WsEvent::File { id, event: ev },
                None => WsEvent::Room(ev),
            }),
        });
    }
}

fn sends(effects: Vec<WsEffect>) -> Vec<WireOut> {
    effects
        .into_iter()
        .filter_map(|e| match e {
            WsEffect::Send(m) => Some(m),
            WsEffect::Event(_) => None,
        })
        .collect()
}

impl Workspace {
    /// A workspace session, not connected yet, with a fresh room replica.
    pub fn new(join: JoinAs) -> Self {
        Self {
            join,
            link: Link::Connecting,
            kind: RoomKind::Unknown,
            room: Replica::new(),
            tree: TreeSync::new(),
            files: BTreeMap::new(),
            identity: None,
            workspace_limits: None,
            parts_to: None,
            presence: HashMap::new(),
            seed: None,
            resend_after: RESEND_AFTER,
            waiting_since: None,
            resends: 0,
            disconnects: 0,
        }
    }

    /// Resend unacked updates after this long without progress instead of
    /// [`RESEND_AFTER`].
    pub fn resend_after(mut self, after: Duration) -> Self {
        self.resend_after = after;
        self
    }

    /// A one-file room's first welcome brings its text ahead of its
    /// document ([`Replica::text_first`]): it comes as
    /// [`WsEvent::Room`] with [`ClientEvent::TextFirst`], and the owner
    /// calls [`Self::settle`] once the text is on screen.
    pub fn text_first(mut self) -> Self {
        self.room = std::mem::take(&mut self.room).text_first();
        self
    }

    /// Loads the room's document whose text was shown first
    /// ([`Replica::settle`]): live from then on.
    pub fn settle(&mut self, now: Instant) -> Vec<WsEffect> {
        let mut out = Vec::new();
        let effects = self.room.settle();
        map_effects(DocId::Main, effects, &mut out);
        self.if_room_live(&mut out);
        self.observe(now);
        out
    }

    /// The room's text is shown ahead of its document, which waits for
    /// [`Self::settle`].
    pub fn is_showing_text_first(&self) -> bool {
        self.room.is_showing_text_first()
    }

    // ----- the transport --------------------------------------------------

    /// Handles one transport event at `now`, returning what to send and
    /// what to show, in order.
    pub fn handle(&mut self, event: WorkspaceTransportEvent, now: Instant) -> Vec<WsEffect> {
        let mut out = Vec::new();
        match event {
            TransportEvent::Connected => {
                self.link = Link::Joining;
                out.push(WsEffect::Event(WsEvent::Room(ClientEvent::Connected)));
                out.push(WsEffect::Send(self.join_msg()));
            }
            TransportEvent::Message(msg) => {
                if let ServerEvent::V1(Addressed {
                    msg: ServerMsg::Ack { .. } | ServerMsg::DocPart { .. },
                    ..
                })
                | ServerEvent::Welcome(_)
                | ServerEvent::Opened(_) = &msg
                {
                    self.waiting_since = Some(now);
                }
                self.on_message(msg, &mut out);
            }
            TransportEvent::Disconnected { reason, retry_in } => {
                // The welcome whose text was shown first is the room's.
                out = self.settle(now);
                self.link = Link::Reconnecting {
                    reason: reason.clone(),
                    retry_in,
                };
                self.disconnects += 1;
                self.offline();
                out.push(WsEffect::Event(WsEvent::Room(ClientEvent::Disconnected {
                    reason,
                    retry_in,
                })));
            }
            TransportEvent::Closed { error } => {
                out = self.settle(now);
                self.link = Link::Closed {
                    error: error.clone(),
                };
                self.offline();
                out.push(WsEffect::Event(WsEvent::Room(ClientEvent::Closed {
                    error,
                })));
            }
        }
        self.observe(now);
        out
    }

    /// When [`Self::handle_timeout`] has work next (as
    /// [`crate::Session::poll_timeout`]).
    pub fn poll_timeout(&mut self, now: Instant) -> Option<Instant> {
        self.observe(now);
        self.waiting_since.map(|since| since + self.resend_after)
    }

    /// The clock at `now`: when no ack came for the resend interval, every
    /// document's unacked updates go again.
    pub fn handle_timeout(&mut self, now: Instant) -> Vec<WsEffect> {
        self.observe(now);
        let Some(since) = self.waiting_since else {
            return Vec::new();
        };
        if now.saturating_duration_since(since) < self.resend_after {
            return Vec::new();
        }
        self.waiting_since = Some(now);
        let mut out = Vec::new();
        if let Some(m) = self.room.resend_unacked() {
            out.push(WsEffect::Send(addressed(DocId::Main, m)));
        }
        for (id, r) in &mut self.files {
            if let Some(m) = r.resend_unacked() {
                out.push(WsEffect::Send(addressed(file_doc(*id), m)));
            }
        }
        if self.tree.live {
            out.extend(self.tree.resend().into_iter().map(WsEffect::Send));
        }
        if !out.is_empty() {
            self.resends += 1;
        }
        out
    }

    fn waiting(&self) -> bool {
        let live = |r: &Replica| r.state() == SyncState::Live && r.unacked_seqs().next().is_some();
        self.link == Link::Live
            && (live(&self.room)
                || self.files.values().any(live)
                || (self.tree.live && !self.tree.unacked.is_empty()))
    }

    fn observe(&mut self, now: Instant) {
        if self.waiting() {
            self.waiting_since.get_or_insert(now);
        } else {
            self.waiting_since = None;
        }
    }

    /// The `join` of a new connection: protocol 2, with the tree's version
    /// in a workspace (the main document's otherwise).
    fn join_msg(&mut self) -> WireOut {
        let JoinAs { room, user, token } = &self.join;
        let mut msg = self.room.join_msg(room, user, token.as_deref());
        if let ClientMsg::Join(j) = &mut msg {
            j.protocol = WORKSPACE_PROTOCOL_VERSION;
            if self.kind == RoomKind::Workspace {
                j.version =
                    (!self.tree.tree.is_empty()).then(|| Base64Bytes(self.tree.tree.version()));
            }
        }
        addressed(DocId::Main, msg)
    }

    fn offline(&mut self) {
        self.room.on_disconnect();
        for r in self.files.values_mut() {
            r.on_disconnect();
        }
        self.tree.live = false;
        self.tree.assembling = None;
        self.tree.tree.author_fresh();
        self.parts_to = None;
        self.presence.clear();
    }

    fn on_message(&mut self, msg: ServerEvent, out: &mut Vec<WsEffect>) {
        match msg {
            ServerEvent::Welcome(w) => {
                let w = *w;
                self.workspace_limits = w.workspace;
                if w.doc_id == DocId::Tree {
                    self.on_workspace_welcome(w.welcome, out);
                } else {
                    self.on_one_file_welcome(w.welcome, out);
                }
            }
            ServerEvent::Opened(o) => self.on_opened(*o, out),
            ServerEvent::V1(Addressed {
                msg: ServerMsg::DocPart { data },
                ..
            }) => self.on_part(data, out),
            ServerEvent::V1(Addressed { doc, msg }) => match doc {
                DocId::Main => self.on_room(msg, out),
                DocId::Tree => self.on_tree(msg, out),
                DocId::File { .. } => {
                    if let Some(id) = doc_file(doc) {
                        self.on_file(id, msg, out);
                    }
                }
            },
        }
    }

    fn on_workspace_welcome(&mut self, mut w: Welcome, out: &mut Vec<WsEffect>) {
        if self.kind != RoomKind::Workspace {
            self.kind = RoomKind::Workspace;
            out.push(WsEffect::Event(WsEvent::BecameWorkspace));
        }
        let asm = TreeAssembly {
            doc: std::mem::take(&mut w.doc.0),
            parts: w.doc_parts,
            updates: w.doc_updates,
            tail: Vec::new(),
            version: w.version.0.clone(),
            peer: w.peer,
        };
        // The room replica takes the room's part: an empty document at
        // its own version, so it sends nothing.
        w.doc_parts = 0;
        w.doc_updates = 0;
        w.doc_kind = DocKind::Updates;
        w.version = Base64Bytes(self.room.doc().version());
        self.identity = Some(w.clone());
        self.presence.clear();
        let effects = self.room.handle(ServerMsg::Welcome(Box::new(w)));
        map_effects(DocId::Main, effects, out);
        if asm.parts > 0 {
            self.parts_to = Some((PartsTo::Tree, asm.parts));
        }
        self.tree.assembling = Some(asm);
        self.tree_if_assembled(out);
    }

    fn on_one_file_welcome(&mut self, w: Welcome, out: &mut Vec<WsEffect>) {
        self.kind = RoomKind::OneFile;
        let mut identity = w.clone();
        identity.doc = Base64Bytes(Vec::new());
        self.identity = Some(identity);
        self.presence.clear();
        self.tree.welcomed(w.peer);
        if w.doc_parts > 0 {
            self.parts_to = Some((PartsTo::Main, w.doc_parts));
        }
        let effects = self.room.handle(ServerMsg::Welcome(Box::new(w)));
        map_effects(DocId::Main, effects, out);
        self.if_room_live(out);
    }

    /// A one-file room's welcome is complete: live, and a pending seed
    /// goes (or is refused here, the room holding text).
    fn if_room_live(&mut self, out: &mut Vec<WsEffect>) {
        if self.kind != RoomKind::OneFile
            || self.link != Link::Joining
            || self.room.state() != SyncState::Live
        {
            return;
        }
        self.link = Link::Live;
        let Some(seed) = &self.seed else {
            return;
        };
        if !self.room.doc().is_empty() {
            self.seed_refused(out);
        } else if let Some(too_big) = self.seed_too_big(seed.data.len()) {
            self.seed_refused(out);
            out.push(WsEffect::Event(too_big));
        } else if let Some(seed) = &mut self.seed {
            seed.sent = true;
            out.push(WsEffect::Send(WireOut::SeedTree {
                data: Base64Bytes(seed.data.clone()),
            }));
        }
    }

    /// A `seed_tree` of `bytes` would not fit the server's frame limit
    /// once in base64 (the server would close the connection, and every
    /// reconnect would send it again): the error to show instead. A seed
    /// is one event; sharing a folder whose tree is bigger would take a
    /// seed in parts, which the protocol does not have yet.
    fn seed_too_big(&self, bytes: usize) -> Option<WsEvent> {
        let max = self.room.limits()?.max_frame_bytes;
        let budget = max.saturating_sub(512) / 4 * 3;
        (bytes > budget).then(|| WsEvent::TreeError {
            code: ErrorCode::FrameTooLarge,
            message: format!(
                "The folder's tree is {bytes} bytes, more than one event to this server may carry ({max} bytes in base64): share a smaller folder."
            ),
        })
    }

    fn seed_refused(&mut self, out: &mut Vec<WsEffect>) {
        self.seed = None;
        let peer = self.identity.as_ref().map(|w| w.peer);
        let live = self.tree.live;
        self.tree = TreeSync::new();
        if let Some(peer) = peer.filter(|_| live) {
            self.tree.welcomed(peer);
        }
        out.push(WsEffect::Event(WsEvent::TreeSeeded { applied: false }));
    }

    fn seed_applied(&mut self, out: &mut Vec<WsEffect>) {
        let Some(seed) = self.seed.take() else {
            return;
        };
        if self.kind != RoomKind::Workspace {
            self.kind = RoomKind::Workspace;
            out.push(WsEffect::Event(WsEvent::BecameWorkspace));
        }
        out.push(WsEffect::Event(WsEvent::TreeSeeded { applied: true }));
        for (id, text) in seed.texts {
            let mut r = Replica::new();
            if r.edit_local(0, 0, &text).is_err() {
                continue;
            }
            self.files.insert(id, r);
            if let Some(m) = self.open_msg(id) {
                out.push(WsEffect::Send(m));
            }
        }
    }

    fn on_part(&mut self, data: Base64Bytes, out: &mut Vec<WsEffect>) {
        let Some((to, left)) = self.parts_to.take() else {
            out.push(WsEffect::Event(WsEvent::Room(ClientEvent::BadServerData {
                message: "the server sent a part of a document no welcome announced".into(),
            })));
            return;
        };
        if left > 1 {
            self.parts_to = Some((to, left - 1));
        }
        let part = ServerMsg::DocPart { data };
        match to {
            PartsTo::Main => {
                let effects = self.room.handle(part);
                map_effects(DocId::Main, effects, out);
                self.if_room_live(out);
            }
            PartsTo::Tree => {
                if let (Some(asm), ServerMsg::DocPart { data }) =
                    (self.tree.assembling.as_mut(), part)
                {
                    asm.doc.extend_from_slice(data.as_slice());
                    asm.parts = asm.parts.saturating_sub(1);
                }
                self.tree_if_assembled(out);
            }
            PartsTo::File(id) => {
                if let Some(r) = self.files.get_mut(&id) {
                    let effects = r.handle(part);
                    map_effects(file_doc(id), effects, out);
                }
            }
            PartsTo::Nowhere => {}
        }
    }

    fn tree_if_assembled(&mut self, out: &mut Vec<WsEffect>) {
        if !self
            .tree
            .assembling
            .as_ref()
            .is_some_and(|a| a.parts == 0 && a.updates == 0)
        {
            return;
        }
        let Some(asm) = self.tree.assembling.take() else {
            return;
        };
        // A seed of mine sent on an earlier connection: applied if the
        // room's tree holds it, else someone else's tree came first.
        if let Some(seed) = &self.seed {
            let mine = seed.sent
                && !self.tree.tree.is_empty()
                && self.tree.tree.is_covered_by(&asm.version).unwrap_or(false);
            if !mine {
                self.seed_refused(out);
            }
        }
        let mut changed = false;
        for bytes in std::iter::once(&asm.doc)
            .chain(&asm.tail)
            .filter(|b| !b.is_empty())
        {
            match self.tree.tree.import(bytes) {
                Ok(c) => changed |= c,
                Err(e) => out.push(bad_data("welcome's tree", &e)),
            }
        }
        self.tree.welcomed(asm.peer);
        match self.tree.tree.is_covered_by(&asm.version) {
            Ok(true) => {}
            Ok(false) => match self.tree.tree.updates_since(&asm.version) {
                Ok(data) => {
                    let m = self.tree.send(data);
                    out.push(WsEffect::Send(m));
                }
                Err(e) => out.push(bad_data("welcome's tree version", &e)),
            },
            Err(e) => out.push(bad_data("welcome's tree version", &e)),
        }
        self.tree.tree.mark_all_sent();
        if changed {
            out.push(WsEffect::Event(WsEvent::TreeChanged));
        }
        self.link = Link::Live;
        if self.seed.is_some() {
            self.seed_applied(out);
        }
        let ids: Vec<NodeId> = self.files.keys().copied().collect();
        for id in ids {
            if let Some(m) = self.open_msg(id) {
                out.push(WsEffect::Send(m));
            }
        }
    }

    fn on_opened(&mut self, o: Opened, out: &mut Vec<WsEffect>) {
        let target = doc_file(o.doc_id).filter(|id| self.files.contains_key(id));
        if o.doc_parts > 0 {
            let to = target.map_or(PartsTo::Nowhere, PartsTo::File);
            self.parts_to = Some((to, o.doc_parts));
        }
        let (Some(id), Some(identity)) = (target, &self.identity) else {
            return;
        };
        let mut w = identity.clone();
        w.doc_kind = o.doc_kind;
        w.doc = o.doc;
        w.doc_parts = o.doc_parts;
        w.doc_updates = o.doc_updates;
        w.version = o.version;
        if let Some(r) = self.files.get_mut(&id) {
            let effects = r.handle(ServerMsg::Welcome(Box::new(w)));
            map_effects(file_doc(id), effects, out);
        }
    }

    fn on_room(&mut self, msg: ServerMsg, out: &mut Vec<WsEffect>) {
        match &msg {
            ServerMsg::Presence { id, presence } => {
                self.presence.insert(*id, (DocId::Main, presence.clone()));
            }
            ServerMsg::Left { id, .. } => {
                self.presence.remove(id);
            }
            _ => {}
        }
        let effects = self.room.handle(msg);
        map_effects(DocId::Main, effects, out);
        self.if_room_live(out);
    }

    fn on_tree(&mut self, msg: ServerMsg, out: &mut Vec<WsEffect>) {
        match msg {
            ServerMsg::Update { data, .. } => {
                if let Some(asm) = self
                    .tree
                    .assembling
                    .as_mut()
                    .filter(|a| a.parts == 0 && a.updates > 0)
                {
                    asm.tail.push(data.into_inner());
                    asm.updates -= 1;
                    self.tree_if_assembled(out);
                    return;
                }
                match self.tree.tree.import(data.as_slice()) {
                    Ok(true) => {
                        if self.kind != RoomKind::Workspace {
                            self.kind = RoomKind::Workspace;
                            out.push(WsEffect::Event(WsEvent::BecameWorkspace));
                        }
                        out.push(WsEffect::Event(WsEvent::TreeChanged));
                    }
                    Ok(false) => {}
                    Err(e) => out.push(bad_data("tree update", &e)),
                }
            }
            ServerMsg::Ack { seq } if seq >= self.tree.seqs_from => {
                self.tree.unacked.remove(&seq);
                // Answered in order: anything unanswered before it was
                // dropped (the rate limit).
                if self.tree.unacked.range(..seq).next().is_some() {
                    let later = self.tree.unacked.split_off(&seq);
                    let lost = std::mem::replace(&mut self.tree.unacked, later);
                    for data in lost.into_values() {
                        let m = self.tree.send(data);
                        out.push(WsEffect::Send(m));
                    }
                }
            }
            ServerMsg::Error {
                seq: Some(seq),
                code,
                message,
            } if seq >= self.tree.seqs_from => {
                let lost_before = self.tree.unacked.range(..seq).next().is_some();
                if code == ErrorCode::RateLimited || lost_before {
                    // Goes again when the acks stall (and with what was
                    // lost before it).
                    return;
                }
                if self.tree.unacked.remove(&seq).is_some() {
                    self.tree.diverged = true;
                }
                out.push(WsEffect::Event(WsEvent::TreeError { code, message }));
            }
            ServerMsg::Error {
                seq: None,
                code,
                message,
            } => out.push(WsEffect::Event(WsEvent::TreeError { code, message })),
            ServerMsg::Seeded { applied } if self.seed.as_ref().is_some_and(|s| s.sent) => {
                if applied {
                    self.seed_applied(out);
                } else {
                    self.seed_refused(out);
                }
            }
            // Stale answers, presence in the tree (meaningless).
            _ => {}
        }
    }

    fn on_file(&mut self, id: NodeId, msg: ServerMsg, out: &mut Vec<WsEffect>) {
        if let ServerMsg::Presence {
            id: member,
            presence,
        } = msg
        {
            self.presence.insert(member, (file_doc(id), presence));
            out.push(WsEffect::Event(WsEvent::Presence {
                id: member,
                doc: file_doc(id),
            }));
            return;
        }
        if let Some(r) = self.files.get_mut(&id) {
            let effects = r.handle(msg);
            map_effects(file_doc(id), effects, out);
        }
    }

    /// Sends `open` for an open file (with the version it holds), when the
    /// workspace is live; otherwise it goes with the next welcome.
    fn open_msg(&mut self, id: NodeId) -> Option<WireOut> {
        if self.kind != RoomKind::Workspace || self.link != Link::Live {
            return None;
        }
        let JoinAs { room, user, .. } = &self.join;
        let r = self.files.get_mut(&id)?;
        let ClientMsg::Join(j) = r.join_msg(room, user, None) else {
            return None;
        };
        Some(WireOut::Open {
            doc: file_doc(id),
            version: j.version,
        })
    }

    // ----- files ----------------------------------------------------------

    /// Opens file `id`: its text arrives with `opened`
    /// ([`WsEvent::File`] with `Welcome`), then stays in sync until
    /// [`Self::close`]. Nothing to send when it is open already.
    pub fn open(&mut self, id: NodeId) -> Vec<WireOut> {
        if self.files.contains_key(&id) {
            return Vec::new();
        }
        self.files.insert(id, Replica::new());
        self.open_msg(id).into_iter().collect()
    }

    /// Closes file `id`: its replica goes, with any edit the server has
    /// not acked (check [`Replica::unsent_edits`] first).
    pub fn close(&mut self, id: NodeId) -> Vec<WireOut> {
        if self.files.remove(&id).is_none() {
            return Vec::new();
        }
        if self.kind == RoomKind::Workspace && self.link == Link::Live {
            vec![WireOut::Close { doc: file_doc(id) }]
        } else {
            Vec::new()
        }
    }

    /// The open file `id`'s replica (text, undo, unsent edits).
    pub fn file(&self, id: NodeId) -> Option<&Replica> {
        self.files.get(&id)
    }

    /// The open file `id`'s replica, to edit it in place (what its
    /// methods return is addressed with [`addressed`]`(`[`file_doc`]`(id), ..)`):
    /// for an editor that keeps a current file, as [`Self::with_file`] for one
    /// call.
    pub fn file_mut(&mut self, id: NodeId) -> Option<&mut Replica> {
        self.files.get_mut(&id)
    }

    /// The open files, by id.
    pub fn open_files(&self) -> impl Iterator<Item = (NodeId, &Replica)> {
        self.files.iter().map(|(id, r)| (*id, r))
    }

    /// Whether file `id` is open and its document loaded.
    pub fn is_loaded(&self, id: NodeId) -> bool {
        self.files.get(&id).is_some_and(|r| r.welcomes() > 0)
    }

    /// Acts on the open file `id`'s replica (edit, undo, redo, flush,
    /// presence...), addressing what it returns to that file.
    pub fn with_file<R>(
        &mut self,
        id: NodeId,
        f: impl FnOnce(&mut Replica) -> (R, Option<ClientMsg>),
    ) -> Result<(R, Vec<WireOut>), WorkspaceError> {
        let r = self.files.get_mut(&id).ok_or(WorkspaceError::NotOpen(id))?;
        let (value, msg) = f(r);
        let doc = file_doc(id);
        Ok((value, msg.map(|m| addressed(doc, m)).into_iter().collect()))
    }

    /// Replaces `delete` chars at `pos` of file `id` with `insert`.
    pub fn edit(
        &mut self,
        id: NodeId,
        pos: usize,
        delete: usize,
        insert: &str,
    ) -> Result<Vec<WireOut>, WorkspaceError> {
        let r = self.files.get_mut(&id).ok_or(WorkspaceError::NotOpen(id))?;
        let msg = r.edit(pos, delete, insert)?;
        Ok(msg
            .map(|m| addressed(file_doc(id), m))
            .into_iter()
            .collect())
    }

    /// My caret in file `id` (which must be open): the members see which
    /// file I am in.
    pub fn presence(
        &self,
        id: NodeId,
        cursor: usize,
        anchor: Option<usize>,
    ) -> Result<WireOut, WorkspaceError> {
        let r = self.files.get(&id).ok_or(WorkspaceError::NotOpen(id))?;
        Ok(addressed(file_doc(id), r.presence(cursor, anchor)))
    }

    /// The text changes of every file since the last call, per file
    /// (oldest first, as [`Replica::take_changes`]).
    pub fn take_changes(&self) -> Vec<(NodeId, Vec<Vec<TextChange>>)> {
        self.files
            .iter()
            .map(|(id, r)| (*id, r.take_changes()))
            .filter(|(_, c)| !c.is_empty())
            .collect()
    }

    // ----- the tree -------------------------------------------------------

    fn tree_op<T>(
        &mut self,
        op: impl FnOnce(&mut Tree) -> Result<T, TreeError>,
    ) -> Result<(T, Vec<WireOut>), WorkspaceError> {
        if self.kind != RoomKind::Workspace {
            return Err(WorkspaceError::NotAWorkspace);
        }
        let value = op(&mut self.tree.tree)?;
        Ok((value, self.tree.flush().into_iter().collect()))
    }

    /// Creates a file or folder `name` in folder `parent` (`None`: at the
    /// top). The new file is not opened.
    pub fn create(
        &mut self,
        parent: Option<NodeId>,
        name: &str,
        kind: Kind,
    ) -> Result<(NodeId, Vec<WireOut>), WorkspaceError> {
        self.tree_op(|t| t.create(parent, name, kind))
    }

    /// Renames a file or folder (an open file stays open: its id stays).
    pub fn rename(&mut self, id: NodeId, name: &str) -> Result<Vec<WireOut>, WorkspaceError> {
        self.tree_op(|t| t.rename(id, name)).map(|((), m)| m)
    }

    /// Moves a file or folder into folder `parent` (`None`: the top).
    pub fn move_to(
        &mut self,
        id: NodeId,
        parent: Option<NodeId>,
    ) -> Result<Vec<WireOut>, WorkspaceError> {
        self.tree_op(|t| t.move_to(id, parent)).map(|((), m)| m)
    }

    /// Deletes a file or folder and what it holds, as seen here; returns
    /// the files deleted (those open stay open, as unsaved copies).
    pub fn delete(&mut self, id: NodeId) -> Result<(Vec<NodeId>, Vec<WireOut>), WorkspaceError> {
        self.tree_op(|t| t.delete(id))
    }

    /// Shares a folder into the room, if the room is empty: `build` makes
    /// the folder's files and folders in the (empty) tree and returns each
    /// file's text. Sent now when welcomed into an empty one-file room,
    /// else at the next welcome; answered by [`WsEvent::TreeSeeded`], after
    /// which each file is open and its text on its way.
    pub fn seed_tree(
        &mut self,
        build: impl FnOnce(&mut Tree) -> Result<Vec<(NodeId, String)>, TreeError>,
    ) -> Result<Vec<WireOut>, WorkspaceError> {
        let empty_here = self.kind != RoomKind::Workspace
            && self.seed.is_none()
            && self.tree.tree.is_empty()
            && (self.kind == RoomKind::Unknown || self.room.doc().is_empty());
        if !empty_here {
            return Err(WorkspaceError::NotEmpty);
        }
        let texts = build(&mut self.tree.tree)?;
        let Some(data) = self.tree.tree.take_local_update() else {
            return Ok(Vec::new());
        };
        let now = self.kind == RoomKind::OneFile && self.link == Link::Live;
        if let Some(WsEvent::TreeError { message, .. }) =
            self.seed_too_big(data.len()).filter(|_| now)
        {
            self.tree = TreeSync::new();
            if let Some(w) = &self.identity {
                self.tree.welcomed(w.peer);
            }
            return Err(WorkspaceError::TooBig(message));
        }
        self.seed = Some(Seed {
            data: data.clone(),
            texts,
            sent: now,
        });
        Ok(if now {
            vec![WireOut::SeedTree {
                data: Base64Bytes(data),
            }]
        } else {
            Vec::new()
        })
    }

    /// A folder shared with [`Self::seed_tree`] waits for its answer.
    pub fn seeding_tree(&self) -> bool {
        self.seed.is_some()
    }

    /// Every shown file and folder (see [`Tree::entries`]): compute once
    /// per [`WsEvent::TreeChanged`], not per frame.
    pub fn entries(&self) -> Vec<Entry> {
        self.tree.tree.entries()
    }

    /// The tree replica (read-only).
    pub fn tree(&self) -> &Tree {
        &self.tree.tree
    }

    /// The server refused a tree operation of mine: the tree here holds
    /// something the room's lacks.
    pub fn tree_diverged(&self) -> bool {
        self.tree.diverged
    }

    // ----- reading ----------------------------------------------------------

    /// The room replica: members, me, the session, limits, and in a
    /// one-file room the document.
    pub fn room(&self) -> &Replica {
        &self.room
    }

    /// The room replica, to edit a one-file room's document (what it
    /// returns is addressed with [`addressed`]`(DocId::Main, ..)`).
    pub fn room_mut(&mut self) -> &mut Replica {
        &mut self.room
    }

    pub fn kind(&self) -> RoomKind {
        self.kind
    }

    /// The workspace's limits (after a workspace's welcome).
    pub fn workspace_limits(&self) -> Option<WorkspaceLimits> {
        self.workspace_limits
    }

    /// Which document member `id`'s caret is in, and where (chars; `None`
    /// until that file is open here, or for a member without presence).
    pub fn member_location(&self, id: UserId) -> Option<(DocId, Option<usize>, Option<usize>)> {
        let (doc, p) = self.presence.get(&id)?;
        let replica = match doc_file(*doc) {
            Some(file) => self.files.get(&file),
            None => Some(&self.room),
        };
        let resolve = |b: &Option<Base64Bytes>| {
            b.as_ref()
                .and_then(|b| replica.and_then(|r| r.resolve_cursor(b.as_slice())))
        };
        Some((*doc, resolve(&p.cursor), resolve(&p.anchor)))
    }

    /// The connection as last heard of.
    pub fn link(&self) -> &Link {
        &self.link
    }

    /// Welcomed, and every document's updates acked.
    pub fn is_synced(&self) -> bool {
        self.link == Link::Live
            && self.room.is_synced()
            && self.seed.is_none()
            && self.tree.unacked.is_empty()
            && self.tree.assembling.is_none()
            && self.files.values().all(Replica::is_synced)
    }

    /// `Some` once the transport stopped for good.
    pub fn closed(&self) -> Option<&Option<collab_protocol::ProtocolError>> {
        match &self.link {
            Link::Closed { error } => Some(error),
            _ => None,
        }
    }

    /// Welcomes so far (the room's).
    pub fn welcomes(&self) -> u64 {
        self.room.welcomes()
    }

    pub fn resends(&self) -> u64 {
        self.resends
    }

    pub fn disconnects(&self) -> u64 {
        self.disconnects
    }

    /// What this workspace's actions sent, as a [`WsEffect`] list (for
    /// owners that treat both alike).
    pub fn as_effects(sent: Vec<WireOut>) -> Vec<WsEffect> {
        sent.into_iter().map(WsEffect::Send).collect()
    }

    /// The events to send among `effects`.
    pub fn sends_of(effects: Vec<WsEffect>) -> Vec<WireOut> {
        sends(effects)
    }
}

fn bad_data(what: &str, e: &DocError) -> WsEffect {
    WsEffect::Event(WsEvent::Room(ClientEvent::BadServerData {
        message: format!("the server's {what} could not be merged: {e}"),
    }))
}
