//! One room: its members, their outbound queues and the room's merged
//! document, behind one short `parking_lot::Mutex`.
//!
//! One lock for members and document keeps the welcome consistent: a
//! newcomer's snapshot and its place in the fan-out are taken together, so
//! every update is either in the snapshot or relayed to it, never both or
//! neither. The lock is never held across `.await`: fan-out is `try_send`
//! into bounded queues, and a member whose queue is full is removed on the
//! spot (slow consumer) instead of slowing the room down.
//!
//! A member leaves in exactly one place, [`Room::remove`], which also sends
//! `left`; every other path (leave, close, drop, kick) ends up there, and a
//! second call finds nothing to remove. So `left` goes out exactly once.

mod document;
mod workspace;
// Without the `cluster` feature nothing reads what a room would publish.
#[cfg_attr(not(feature = "cluster"), allow(dead_code))]
mod link;
mod shared;

pub(crate) use workspace::{doc_refusal, no_such_doc, node_of};

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::time::Instant;

use parking_lot::{Mutex, MutexGuard};

use collab_doc::tree::NodeId;
use collab_doc::{
    CompactionJob, DocEncoding as Encoding, DocError, LazyRoomDoc, Need, NewcomerDoc, PeerId,
    UpdateInfo, VersionVector,
};
use collab_protocol::workspace::{DocId, WORKSPACE_PROTOCOL_VERSION, WorkspaceLimits};
use collab_protocol::{
    Base64Bytes, DocEncoding, DocKind, ErrorCode, LeftReason, Limits, Member, MemberRef,
    PROTOCOL_VERSION, Presence, ProtocolError, RoomId, ServerMsg, UserId, UserName, Welcome,
};
use tokio::sync::{Notify, mpsc};

use crate::access::same_secret;
use crate::clock::now_ms;
use crate::store::{Loaded, LoadedTree, StoreHandle, StoreLink};
use document::{DocLock, DocPart, Runs, SERVER_OWNER, run, spawn_compaction};
#[cfg_attr(not(feature = "cluster"), allow(unused_imports))]
pub(crate) use link::{LogKind, Op, Remote, RoomLink, peer_of, reason_of, reason_str};
use tokio_tungstenite::tungstenite::Utf8Bytes;

/// Member colours, `#rrggbb`, readable on dark and light terminals.
const PALETTE: [&str; 12] = [
    "#e06c75", "#61afef", "#98c379", "#e5c07b", "#c678dd", "#56b6c2", "#d19a66", "#be5046",
    "#7ec699", "#f08d49", "#82aaff", "#ff79c6",
];

/// What a connection task writes to its socket.
#[derive(Debug)]
pub(crate) enum Out {
    /// A serialized event, shared by every recipient of a fan-out.
    Text(Utf8Bytes),
    /// The welcome, serialized by the connection task outside the lock,
    /// with what follows it at once (see [`WelcomeOut`]). None of it counts
    /// against the queue's bytes.
    Welcome(Box<WelcomeOut>),
    /// One part of the welcome's document (written by the connection task
    /// right after the welcome).
    DocPart(Vec<u8>),
    /// Events rendered already that go out together, in order, before any
    /// other (an `opened` and what follows it). Counted against the
    /// queue's bytes, as relayed events are.
    Batch(Vec<Utf8Bytes>),
}

/// A welcome and the events that follow it before any other.
#[derive(Debug)]
pub(crate) struct WelcomeOut {
    pub welcome: Welcome,
    /// The parts of its document when it is too big for one message
    /// (`Welcome::doc_parts`).
    pub parts: Vec<Vec<u8>>,
    /// Updates merged after the welcome's snapshot, sent as `update`
    /// events from 0 (the room): a newcomer's snapshot is the one kept at
    /// the last compaction, and these bring it up to date.
    pub tail: Vec<Arc<Vec<u8>>>,
    /// The document it carries: the tree in a workspace room.
    pub doc_id: DocId,
    /// A workspace room's limits (protocol 2).
    pub workspace: Option<WorkspaceLimits>,
}

/// Why the room (or a takeover) ended a connection from outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum KickReason {
    /// Its outbound queue filled: tell it `slow_consumer`, then close.
    SlowConsumer = 1,
    /// A new connection took over its session: close silently.
    Replaced = 2,
}

/// What the room and a connection task share besides the queue: a one-shot
/// "stop now" (separate from the queue, which may be the thing that is
/// full) and the bytes waiting in the queue, so a slow reader is bounded in
/// bytes and not only in events (256 relayed 1 MiB updates would be 256 MiB).
#[derive(Debug, Default)]
pub(crate) struct Control {
    reason: AtomicU8,
    notify: Notify,
    queued_bytes: AtomicUsize,
}

impl Control {
    /// The connection took an event of `len` bytes off its queue.
    pub(crate) fn dequeued(&self, len: usize) {
        self.queued_bytes.fetch_sub(len, Ordering::AcqRel);
    }

    pub(crate) fn kick(&self, reason: KickReason) {
        self.reason.store(reason as u8, Ordering::Release);
        self.notify.notify_one();
    }

    /// Waits until kicked; cancel safe (the permit is kept until taken).
    pub(crate) async fn kicked(&self) -> KickReason {
        loop {
            if let Some(r) = self.reason() {
                return r;
            }
            self.notify.notified().await;
        }
    }

    pub(crate) fn reason(&self) -> Option<KickReason> {
        match self.reason.load(Ordering::Acquire) {
            1 => Some(KickReason::SlowConsumer),
            2 => Some(KickReason::Replaced),
            _ => None,
        }
    }
}

/// The room's end of one connection.
#[derive(Debug, Clone)]
pub(crate) struct Link {
    /// Unique per connection (a resumed session gets a new one).
    pub conn: u64,
    pub tx: mpsc::Sender<Out>,
    pub control: Arc<Control>,
}

#[derive(Debug)]
struct Entry {
    member: Member,
    session: String,
    /// The peer id its edits are authored under (`Welcome::peer`).
    peer: PeerId,
    link: Link,
    /// The protocol its connection speaks (1, or 2 for workspaces).
    protocol: u32,
    /// The files it has open (protocol 2): it receives their updates.
    open: HashSet<NodeId>,
    /// What the member is known to have, so a trimmed history keeps what
    /// its edits build on (`collab_doc::Need`): the room's version at its
    /// welcome, and when that was.
    seen: VersionVector,
    seen_at: Instant,
    /// The last changes of the room's that it sent (their ids).
    last: Vec<(u64, i32)>,
}

impl Entry {
    /// What the member is known to have (`collab_doc::Need`).
    fn need(&self) -> Need {
        Need {
            seen: self.seen.clone(),
            last: self.last.clone(),
        }
    }
}

#[derive(Debug)]
struct State {
    /// In order of joining.
    members: Vec<Entry>,
    /// A member with this many bytes queued and more coming is too slow.
    max_queue_bytes: usize,
    /// Set when the last member leaves: the registry drops the room and a
    /// joiner that still holds it must look it up again.
    dead: bool,
    /// With `--redis`: the room's members on other nodes, in the welcome's
    /// list and reachable by direct messages (docs/scale-out.md).
    remote: Vec<Member>,
    /// With `--redis`: where a member leaving goes (its name's release).
    link: Option<RoomLink>,
}

impl State {
    /// Member `id` if `conn` is its connection now.
    fn member_on(&self, id: UserId, conn: u64) -> Option<&Entry> {
        self.members
            .iter()
            .find(|e| e.member.id == id && e.link.conn == conn)
    }
}

/// What a joiner asks for, validated.
#[derive(Debug, Clone)]
pub(crate) struct JoinRequest {
    pub name: UserName,
    pub session: Option<String>,
    pub version: Option<Vec<u8>>,
    pub link: Link,
    pub limits: Limits,
    pub max_users: usize,
    /// Joins as a viewer (`read_only` in `Member`).
    pub read_only: bool,
    /// The join's protocol: 1, or 2 for a client that knows workspaces.
    pub protocol: u32,
    /// Announced in a workspace room's welcome, and enforced there.
    pub workspace: WorkspaceLimits,
    /// How a newcomer's document may travel (`join.doc_encodings`).
    pub doc_encoding: Encoding,
    /// A newcomer that reads zlib asked for the room's text
    /// (`join.text_first`).
    pub text_first: bool,
}

/// A member the nodes agreed on (`--redis`): the join script gave the name
/// to this node, as a new member or as a session that resumes here.
#[derive(Debug, Clone)]
pub(crate) struct Claimed {
    /// As stored (its id and colour stand; the role follows this join).
    pub member: Member,
    pub session: String,
    /// The session was in the room already (here or on another node): no
    /// `joined`.
    pub resumed: bool,
}

/// A successful join.
#[derive(Debug, Clone)]
pub(crate) struct Joined {
    pub id: UserId,
    pub name: String,
    pub resumed: bool,
}

#[derive(Debug)]
pub(crate) enum JoinError {
    /// The room emptied and was dropped meanwhile: look it up again.
    Dead,
    Refused(ProtocolError),
}

/// A room: members and the merged document.
#[derive(Debug)]
pub struct Room {
    id: RoomId,
    /// Members and their queues: every relay takes it, briefly.
    state: Mutex<State>,
    /// The document side, with its own async lock (see `document.rs`).
    /// Lock order: `doc` before `state`, never the other way round.
    doc: DocLock,
    /// A workspace's tree and files (protocol 2, `room/workspace.rs`).
    /// Lock order: `doc`, then the tree, then a file, then `state`.
    ws: workspace::Workspace,
    /// With `--redis`: where accepted updates and events go, for the other
    /// nodes hosting the room.
    link: Option<RoomLink>,
}

/// A member connected for this long after the room was at some version is
/// taken to have it, when trimmed history must keep what members build on
/// (issue 13: history is bounded even with members that never type): the
/// relay reaches a connected member within milliseconds, and one whose
/// socket stalls this long has its queue filled and is removed, or is
/// dropped by its ping. An edit it makes on an older version after that is
/// refused (`history_trimmed`) and it loads the room again.
const NEED_GRACE: std::time::Duration = std::time::Duration::from_secs(60);

/// How long an update carrying changes under another member's peer id
/// waits (`--redis`) for this node to read them from the log before it is
/// refused as that member's.
const AUTHORS_CATCH_UP: std::time::Duration = std::time::Duration::from_secs(2);
/// How often it looks again meanwhile.
const AUTHORS_RETRY: std::time::Duration = std::time::Duration::from_millis(20);

/// What the document side of an update needs from the server's config.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DocSettings {
    pub max_doc_bytes: usize,
    pub compact_every: usize,
}

impl DocSettings {
    pub(crate) fn of(config: &crate::Config) -> Self {
        Self {
            max_doc_bytes: config.max_doc_bytes,
            compact_every: config.compact_every,
        }
    }
}

/// A peer id for a new session: random, below 2^53 (exact in every JSON
/// reader), and not one this room gave out already.
fn fresh_peer(taken: &HashMap<PeerId, String>) -> PeerId {
    loop {
        let peer = rand::random::<u64>() >> 11;
        if !taken.contains_key(&peer) {
            return peer;
        }
    }
}

fn new_session_token() -> String {
    format!("{:032x}", rand::random::<u128>())
}

impl Room {
    pub(crate) fn new(id: RoomId, max_queue_bytes: usize) -> Self {
        Self::with_doc(id, max_queue_bytes, LazyRoomDoc::new(), None)
    }

    fn with_doc(
        id: RoomId,
        max_queue_bytes: usize,
        doc: LazyRoomDoc,
        store: Option<StoreLink>,
    ) -> Self {
        Self {
            id,
            state: Mutex::new(State {
                members: Vec::new(),
                max_queue_bytes,
                dead: false,
                remote: Vec::new(),
                link: None,
            }),
            doc: DocPart::new(doc, store),
            ws: workspace::Workspace::default(),
            link: None,
        }
    }

    /// A room loaded from the store, whose changes go back to it.
    pub(crate) fn restored(
        id: RoomId,
        max_queue_bytes: usize,
        loaded: Loaded,
        tree: Option<LoadedTree>,
        handle: StoreHandle,
    ) -> Self {
        let link = StoreLink::new(handle.clone(), loaded.updates, loaded.bytes);
        let mut room = Self::with_doc(id, max_queue_bytes, loaded.doc.into(), Some(link));
        room.ws = workspace::Workspace::restored(tree, handle);
        room
    }

    /// An event to every member (store failures).
    pub(crate) fn tell_all(&self, msg: &ServerMsg) {
        let text = Utf8Bytes::from(msg.to_json());
        let mut st = self.lock();
        broadcast(&mut st, &text, None);
    }

    pub fn id(&self) -> &RoomId {
        &self.id
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the member list torn
        // (every mutation is a single push/remove), so keep serving.
        self.state.lock()
    }

    /// Members now, in order of joining.
    #[cfg(test)]
    pub fn members(&self) -> Vec<Member> {
        self.lock()
            .members
            .iter()
            .map(|e| e.member.clone())
            .collect()
    }

    pub fn is_dead(&self) -> bool {
        self.lock().dead
    }

    /// Marks an empty room dead so the registry can drop it. Returns
    /// whether it is dead.
    pub(crate) fn retire_if_empty(&self) -> bool {
        let mut st = self.lock();
        if st.members.is_empty() && !st.dead {
            self.close(&mut st);
        }
        st.dead
    }

    /// The room is empty: mark it dead (the registry drops it) and let the
    /// store have its last changes.
    fn close(&self, st: &mut State) {
        st.dead = true;
        document::close(Arc::clone(&self.doc), self.id.clone());
    }

    /// Why `req` cannot join now, if it cannot: checked before any
    /// document work (a refused join costs none) and again with the locks
    /// held.
    fn refusal(&self, st: &State, req: &JoinRequest, claimed: bool) -> Option<JoinError> {
        if st.dead {
            return Some(JoinError::Dead);
        }
        if claimed {
            // The nodes' join script decided, for every node at once.
            return None;
        }
        let refused = |e| Some(JoinError::Refused(e));
        match st
            .members
            .iter()
            .find(|e| e.member.name == req.name.as_str())
        {
            Some(entry) => match &req.session {
                Some(s) if same_secret(s, &entry.session) => None,
                Some(_) => refused(ProtocolError::from_code(ErrorCode::BadSession)),
                None => refused(ProtocolError::new(
                    ErrorCode::NameTaken,
                    format!(
                        "Someone called {:?} is already in room {:?}: pick another name with --user.",
                        req.name.as_str(),
                        self.id.as_str()
                    ),
                )),
            },
            None if st.members.len() >= req.max_users => refused(ProtocolError::new(
                ErrorCode::RoomFull,
                format!(
                    "Room {:?} is full ({} members).",
                    self.id.as_str(),
                    req.max_users
                ),
            )),
            None => None,
        }
    }

    /// Lets `req` in: a welcome to it, `joined` (or `member`, for a resumed
    /// session whose role changed) to the others.
    ///
    /// The welcome's document is taken with the room's document lock held,
    /// off the workers (a big room's snapshot takes milliseconds), and
    /// the joiner enters the member list before that lock is released: no
    /// update is imported in between, so every update is either in the
    /// welcome or relayed to the joiner, never both or neither.
    pub(crate) async fn join(
        &self,
        req: JoinRequest,
        next_id: impl FnOnce() -> UserId,
    ) -> Result<Joined, JoinError> {
        self.join_as(req, next_id, None).await
    }

    /// [`Self::join`] for a member the nodes agreed on (`--redis`).
    #[cfg_attr(not(feature = "cluster"), allow(dead_code))]
    pub(crate) async fn join_claimed(
        &self,
        req: JoinRequest,
        claimed: Claimed,
    ) -> Result<Joined, JoinError> {
        let id = claimed.member.id;
        self.join_as(req, || id, Some(claimed)).await
    }

    async fn join_as(
        &self,
        req: JoinRequest,
        next_id: impl FnOnce() -> UserId,
        claimed: Option<Claimed>,
    ) -> Result<Joined, JoinError> {
        if let Some(refused) = self.refusal(&self.lock(), &req, claimed.is_some()) {
            return Err(refused);
        }
        let part = Arc::clone(&self.doc).lock_owned().await;
        // Whether the room is a workspace is decided under the document
        // lock (`seed_tree`), so it cannot change while a join is at it.
        let workspace = self.ws.is_workspace();
        if workspace && req.protocol < WORKSPACE_PROTOCOL_VERSION {
            return Err(JoinError::Refused(workspace::upgrade_the_client(&self.id)));
        }
        let version = req.version.clone();
        // A workspace's welcome carries its tree, whose lock is held until
        // the joiner is a member: every tree update is in the welcome or
        // relayed to it. (`seen` stays the main document's: empty.)
        let (mut part, _tree, taken) = if workspace {
            let seen = part.doc.version_vector();
            match self.ws.welcome_doc(version).await {
                Ok((tree, (doc, tree_version))) => (
                    part,
                    Some(tree),
                    Ok((doc, (seen, tree_version, None, None))),
                ),
                Err(e) => (part, None, Err(e)),
            }
        } else {
            // A newcomer's welcome made already (or the kept snapshot and
            // tail of a trimmed room) is a copy of bytes, and merging a
            // short tail is short; the first newcomer after a long tail
            // or a new snapshot exports history, and a rejoiner's missing
            // updates are CRDT work.
            let encoding = req.doc_encoding;
            // The text to show first: a newcomer's, compressed (it goes in
            // the welcome itself, not in parts).
            let text_first = req.text_first && version.is_none() && encoding == Encoding::Zlib;
            let runs = if version.is_none()
                && part.doc.newcomer_doc_ready_as(encoding)
                && (!text_first || part.doc.newcomer_text_ready())
            {
                Runs::Inline
            } else {
                Runs::Blocking
            };
            // The changes merged for a newcomer go in one `update` event,
            // which must fit the frame limit in base64.
            let max_update_bytes = req.limits.max_frame_bytes.saturating_sub(256) / 4 * 3;
            let (part, taken) = run(part, runs, move |p| {
                let vv = p.doc.version_vector();
                let text = text_first.then(|| p.doc.newcomer_text()).flatten();
                welcome_doc_as(&mut p.doc, version.as_deref(), max_update_bytes, encoding).map(
                    |(d, encoding)| {
                        let encoded = vv.encode();
                        (d, (vv, encoded, encoding, text))
                    },
                )
            })
            .await;
            (part, None, taken.and_then(|r| r))
        };
        let (doc_kind, doc, tail, seen, welcome_version, doc_encoding, text) = match taken {
            Ok(((kind, doc, tail), (seen, version, encoding, text))) => {
                (kind, doc, tail, seen, version, encoding, text)
            }
            Err(e) => {
                tracing::error!(room = %self.id, error = %e, "exporting the room for a newcomer failed");
                return Err(JoinError::Refused(ProtocolError::new(
                    ErrorCode::Internal,
                    "The server could not export the room's document; try again later.",
                )));
            }
        };

        let mut st = self.lock();
        if let Some(refused) = self.refusal(&st, &req, claimed.is_some()) {
            return Err(refused);
        }
        let live = st
            .members
            .iter()
            .position(|e| e.member.name == req.name.as_str());
        // A session that moved here from another node: its member leaves
        // the remote list, with its role as the others knew it.
        let mut moved_from = None;
        let (index, resumed) = match live {
            Some(i) => (i, true),
            None => {
                let (id, color, session, resumed) = match claimed {
                    Some(c) => {
                        if let Some(r) = st.remote.iter().position(|m| m.id == c.member.id) {
                            moved_from = Some(st.remote.remove(r).read_only);
                        }
                        (c.member.id, c.member.color, c.session, c.resumed)
                    }
                    None => {
                        let id = next_id();
                        let color = free_color(&st, id);
                        // A session that left (or was dropped) and comes
                        // back with its token keeps the peer id it owns.
                        let session = returning_session(&st, &part.owners, req.session.as_deref())
                            .unwrap_or_else(new_session_token);
                        (id, color, session, false)
                    }
                };
                // A fresh id every welcome, even for a returning session:
                // Loro expects a peer's changes to follow each other, so a
                // client never goes back to an id it left.
                let peer = fresh_peer(&part.owners);
                part.owners.insert(peer, session.clone());
                st.members.push(Entry {
                    member: Member {
                        id,
                        name: req.name.as_str().to_owned(),
                        color,
                        read_only: req.read_only,
                    },
                    session,
                    peer,
                    link: req.link.clone(),
                    protocol: req.protocol,
                    open: HashSet::new(),
                    seen: seen.clone(),
                    seen_at: Instant::now(),
                    last: Vec::new(),
                });
                (st.members.len() - 1, resumed)
            }
        };

        let mut role_changed = moved_from.is_some_and(|was| was != req.read_only);
        if live.is_some() {
            let old = std::mem::replace(&mut st.members[index].link, req.link.clone());
            old.control.kick(KickReason::Replaced);
            let peer = fresh_peer(&part.owners);
            part.owners.insert(peer, st.members[index].session.clone());
            st.members[index].peer = peer;
            // The new connection opens its files again (protocol 2).
            st.members[index].protocol = req.protocol;
            st.members[index].open.clear();
            st.members[index].seen = seen.clone();
            st.members[index].seen_at = Instant::now();
            // What this connection may do follows the token it presented now.
            let was = std::mem::replace(&mut st.members[index].member.read_only, req.read_only);
            role_changed = was != req.read_only;
        }
        drop(part);
        // The other nodes bind the new peer id to its session too, before
        // any update under it reaches them (it is queued first).
        if let Some(link) = &self.link {
            let e = &st.members[index];
            link.publish_peer(e.member.id, e.peer, &e.session);
        }

        // A document too big for one message goes in parts, each of which
        // fits the frame limit once in base64 inside its event.
        let part_bytes = (req.limits.max_frame_bytes.saturating_sub(256) / 4 * 3).max(1024);
        // The text shown first shares the welcome with whatever of the
        // document fits beside it; a text too big for it is not sent.
        let text = text.filter(|t| t.len() <= part_bytes / 2);
        let room_beside = part_bytes - text.as_ref().map_or(0, |t| t.len());
        let (doc, parts) = if doc.len() > room_beside {
            (
                Vec::new(),
                doc.chunks(part_bytes).map(<[u8]>::to_vec).collect(),
            )
        } else {
            (doc, Vec::new())
        };
        let entry = &st.members[index];
        let welcome = Welcome {
            protocol: req.protocol.max(PROTOCOL_VERSION),
            you: entry.member.clone(),
            members: st
                .members
                .iter()
                .map(|e| e.member.clone())
                .chain(st.remote.iter().cloned())
                .collect(),
            session: entry.session.clone(),
            peer: entry.peer,
            resumed,
            doc_kind,
            doc: Base64Bytes(doc),
            doc_encoding,
            doc_parts: u32::try_from(parts.len()).unwrap_or(u32::MAX),
            doc_updates: u32::try_from(tail.len()).unwrap_or(u32::MAX),
            text: text.map(|t| Base64Bytes(t.as_ref().clone())),
            version: Base64Bytes(welcome_version),
            limits: req.limits,
        };
        let joined = Joined {
            id: entry.member.id,
            name: entry.member.name.clone(),
            resumed,
        };
        // A fresh queue always has room for its first event.
        let _ = req.link.tx.try_send(Out::Welcome(Box::new(WelcomeOut {
            welcome,
            parts,
            tail,
            doc_id: if workspace { DocId::Tree } else { DocId::Main },
            workspace: workspace.then_some(req.workspace),
        })));
        let member = st.members[index].member.clone();
        // The other nodes learn of a role change, and the node the session
        // moved from ends its stale connection (`joined` and `left` are
        // the join script's and the release's).
        if let Some(link) = &self.link
            && (role_changed || moved_from.is_some())
        {
            let json = ServerMsg::Member {
                member: member.clone(),
            }
            .to_json();
            link.publish(LogKind::Member, member.id, json.into_bytes(), None);
        }
        // The others learn of a newcomer, or of a resumed member's new role
        // (their lists show who may edit).
        let news = match (resumed, role_changed) {
            (false, _) => Some(ServerMsg::Joined { member }),
            (true, true) => Some(ServerMsg::Member { member }),
            (true, false) => None,
        };
        if let Some(msg) = news {
            broadcast(&mut st, &Utf8Bytes::from(msg.to_json()), Some(joined.id));
        }
        Ok(joined)
    }

    /// Removes the member if `conn` is still its connection, telling the
    /// others `left`. Returns whether the room is now dead (empty).
    pub(crate) fn leave(&self, id: UserId, conn: u64, reason: LeftReason) -> bool {
        let mut st = self.lock();
        if let Some(i) = st
            .members
            .iter()
            .position(|e| e.member.id == id && e.link.conn == conn)
        {
            remove(&mut st, i, reason);
        }
        if st.members.is_empty() && !st.dead {
            self.close(&mut st);
        }
        st.dead
    }

    /// A chat to everyone, the sender included.
    pub(crate) fn chat(&self, from: UserId, text: String) {
        let mut st = self.lock();
        let Some(me) = member_ref(&st, from) else {
            return;
        };
        let msg = ServerMsg::Chat {
            from: me,
            text,
            time: now_ms(),
        };
        let json = Utf8Bytes::from(msg.to_json());
        broadcast(&mut st, &json, None);
        if let Some(link) = &self.link {
            link.publish(LogKind::Chat, from, json.as_bytes().to_vec(), None);
        }
    }

    /// A direct message to `to`, echoed to the sender.
    pub(crate) fn direct(&self, from: UserId, to: &str, text: String) -> Result<(), ProtocolError> {
        let mut st = self.lock();
        let Some(me) = member_ref(&st, from) else {
            return Ok(());
        };
        let target_id = match st.members.iter().position(|e| e.member.name == to) {
            Some(target) => st.members[target].member.id,
            // On another node: that node delivers it.
            None => match st.remote.iter().find(|m| m.name == to) {
                Some(m) => m.id,
                None => {
                    return Err(ProtocolError::new(
                        ErrorCode::NoSuchUser,
                        format!("Nobody called {to:?} is in the room."),
                    ));
                }
            },
        };
        let msg = ServerMsg::Direct {
            from: me,
            to: to.to_owned(),
            text,
            time: now_ms(),
        };
        let text = Utf8Bytes::from(msg.to_json());
        let remote = !st.members.iter().any(|e| e.member.id == target_id);
        send_to(&mut st, &text, |id| id == target_id || id == from);
        if remote && let Some(link) = &self.link {
            link.publish(LogKind::Direct, from, text.as_bytes().to_vec(), None);
        }
        Ok(())
    }

    /// A presence change, to everyone but the sender. Never stored.
    pub(crate) fn presence(&self, from: UserId, presence: Presence) {
        let msg = ServerMsg::Presence { id: from, presence };
        let text = Utf8Bytes::from(msg.to_json());
        let mut st = self.lock();
        broadcast(&mut st, &text, Some(from));
        drop(st);
        if let Some(link) = &self.link {
            link.publish(LogKind::Presence, from, text.as_bytes().to_vec(), None);
        }
    }

    /// Imports an update that member `from` sent on connection `conn`; when
    /// it brought something new, relays it to the others, then stores it.
    /// On error the document is unchanged and nothing is relayed or stored.
    /// From a connection that is no longer the member's (removed, or its
    /// session taken over by another connection while this update waited),
    /// it is ignored (`Ok(false)`): the member's new connection resyncs by
    /// version, and the answer goes nowhere ([`Self::send_to_member`]).
    ///
    /// `info` is the update's metadata, read before any lock. Changes, new
    /// or known, under a peer id this room gave another session are refused
    /// before anything is imported (`DocPart::check_authors`). (Ids it never
    /// gave out are history: a member that brings a restarted room its text
    /// carries everyone's changes.)
    ///
    /// A keystroke is imported on this task; a paste on a thread of its
    /// own at nice 10 with this room's document lock held (see `document.rs`). A
    /// compaction it makes due runs afterwards, with no lock held.
    #[cfg(test)]
    pub(crate) async fn update(
        self: &Arc<Self>,
        from: UserId,
        conn: u64,
        data: Vec<u8>,
        info: UpdateInfo,
        settings: DocSettings,
    ) -> Result<bool, DocError> {
        self.update_stored(from, conn, data, info, settings)
            .await
            .map(|stored| stored.unwrap_or(true))
    }

    /// [`Self::update`], saying whether the room's store of record holds
    /// the update: `None` when it was accepted here (imported, relayed to
    /// this node's members) but Redis did not take it (`--redis`: it is
    /// not acked, and its author sends it again).
    ///
    /// With `--redis` the update is queued for the node's publisher under
    /// the document lock (so the room's log is in its import order), and
    /// awaited after the lock is released: the ack waits for Redis, the
    /// room does not. An update the room had already is published too: it
    /// is a resend whose first copy may not have reached Redis, and its
    /// answer comes after every earlier entry of this node's.
    pub(crate) async fn update_stored(
        self: &Arc<Self>,
        from: UserId,
        conn: u64,
        data: Vec<u8>,
        info: UpdateInfo,
        settings: DocSettings,
    ) -> Result<Option<bool>, DocError> {
        let max_doc_bytes = settings.max_doc_bytes;
        // Serialize before locking: the base64 of a big update is the
        // costly part and needs nothing from the room.
        let relay = Utf8Bytes::from(ServerMsg::update_json(from, &data));
        let mut part = self.doc_with_room_for(data.len()).await;
        if self.ws.is_workspace() {
            // Raced with `seed_tree`: a workspace has no main text.
            return Err(DocError::ForeignContainer(
                "the main text of a workspace".into(),
            ));
        }
        let Some(session) = self.session_of(from, conn) else {
            // Removed meanwhile (slow consumer), or taken over: its edits
            // no longer count.
            return Ok(Some(false));
        };
        if let Err(refused) = part.check_authors(&info, &session) {
            // With `--redis`, a member back from another node brings what
            // it saw there, which may not have reached this node yet: once
            // this node has read the log as far as it goes, the changes it
            // has are let through (new ones under another's id still are
            // not). Read again until they arrive, within a bound: what it
            // saw on a node that was killed before writing it reaches the
            // log only when its author, reconnecting too, sends it again
            // (the suite over three nodes with kills refused such an
            // honest member about once in 2,000 schedules).
            let Some(link) = &self.link else {
                return Err(refused);
            };
            let until = tokio::time::Instant::now() + AUTHORS_CATCH_UP;
            drop(part);
            loop {
                let left = until.saturating_duration_since(tokio::time::Instant::now());
                link.catch_up(left).await;
                part = self.doc_with_room_for(data.len()).await;
                let Some(session) = self.session_of(from, conn) else {
                    return Ok(Some(false));
                };
                match part.check_authors_with(&info, &session, true) {
                    Ok(()) => break,
                    Err(e) if tokio::time::Instant::now() >= until => return Err(e),
                    Err(_) => {}
                }
                drop(part);
                tokio::time::sleep(AUTHORS_RETRY.min(left)).await;
            }
        }
        let runs = part.import_runs(data.len(), max_doc_bytes);
        let room = Arc::clone(self);
        let (part, result) = run(part, runs, move |p| {
            #[cfg(test)]
            tests::gate::wait(&room.id);
            let new = p.doc.import_checked(&data, &info, max_doc_bytes)?;
            let published = room.link.as_ref().map(|link| {
                let (done, stored) = tokio::sync::oneshot::channel();
                link.publish(LogKind::Update, from, data.clone(), Some(done));
                stored
            });
            let mut job = None;
            if new {
                let last = info.spans().iter().map(|s| (s.peer, s.end - 1)).collect();
                room.relay(&relay, from, last);
                p.after_import(&room.id, data);
                job = room.take_compaction(p, settings);
            }
            Ok((new, job, published))
        })
        .await;
        drop(part);
        let (new, job, published) = result.and_then(|r| r)?;
        if let Some(job) = job {
            spawn_compaction(Arc::clone(self), job);
        }
        match published {
            None => Ok(Some(new)),
            Some(stored) => Ok(stored.await.unwrap_or(false).then_some(new)),
        }
    }

    /// The session of member `id` if `conn` is its connection now.
    fn session_of(&self, id: UserId, conn: u64) -> Option<String> {
        self.lock().member_on(id, conn).map(|e| e.session.clone())
    }

    /// The document lock, once the room may take `len` more update bytes
    /// after its kept snapshot: past two history windows
    /// (`collab_doc::HISTORY_WINDOW`) an update waits for the compaction
    /// under way, so a member who pastes and deletes megabytes as fast as
    /// it can waits for its own room's compaction instead of growing the
    /// room's welcome and store past their bound. Keystrokes never get
    /// near it.
    async fn doc_with_room_for(&self, len: usize) -> tokio::sync::OwnedMutexGuard<DocPart> {
        loop {
            let part = Arc::clone(&self.doc).lock_owned().await;
            if !part.doc.is_compacting()
                || part.doc.tail_bytes().saturating_add(len) <= 2 * collab_doc::HISTORY_WINDOW
            {
                return part;
            }
            let compacted = Arc::clone(&part.compacted);
            let notified = compacted.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            drop(part);
            notified.await;
        }
    }

    /// An update to every member but its author, whose last changes it
    /// carries (`last`: their ids).
    fn relay(&self, relay: &Utf8Bytes, from: UserId, last: Vec<(u64, i32)>) {
        let mut st = self.lock();
        if let Some(e) = st.members.iter_mut().find(|e| e.member.id == from) {
            e.last = last;
        }
        broadcast(&mut st, relay, Some(from));
    }

    /// A compaction job when one is due, with what each editing member is
    /// known to have (see [`NEED_GRACE`]).
    fn take_compaction(&self, p: &mut DocPart, settings: DocSettings) -> Option<CompactionJob> {
        if !p.compaction_wanted(settings.compact_every) {
            return None;
        }
        let now = Instant::now();
        p.checkpoint(now);
        let st = self.lock();
        let needs: Vec<Need> = st
            .members
            .iter()
            .filter(|e| !e.member.read_only)
            .map(|e| {
                let mut need = e.need();
                if let Some(vv) = p.checkpoint_before(now, e.seen_at, NEED_GRACE) {
                    need.seen.merge(vv);
                }
                need
            })
            .collect();
        // Members on other nodes (`--redis`) build on versions this node
        // does not know: keep the whole history while there are any
        // (an update of theirs on trimmed history would be refused here
        // and accepted there).
        let mut needs = needs;
        if !st.remote.is_empty() {
            needs.push(Need {
                seen: VersionVector::default(),
                last: Vec::new(),
            });
        }
        drop(st);
        p.doc.compaction_job(needs)
    }

    /// Puts `text` in the document if it has no history, and sends the
    /// resulting update to everyone, the seeder included. Returns whether
    /// it applied.
    pub(crate) async fn seed(self: &Arc<Self>, from: UserId, conn: u64, text: String) -> bool {
        let part = Arc::clone(&self.doc).lock_owned().await;
        // A workspace has no main text to seed (decided under this lock).
        if self.lock().member_on(from, conn).is_none() || self.ws.is_workspace() {
            return false;
        }
        let room = Arc::clone(self);
        let (_part, applied) = run(part, Runs::Blocking, move |p| {
            let Some(update) = p.doc.seed_if_empty(&text) else {
                return false;
            };
            let seed = collab_doc::seed_peer(&text);
            p.owners.insert(seed, SERVER_OWNER.to_owned());
            p.persist(&room.id, update.clone());
            if let Some(link) = &room.link {
                link.publish_peer(from, seed, SERVER_OWNER);
                link.publish(LogKind::Update, from, update.clone(), None);
            }
            let msg = ServerMsg::Update {
                from,
                data: Base64Bytes(update),
            };
            let mut st = room.lock();
            broadcast(&mut st, &Utf8Bytes::from(msg.to_json()), None);
            true
        })
        .await;
        applied.unwrap_or(false)
    }

    /// Answers what member `id` sent on connection `conn` (acks, errors),
    /// through its queue, if that is still the member's connection: an
    /// answer belongs to the connection that sent the event. (A session
    /// taken over while its old connection was still reading used to get
    /// that connection's answers on the new one, seqs the client no longer
    /// waited for: an honest member saw `bad_update`, issue 12.) Returns
    /// false when the member is gone, was removed as too slow, or moved to
    /// another connection.
    pub(crate) fn send_to_member(&self, id: UserId, conn: u64, msg: &ServerMsg) -> bool {
        self.send_text_to_member(id, conn, Utf8Bytes::from(msg.to_json()))
    }

    /// [`Self::send_to_member`] of an event serialized already.
    pub(crate) fn send_text_to_member(&self, id: UserId, conn: u64, text: Utf8Bytes) -> bool {
        let mut st = self.lock();
        if st.member_on(id, conn).is_none() {
            return false;
        }
        send_to(&mut st, &text, |m| m == id);
        st.member_on(id, conn).is_some()
    }
}

/// The first colour of the palette no member has (here or on another
/// node), or one picked by `id`.
fn free_color(st: &State, id: u64) -> String {
    let used: Vec<&str> = st
        .members
        .iter()
        .map(|e| e.member.color.as_str())
        .chain(st.remote.iter().map(|m| m.color.as_str()))
        .collect();
    PALETTE
        .iter()
        .find(|c| !used.contains(c))
        .copied()
        .unwrap_or(PALETTE[(id as usize) % PALETTE.len()])
        .to_owned()
}

/// The presented session token when it owns peer ids in this room and no
/// live member holds it (a session coming back keeps its ids).
fn returning_session(
    st: &State,
    owners: &HashMap<PeerId, String>,
    presented: Option<&str>,
) -> Option<String> {
    presented
        .filter(|t| !t.is_empty() && owners.values().any(|o| same_secret(o, t)))
        .filter(|t| !st.members.iter().any(|e| same_secret(&e.session, t)))
        .map(str::to_owned)
}

/// The document, and the updates to send after it.
type WelcomeDoc = (DocKind, Vec<u8>, Vec<Arc<Vec<u8>>>);

/// What a joiner's welcome carries: the updates its `version` lacks, or
/// the whole document when it has none (or one that does not decode): the
/// whole history as one update and the changes since merged into one, or
/// in a room that trimmed history the kept snapshot and the updates merged
/// after it (`collab_doc::NewcomerDoc`).
fn welcome_doc(
    doc: &mut LazyRoomDoc,
    version: Option<&[u8]>,
    max_update_bytes: usize,
) -> Result<WelcomeDoc, DocError> {
    welcome_doc_as(doc, version, max_update_bytes, Encoding::Raw).map(|(d, _)| d)
}

/// [`welcome_doc`] for a joiner that reads `encoding`, and how `doc` is
/// encoded (`welcome.doc_encoding`): a newcomer that reads zlib gets the
/// history compressed (docs/protocol.md 5.1); a rejoiner's missing updates
/// and a trimmed room's snapshot go as Loro's bytes.
fn welcome_doc_as(
    doc: &mut LazyRoomDoc,
    version: Option<&[u8]>,
    max_update_bytes: usize,
    encoding: Encoding,
) -> Result<(WelcomeDoc, Option<DocEncoding>), DocError> {
    match version.map(|v| doc.updates_since(v)) {
        Some(Ok(updates)) => Ok(((DocKind::Updates, updates, Vec::new()), None)),
        _ => Ok(match doc.newcomer_doc_as(max_update_bytes, encoding) {
            NewcomerDoc::Updates(whole, after) => (
                (
                    DocKind::Updates,
                    whole.as_ref().clone(),
                    after.into_iter().collect(),
                ),
                None,
            ),
            NewcomerDoc::ZlibUpdates(whole, after) => (
                (
                    DocKind::Updates,
                    whole.as_ref().clone(),
                    after.into_iter().collect(),
                ),
                Some(DocEncoding::Zlib),
            ),
            NewcomerDoc::Snapshot((base, tail)) => {
                ((DocKind::Snapshot, base.as_ref().clone(), tail), None)
            }
        }),
    }
}

fn member_ref(st: &State, id: UserId) -> Option<MemberRef> {
    st.members
        .iter()
        .find(|e| e.member.id == id)
        .map(|e| MemberRef {
            id,
            name: e.member.name.clone(),
        })
}

fn broadcast(st: &mut State, text: &Utf8Bytes, except: Option<UserId>) {
    send_to_entries(st, text, |e| Some(e.member.id) != except);
}

/// Queues `text` for every member `to` selects by id.
fn send_to(st: &mut State, text: &Utf8Bytes, to: impl Fn(UserId) -> bool) {
    send_to_entries(st, text, |e| to(e.member.id));
}

/// Queues `text` for every member `to` selects. Members whose queue is full
/// (in events or bytes) are removed (and told `left` as `removed`), which may in turn find more
/// slow members: the loop ends because each round removes someone.
fn send_to_entries(st: &mut State, text: &Utf8Bytes, to: impl Fn(&Entry) -> bool) {
    let mut slow = Vec::new();
    let len = text.len();
    for e in &st.members {
        if !to(e) {
            continue;
        }
        let queued = &e.link.control.queued_bytes;
        // One event is always let through an empty queue, however big.
        let before = queued.fetch_add(len, Ordering::AcqRel);
        if before > 0 && before + len > st.max_queue_bytes {
            queued.fetch_sub(len, Ordering::AcqRel);
            slow.push(e.member.id);
            continue;
        }
        match e.link.tx.try_send(Out::Text(text.clone())) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                queued.fetch_sub(len, Ordering::AcqRel);
                slow.push(e.member.id);
            }
            // The task is ending; its drop guard removes it.
            Err(mpsc::error::TrySendError::Closed(_)) => {
                queued.fetch_sub(len, Ordering::AcqRel);
            }
        }
    }
    for id in slow {
        if let Some(i) = st.members.iter().position(|e| e.member.id == id) {
            tracing::warn!(user = id, "slow consumer: outbound queue full, removing");
            st.members[i].link.control.kick(KickReason::SlowConsumer);
            remove(st, i, LeftReason::Removed);
        }
    }
}

/// The one place a member leaves: remove, then tell the others.
fn remove(st: &mut State, index: usize, reason: LeftReason) {
    let gone = st.members.remove(index);
    tracing::info!(user = gone.member.id, name = %gone.member.name, ?reason, "left");
    if let Some(link) = &st.link {
        // The other nodes hear it from the log (once: only the release
        // that removes the name writes `left`).
        link.release(gone.member.name.clone(), reason);
    }
    let msg = ServerMsg::Left {
        id: gone.member.id,
        name: gone.member.name,
        reason,
    };
    if !st.members.is_empty() {
        broadcast(st, &Utf8Bytes::from(msg.to_json()), None);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use collab_doc::SharedDoc;

    /// Holds a room's document work at its start until released: a test's
    /// stand-in for an import that takes seconds.
    pub(super) mod gate {
        use std::collections::HashMap;
        use std::sync::{OnceLock, mpsc};

        use parking_lot::Mutex;

        use collab_protocol::RoomId;

        type Gates = Mutex<HashMap<String, mpsc::Receiver<()>>>;

        fn gates() -> &'static Gates {
            static GATES: OnceLock<Gates> = OnceLock::new();
            GATES.get_or_init(Gates::default)
        }

        /// The next document work of `room` waits until the sender is used
        /// or dropped.
        pub fn hold(room: &RoomId) -> mpsc::Sender<()> {
            let (tx, rx) = mpsc::channel();
            gates().lock().insert(room.as_str().to_owned(), rx);
            tx
        }

        type Watchers = Mutex<HashMap<String, mpsc::Sender<(String, i32)>>>;

        fn watchers() -> &'static Watchers {
            static WATCHERS: OnceLock<Watchers> = OnceLock::new();
            WATCHERS.get_or_init(Watchers::default)
        }

        /// Tells, once, the name and nice value of the thread whose work
        /// of `room` next reaches its gate.
        pub fn watch(room: &RoomId) -> mpsc::Receiver<(String, i32)> {
            let (tx, rx) = mpsc::channel();
            watchers().lock().insert(room.as_str().to_owned(), tx);
            rx
        }

        pub fn wait(room: &RoomId) {
            if let Some(tx) = watchers().lock().remove(room.as_str()) {
                let me = std::thread::current();
                let nice = rustix::process::getpriority_process(Some(rustix::thread::gettid()))
                    .unwrap_or(0);
                let _ = tx.send((me.name().unwrap_or_default().to_owned(), nice));
            }
            let rx = gates().lock().remove(room.as_str());
            if let Some(rx) = rx {
                let _ = rx.recv();
            }
        }
    }

    /// The document settings of a test room: `max_doc_bytes`, defaults.
    pub(crate) fn settings(max_doc_bytes: usize) -> DocSettings {
        DocSettings {
            max_doc_bytes,
            compact_every: 1000,
        }
    }

    /// A join request for `name` on connection `conn` (rooms of 2, small
    /// limits), and the connection's queue.
    pub(crate) fn request(name: &str, conn: u64) -> (JoinRequest, mpsc::Receiver<Out>) {
        let (tx, rx) = mpsc::channel(16);
        let req = JoinRequest {
            name: UserName::parse(name).unwrap(),
            session: None,
            version: None,
            link: Link {
                conn,
                tx,
                control: Arc::new(Control::default()),
            },
            limits: Limits {
                max_frame_bytes: 1024,
                max_doc_bytes: 1024,
                messages_per_second: 1,
                burst: 1,
            },
            max_users: 2,
            read_only: false,
            protocol: PROTOCOL_VERSION,
            workspace: crate::Config::default().workspace_limits(),
            doc_encoding: Default::default(),
            text_first: false,
        };
        (req, rx)
    }

    async fn joined(room: &Arc<Room>, name: &str, id: UserId) -> (Joined, mpsc::Receiver<Out>) {
        let (req, mut rx) = request(name, id);
        let joined = room.join(req, || id).await.ok().unwrap();
        assert!(matches!(rx.recv().await, Some(Out::Welcome(_))));
        (joined, rx)
    }

    async fn next_text(rx: &mut mpsc::Receiver<Out>) -> String {
        match rx.recv().await {
            Some(Out::Text(t)) => t.as_str().to_owned(),
            other => panic!("expected an event, got {other:?}"),
        }
    }

    fn update(doc: &mut SharedDoc, text: &str) -> (Vec<u8>, UpdateInfo) {
        let at = doc.len_chars();
        doc.splice(at, 0, text).unwrap();
        let u = doc.take_local_update().unwrap();
        let info = UpdateInfo::read(&u).unwrap();
        (u, info)
    }

    /// Issue 12's convergence flake, at its source: alice's connection 1 is
    /// still reading (an update of hers waits for the document lock) when a
    /// join with her session token on connection 3 takes her session over.
    /// What connection 1 sends after that changes nothing and is answered
    /// nowhere: it used to be imported and relayed, and its `ack` or `error`
    /// (for a seq connection 3's client never sent) queued to connection 3,
    /// where an honest client under a tight rate limit saw `bad_update`.
    #[tokio::test]
    async fn a_connection_whose_session_was_taken_over_neither_edits_nor_is_answered() {
        let room = Arc::new(Room::new(RoomId::parse("takeover").unwrap(), 1 << 20));
        let (req, mut old_rx) = request("alice", 1);
        let alice = room.join(req, || 1).await.ok().unwrap();
        let Some(Out::Welcome(w)) = old_rx.recv().await else {
            panic!("no welcome")
        };
        let (_bob, mut bob_rx) = joined(&room, "bob", 2).await;
        let (mut req, mut new_rx) = request("alice", 3);
        req.session = Some(w.welcome.session.clone());
        let again = room.join(req, || 99).await.ok().unwrap();
        assert!(again.resumed && again.id == alice.id);
        assert!(matches!(new_rx.recv().await, Some(Out::Welcome(_))));

        let (u, info) = update(&mut SharedDoc::new(), "late");
        assert_eq!(
            room.update(alice.id, 1, u, info, settings(1 << 20)).await,
            Ok(false)
        );
        assert!(!room.send_to_member(alice.id, 1, &ServerMsg::Ack { seq: 5 }));
        assert!(new_rx.try_recv().is_err(), "answered on the new connection");
        assert!(bob_rx.try_recv().is_err(), "relayed");
        assert_eq!(room.doc.lock().await.doc.text(), "");
        // What the new connection sends is answered there.
        let (u, info) = update(&mut SharedDoc::new(), "mine");
        assert_eq!(
            room.update(alice.id, 3, u, info, settings(1 << 20)).await,
            Ok(true)
        );
        assert!(room.send_to_member(alice.id, 3, &ServerMsg::Ack { seq: 6 }));
        assert!(matches!(new_rx.try_recv(), Ok(Out::Text(t)) if t.as_str().contains("\"ack\"")));
        assert!(matches!(bob_rx.try_recv(), Ok(Out::Text(t)) if t.as_str().contains("\"update\"")));
        assert_eq!(room.doc.lock().await.doc.text(), "mine");
    }

    /// Members joining a room nobody has typed in build no Loro document
    /// (an idle pair costs the server bytes, not a live document: issue
    /// 16's idle member); the first update builds it.
    #[tokio::test]
    async fn an_idle_room_keeps_no_live_document() {
        let room = Arc::new(Room::new(RoomId::parse("idle").unwrap(), 1 << 20));
        let (alice, _alice_rx) = joined(&room, "alice", 1).await;
        let (_bob, mut bob_rx) = joined(&room, "bob", 2).await;
        assert!(!room.doc.lock().await.doc.is_live());
        let (u, info) = update(&mut SharedDoc::new(), "hi");
        assert_eq!(
            room.update(alice.id, 1, u, info, settings(1 << 20)).await,
            Ok(true)
        );
        assert!(next_text(&mut bob_rx).await.contains("\"update\""));
        assert!(room.doc.lock().await.doc.is_live());
    }

    /// A paste's import runs off the runtime, below the workers: while it
    /// is held there, another room relays keystrokes and this room relays
    /// chat, on a runtime with a single thread (where work on the runtime
    /// would stop everything: with the import inline this test hangs).
    /// Then the paste lands, relayed once. It ran on a thread of its own at
    /// nice 10 (`priority::heavy`): on the blocking pool, at the workers'
    /// priority, pastes in room after room made a quiet room's keystrokes
    /// wait (issue 13).
    #[tokio::test(flavor = "current_thread")]
    async fn a_held_import_stalls_neither_other_rooms_nor_chat() {
        let busy = Arc::new(Room::new(RoomId::parse("busy").unwrap(), 1 << 20));
        let quiet = Arc::new(Room::new(RoomId::parse("quiet").unwrap(), 1 << 20));
        let (alice, _alice_rx) = joined(&busy, "alice", 1).await;
        let (_bob, mut bob_rx) = joined(&busy, "bob", 2).await;
        let (carol, _carol_rx) = joined(&quiet, "carol", 3).await;
        let (_dave, mut dave_rx) = joined(&quiet, "dave", 4).await;

        let release = gate::hold(busy.id());
        let reached = gate::watch(busy.id());
        let (paste, info) = update(&mut SharedDoc::new(), &"pasted line\n".repeat(2000));
        let pasting = {
            let busy = Arc::clone(&busy);
            tokio::spawn(async move {
                busy.update(alice.id, 1, paste, info, settings(1 << 22))
                    .await
            })
        };
        tokio::task::yield_now().await;
        assert!(!pasting.is_finished(), "the paste waits at the gate");

        let mut typing = SharedDoc::new();
        for key in ["a", "b", "c"] {
            let (u, info) = update(&mut typing, key);
            assert_eq!(
                quiet.update(carol.id, 3, u, info, settings(1 << 20)).await,
                Ok(true)
            );
            assert!(next_text(&mut dave_rx).await.contains("\"update\""));
        }
        busy.chat(alice.id, "still here".into());
        assert!(next_text(&mut bob_rx).await.contains("still here"));

        let (thread, nice) = reached
            .recv_timeout(std::time::Duration::from_secs(10))
            .unwrap();
        assert_eq!(thread, "collab-heavy");
        #[cfg(target_os = "linux")]
        assert!(nice >= 10, "the import ran at nice {nice}");
        release.send(()).unwrap();
        assert_eq!(pasting.await.unwrap(), Ok(true));
        assert!(next_text(&mut bob_rx).await.contains("\"update\""));
    }
}
