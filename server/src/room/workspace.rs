//! A workspace room's documents besides the main one (protocol 2,
//! `docs/workspace.md`; the wire is `docs/protocol.md` section 11): the
//! file tree, and the files, each its own Loro document named by its tree
//! node's id.
//!
//! Why apart from `document.rs`: the main document's side (its lock, its
//! store link, who owns which peer id) is the one-file room's, unchanged;
//! a workspace adds documents beside it, each behind a lock of its own, so
//! a paste into one file never waits for another file or for the tree, and
//! a newcomer's welcome (which carries the tree) never waits for a file.
//!
//! - The **tree** is loaded with the room and is the welcome's document.
//!   Its updates are checked by `collab_doc::tree::Tree::import_checked`
//!   (operation count from the header, every operation, node count, depth)
//!   on the blocking pool: the check reads the whole tree (23 ms for 5,000
//!   files). A newcomer gets the snapshot kept since the seed or the last
//!   reset plus the updates since, as for the main document.
//! - A **file** is loaded on its first `open` and, with a store, dropped
//!   from memory when no member has it open; its updates go to the members
//!   that have it open; it is a text document under the main document's
//!   rules (`RoomDoc::import_checked`: size limit, replay budget, only the
//!   text container).
//! - Peer ids are owned per session for every document alike: the owners
//!   map is the main document's (`DocPart::owners`), read under its lock
//!   before a tree or file lock is taken (lock order: the main document,
//!   the tree, a file, the members).
//! - Whether the room is a workspace changes once, from no to yes, in
//!   `seed_tree`, under the main document's lock, which every join holds
//!   while it decides what to send: a version 1 join never enters a
//!   workspace, and a seed never lands in a room with a version 1 member.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use collab_doc::tree::{NodeId, Tree, TreeError, TreeLimits};
use collab_doc::{CompactionJob, DocError, LazyRoomDoc, PeerId, UpdateInfo};
use collab_protocol::workspace::{
    DocId, Opened, ServerEvent, WORKSPACE_PROTOCOL_VERSION, WorkspaceLimits, with_doc_id,
};
use collab_protocol::{
    Base64Bytes, DocKind, ErrorCode, Presence, ProtocolError, RoomId, ServerMsg, UserId,
};
use parking_lot::Mutex;
use tokio::sync::mpsc;
use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};
use tokio_tungstenite::tungstenite::Utf8Bytes;

use super::{KickReason, Out, Room, State, WelcomeDoc, broadcast, remove, send_to_entries};
use crate::access::same_secret;
use crate::store::{DocKey, LoadedTree, StoreHandle, StoreLink};

/// Updates this small are imported on the runtime's worker (keystrokes);
/// bigger ones on the blocking pool, as for the main document.
const INLINE_IMPORT_MAX_BYTES: usize = 4 * 1024;

/// The most tree update bytes kept after the tree's snapshot for
/// newcomers; past it the next newcomer gets a fresh snapshot.
const TREE_TAIL_MAX_BYTES: usize = 1024 * 1024;

/// A welcome's or an `opened`'s document: what it carries, and the
/// server's version of it.
type Taken = (WelcomeDoc, Vec<u8>);

/// A snapshot, and the updates merged after it.
type Newcomer = (Arc<Vec<u8>>, Vec<Arc<Vec<u8>>>);

/// A workspace's tree and files.
#[derive(Debug, Default)]
pub(super) struct Workspace {
    /// Set once, by `seed_tree`, under the main document's lock.
    is: AtomicBool,
    tree: Arc<AsyncMutex<TreePart>>,
    /// The files in memory: those some member has open (and, without a
    /// store, every file ever opened: memory is their only copy).
    files: Mutex<HashMap<NodeId, FileLock>>,
    sizes: Mutex<Sizes>,
    /// With storage: where files are loaded from on their first `open`.
    store: Option<StoreHandle>,
}

/// What each document of the workspace counts against
/// `max_workspace_bytes`: a file its text's bytes (at most), the tree its
/// updates' bytes.
#[derive(Debug, Default)]
struct Sizes {
    files: HashMap<NodeId, usize>,
    tree: usize,
    total: usize,
}

impl Sizes {
    fn set_file(&mut self, id: NodeId, bytes: usize) {
        let old = self.files.insert(id, bytes).unwrap_or(0);
        self.total = self.total.saturating_sub(old).saturating_add(bytes);
    }

    fn add_tree(&mut self, bytes: usize) {
        self.tree = self.tree.saturating_add(bytes);
        self.total = self.total.saturating_add(bytes);
    }

    /// The room's total without file `id`.
    fn without(&self, id: NodeId) -> usize {
        self.total
            .saturating_sub(self.files.get(&id).copied().unwrap_or(0))
    }
}

/// The tree, and what a newcomer is sent of it.
#[derive(Debug, Default)]
pub(super) struct TreePart {
    tree: Tree,
    /// A snapshot of the tree and the updates merged after it: together
    /// they are the tree, so a newcomer's welcome is a copy of bytes.
    /// `None` when the tail grew past [`TREE_TAIL_MAX_BYTES`].
    base: Option<Arc<Vec<u8>>>,
    tail: Vec<Arc<Vec<u8>>>,
    tail_bytes: usize,
    /// With storage: where its updates go (`ROOM/tree`).
    store: Option<StoreLink>,
}

impl TreePart {
    /// Hands an accepted update to the store, and the whole tree when the
    /// store wants a snapshot (the tree is not compacted: its snapshot is
    /// made here, on the blocking pool where tree updates run).
    fn persist(&mut self, room: &RoomId, data: Vec<u8>) {
        let Some(link) = self.store.as_mut() else {
            return;
        };
        let key = DocKey::of(room, DocId::Tree);
        link.persist(&key, data);
        if link.wants_snapshot() {
            match self.tree.snapshot() {
                Ok(snapshot) => link.store_snapshot(&key, snapshot),
                Err(e) => {
                    tracing::error!(room = %room, error = %e, "exporting the tree for the store failed")
                }
            }
        }
    }

    fn remember(&mut self, update: &[u8]) {
        if self.base.is_none() {
            return;
        }
        self.tail_bytes += update.len();
        if self.tail_bytes > TREE_TAIL_MAX_BYTES {
            self.base = None;
            self.tail = Vec::new();
            self.tail_bytes = 0;
        } else {
            self.tail.push(Arc::new(update.to_vec()));
        }
    }

    /// A newcomer's snapshot and the updates after it.
    fn for_newcomer(&mut self) -> Result<Newcomer, DocError> {
        if let Some(base) = &self.base {
            return Ok((Arc::clone(base), self.tail.clone()));
        }
        let base = Arc::new(self.tree.snapshot()?);
        self.base = Some(Arc::clone(&base));
        Ok((base, Vec::new()))
    }

    /// What a joiner with `version` (or none) is sent.
    fn welcome(&mut self, version: Option<&[u8]>) -> Result<Taken, DocError> {
        let vv = self.tree.version();
        match version.map(|v| self.tree.updates_since(v)) {
            Some(Ok(updates)) => Ok(((DocKind::Updates, updates, Vec::new()), vv)),
            _ => {
                let (base, tail) = self.for_newcomer()?;
                Ok(((DocKind::Snapshot, base.as_ref().clone(), tail), vv))
            }
        }
    }
}

type FileLock = Arc<AsyncMutex<FilePart>>;

/// A file's document in memory.
#[derive(Debug, Default)]
struct FilePart {
    doc: LazyRoomDoc,
    /// Read from the store (or known new): set by the first `open`.
    loaded: bool,
    /// With storage: where its updates go (`ROOM/COUNTER@PEER`).
    store: Option<StoreLink>,
    /// Dropped from memory: whoever waited for this lock looks again.
    gone: bool,
}

impl Workspace {
    /// The workspace of a room kept in `store`, with its tree as stored
    /// (`None`: the room is no workspace yet). Its files stay in the store
    /// until opened.
    pub(super) fn restored(tree: Option<LoadedTree>, store: StoreHandle) -> Self {
        let (part, bytes) = match tree {
            Some(t) => (
                TreePart {
                    tree: t.tree,
                    store: Some(StoreLink::new(store.clone(), t.updates, t.bytes)),
                    ..TreePart::default()
                },
                t.bytes,
            ),
            None => (
                TreePart {
                    store: Some(StoreLink::new(store.clone(), 0, 0)),
                    ..TreePart::default()
                },
                0,
            ),
        };
        let ws = Self {
            is: AtomicBool::new(!part.tree.is_empty()),
            tree: Arc::new(AsyncMutex::new(part)),
            store: Some(store),
            ..Self::default()
        };
        ws.sizes.lock().add_tree(bytes);
        ws
    }

    pub(super) fn is_workspace(&self) -> bool {
        self.is.load(Ordering::Acquire)
    }

    /// What the room's files counted when the store last heard (keys
    /// `ROOM/COUNTER@PEER`), so the room's total holds before they are
    /// opened again.
    fn set_sizes(&self, room: &RoomId, stored: &[(String, u64)]) {
        let prefix = format!("{}/", room.as_str());
        let mut sizes = self.sizes.lock();
        for (key, bytes) in stored {
            if let Some(id) = key
                .strip_prefix(&prefix)
                .and_then(|k| k.parse::<NodeId>().ok())
            {
                sizes.set_file(id, usize::try_from(*bytes).unwrap_or(usize::MAX));
            }
        }
    }

    /// Tells the store what file `id` counts now.
    fn store_size(&self, room: &RoomId, id: NodeId, doc: &LazyRoomDoc) {
        if let Some(store) = &self.store {
            store.size(DocKey::of(room, file_id(id)), doc.len_bytes_at_most());
        }
    }

    /// The tree's lock, and what a joiner with `version` is sent; on the
    /// blocking pool unless it is a copy of kept bytes.
    pub(super) async fn welcome_doc(
        &self,
        version: Option<Vec<u8>>,
    ) -> Result<(OwnedMutexGuard<TreePart>, Taken), DocError> {
        let guard = Arc::clone(&self.tree).lock_owned().await;
        let inline = version.is_none() && guard.base.is_some();
        let (guard, taken) = run_on(guard, inline, move |p| p.welcome(version.as_deref())).await?;
        Ok((guard, taken?))
    }

    /// File `id` in memory, made empty when it is not (a file whose text
    /// has not arrived yet, or one nobody wrote).
    fn file(&self, id: NodeId) -> FileLock {
        Arc::clone(self.files.lock().entry(id).or_default())
    }

    fn loaded(&self, id: NodeId) -> Option<FileLock> {
        self.files.lock().get(&id).cloned()
    }

    /// Drops file `id` from the map if `file` is still the one there.
    fn forget(&self, id: NodeId, file: &FileLock) {
        let mut files = self.files.lock();
        if files.get(&id).is_some_and(|f| Arc::ptr_eq(f, file)) {
            files.remove(&id);
        }
    }
}

/// The answer to a version 1 join of a workspace room.
pub(super) fn upgrade_the_client(room: &RoomId) -> ProtocolError {
    ProtocolError::new(
        ErrorCode::VersionMismatch,
        format!(
            "Room {:?} is a workspace (a shared folder), which needs protocol {WORKSPACE_PROTOCOL_VERSION}: upgrade the client.",
            room.as_str()
        ),
    )
}

pub(crate) fn no_such_doc(doc: DocId) -> ProtocolError {
    ProtocolError::new(
        ErrorCode::NoSuchDoc,
        format!(
            "The room holds no document {doc}, or you have not opened it (open a file before sending its updates or presence)."
        ),
    )
}

fn workspace_full(why: impl std::fmt::Display) -> ProtocolError {
    ProtocolError::new(
        ErrorCode::WorkspaceFull,
        format!(
            "{} ({why}).",
            ErrorCode::WorkspaceFull.sentence().trim_end_matches('.')
        ),
    )
}

/// The error a refused document update is answered with.
pub(crate) fn doc_refusal(e: &DocError) -> ProtocolError {
    let code = match e {
        DocError::TooLarge { .. } => ErrorCode::DocTooLarge,
        DocError::HistoryTrimmed => ErrorCode::HistoryTrimmed,
        _ => ErrorCode::BadUpdate,
    };
    ProtocolError::new(
        code,
        format!("{} ({e}).", code.sentence().trim_end_matches('.')),
    )
}

fn tree_refusal(e: &TreeError) -> ProtocolError {
    match e {
        TreeError::TooManyNodes { .. } => workspace_full(e),
        TreeError::Doc(d) => doc_refusal(d),
        _ => ProtocolError::new(
            ErrorCode::BadUpdate,
            format!(
                "{} ({e}).",
                ErrorCode::BadUpdate.sentence().trim_end_matches('.')
            ),
        ),
    }
}

/// Runs `work` on the locked value: here when `inline`, else on the
/// blocking pool (CRDT work that may be long), the lock travelling with it.
async fn run_on<T: Send + 'static, R: Send + 'static>(
    mut guard: OwnedMutexGuard<T>,
    inline: bool,
    work: impl FnOnce(&mut T) -> R + Send + 'static,
) -> Result<(OwnedMutexGuard<T>, R), DocError> {
    if inline {
        let r = work(&mut guard);
        return Ok((guard, r));
    }
    // At normal priority: the lock's waiters wait for it (`priority.rs`).
    tokio::task::spawn_blocking(move || {
        let r = work(&mut guard);
        (guard, r)
    })
    .await
    .map_err(|e| {
        tracing::error!(error = %e, "workspace document work failed");
        DocError::BadUpdate("the server failed to apply it".into())
    })
}

/// An update that carries changes under a peer id this room gave a session
/// other than `session` is a forgery (see `DocPart::check_authors`); the
/// same ownership holds in every document of the room.
fn check_authors(
    owners: &HashMap<PeerId, String>,
    info: &UpdateInfo,
    session: &str,
) -> Result<(), DocError> {
    for span in info.spans() {
        if let Some(owner) = owners.get(&span.peer)
            && !same_secret(owner, session)
        {
            return Err(DocError::PeerOwned(span.peer));
        }
    }
    Ok(())
}

fn file_id(id: NodeId) -> DocId {
    DocId::File {
        counter: u32::try_from(id.counter).unwrap_or(0),
        peer: id.peer,
    }
}

/// The tree node a file's document id names.
pub(crate) fn node_of(doc: DocId) -> Option<NodeId> {
    match doc {
        DocId::File { counter, peer } => Some(NodeId {
            peer,
            counter: i32::try_from(counter).ok()?,
        }),
        _ => None,
    }
}

/// An `opened` and the events that follow it: the document's parts when it
/// is too big for one message, then the updates after its snapshot.
fn render_opened(
    id: NodeId,
    ((doc_kind, doc, tail), version): Taken,
    max_frame_bytes: usize,
) -> Vec<Utf8Bytes> {
    let doc_id = file_id(id);
    let part_bytes = (max_frame_bytes.saturating_sub(256) / 4 * 3).max(1024);
    let (doc, parts) = if doc.len() > part_bytes {
        (
            Vec::new(),
            doc.chunks(part_bytes).map(<[u8]>::to_vec).collect(),
        )
    } else {
        (doc, Vec::new())
    };
    let opened = ServerEvent::Opened(Box::new(Opened {
        doc_id,
        doc_kind,
        doc: Base64Bytes(doc),
        doc_parts: u32::try_from(parts.len()).unwrap_or(u32::MAX),
        doc_updates: u32::try_from(tail.len()).unwrap_or(u32::MAX),
        version: Base64Bytes(version),
    }));
    let mut out = vec![Utf8Bytes::from(opened.to_json())];
    out.extend(parts.into_iter().map(|data| {
        Utf8Bytes::from(
            ServerMsg::DocPart {
                data: Base64Bytes(data),
            }
            .to_json(),
        )
    }));
    out.extend(
        tail.iter()
            .map(|u| Utf8Bytes::from(with_doc_id(ServerMsg::update_json(0, u), doc_id))),
    );
    out
}

impl Room {
    pub(crate) fn is_workspace(&self) -> bool {
        self.ws.is_workspace()
    }

    /// The stored sizes of this (restored) room's files.
    pub(crate) fn set_sizes(&mut self, stored: &[(String, u64)]) {
        self.ws.set_sizes(&self.id, stored);
    }

    /// The session of member `id` if `conn` is its connection.
    fn session_on(&self, id: UserId, conn: u64) -> Option<String> {
        self.lock().member_on(id, conn).map(|e| e.session.clone())
    }

    /// Refuses an update under another session's peer id (the owners map
    /// is the main document's; its lock is taken briefly, before any
    /// workspace lock).
    async fn check_owned(&self, info: &UpdateInfo, session: &str) -> Result<(), ProtocolError> {
        let part = self.doc.lock().await;
        check_authors(&part.owners, info, session).map_err(|e| doc_refusal(&e))
    }

    /// Shares a folder into this room: applies the tree update `data` if
    /// the room is empty (no text, no tree) and every member speaks
    /// protocol 2, atomically with joins and seeds (under the main
    /// document's lock), then sends it to everyone, the seeder included.
    /// Returns whether it applied.
    pub(crate) async fn seed_tree(
        self: &Arc<Self>,
        from: UserId,
        conn: u64,
        data: Vec<u8>,
        info: UpdateInfo,
        limits: WorkspaceLimits,
    ) -> Result<bool, ProtocolError> {
        let part = Arc::clone(&self.doc).lock_owned().await;
        let tree = Arc::clone(&self.ws.tree).lock_owned().await;
        let session = {
            let st = self.lock();
            let Some(entry) = st.member_on(from, conn) else {
                return Ok(false);
            };
            let empty = !self.ws.is_workspace()
                && tree.tree.is_empty()
                && part.doc.version_vector().is_empty();
            let all_speak_2 = st
                .members
                .iter()
                .all(|e| e.protocol >= WORKSPACE_PROTOCOL_VERSION);
            if !empty || !all_speak_2 {
                return Ok(false);
            }
            entry.session.clone()
        };
        check_authors(&part.owners, &info, &session).map_err(|e| doc_refusal(&e))?;
        if data.len() > limits.max_workspace_bytes {
            return Err(workspace_full(format!(
                "the tree is {} bytes, over the room's {}",
                data.len(),
                limits.max_workspace_bytes
            )));
        }
        let room = Arc::clone(self);
        let tree_limits = tree_limits(&limits);
        let (_tree, result) = run_on(tree, false, move |p| {
            if !p.tree.import_checked(&data, &info, &tree_limits)? {
                return Ok(false);
            }
            p.base = Some(Arc::new(p.tree.snapshot()?));
            p.tail = Vec::new();
            p.tail_bytes = 0;
            room.ws.sizes.lock().add_tree(data.len());
            room.ws.is.store(true, Ordering::Release);
            let relay = with_doc_id(ServerMsg::update_json(from, &data), DocId::Tree);
            broadcast(&mut room.lock(), &Utf8Bytes::from(relay), None);
            p.persist(&room.id, data);
            Ok(true)
        })
        .await
        .map_err(|e| doc_refusal(&e))?;
        drop(part);
        result.map_err(|e: TreeError| tree_refusal(&e))
    }

    /// A member's update of the tree: checked and imported on the blocking
    /// pool, then relayed to every other member. `Ok(false)`: nothing new,
    /// or the connection is no longer the member's.
    pub(crate) async fn tree_update(
        self: &Arc<Self>,
        from: UserId,
        conn: u64,
        data: Vec<u8>,
        info: UpdateInfo,
        limits: WorkspaceLimits,
    ) -> Result<bool, ProtocolError> {
        if !self.is_workspace() {
            return Err(no_such_doc(DocId::Tree));
        }
        let Some(session) = self.session_on(from, conn) else {
            return Ok(false);
        };
        self.check_owned(&info, &session).await?;
        let total = self.ws.sizes.lock().total;
        if total.saturating_add(data.len()) > limits.max_workspace_bytes {
            return Err(workspace_full(format!(
                "the room holds {total} bytes, its limit is {}",
                limits.max_workspace_bytes
            )));
        }
        let relay = Utf8Bytes::from(with_doc_id(
            ServerMsg::update_json(from, &data),
            DocId::Tree,
        ));
        let tree = Arc::clone(&self.ws.tree).lock_owned().await;
        if self.session_on(from, conn).is_none() {
            return Ok(false);
        }
        let room = Arc::clone(self);
        let tree_limits = tree_limits(&limits);
        let (_tree, result) = run_on(tree, false, move |p| {
            let new = p.tree.import_checked(&data, &info, &tree_limits)?;
            if new {
                broadcast(&mut room.lock(), &relay, Some(from));
                p.remember(&data);
                room.ws.sizes.lock().add_tree(data.len());
                p.persist(&room.id, data);
            }
            Ok(new)
        })
        .await
        .map_err(|e| doc_refusal(&e))?;
        result.map_err(|e: TreeError| tree_refusal(&e))
    }

    /// A member's update of file `id`, which it has open: imported under
    /// the file's lock (on the blocking pool unless it is a keystroke),
    /// then relayed to the other members that have the file open.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn file_update(
        self: &Arc<Self>,
        from: UserId,
        conn: u64,
        id: NodeId,
        data: Vec<u8>,
        info: UpdateInfo,
        max_doc_bytes: usize,
        limits: WorkspaceLimits,
        compact_every: usize,
    ) -> Result<bool, ProtocolError> {
        let doc_id = file_id(id);
        let session = {
            let st = self.lock();
            match st.member_on(from, conn) {
                None => return Ok(false),
                Some(e) if !e.open.contains(&id) => return Err(no_such_doc(doc_id)),
                Some(e) => e.session.clone(),
            }
        };
        self.check_owned(&info, &session).await?;
        let Some(file) = self.ws.loaded(id) else {
            return Err(no_such_doc(doc_id));
        };
        let relay = Utf8Bytes::from(with_doc_id(ServerMsg::update_json(from, &data), doc_id));
        let guard = Arc::clone(&file).lock_owned().await;
        let open = |st: &State| {
            st.member_on(from, conn)
                .is_some_and(|e| e.open.contains(&id))
        };
        if guard.gone || !open(&self.lock()) {
            return Ok(false);
        }
        // The file may grow to the smaller of its own limit and what the
        // rest of the room leaves.
        let room_left = limits
            .max_workspace_bytes
            .saturating_sub(self.ws.sizes.lock().without(id));
        let max = max_doc_bytes.min(room_left);
        let inline =
            data.len() <= INLINE_IMPORT_MAX_BYTES && guard.doc.import_is_light(data.len(), max);
        let room = Arc::clone(self);
        let (file_guard, result) = run_on(guard, inline, move |p| {
            let new = p.doc.import_checked(&data, &info, max)?;
            let mut job = None;
            if new {
                let mut st = room.lock();
                send_to_entries(&mut st, &relay, |e| {
                    e.member.id != from && e.open.contains(&id)
                });
                drop(st);
                room.ws.sizes.lock().set_file(id, p.doc.len_bytes_at_most());
                if let Some(link) = p.store.as_mut() {
                    link.persist(DocKey::of(&room.id, doc_id), data);
                }
                let store_wants = p.store.as_ref().is_some_and(StoreLink::wants_snapshot);
                if p.doc.compaction_due(compact_every) || (store_wants && !p.doc.is_compacting()) {
                    job = p.doc.compaction_job(Vec::new());
                }
            }
            Ok((new, job))
        })
        .await
        .map_err(|e| doc_refusal(&e))?;
        drop(file_guard);
        let result = result.map(|(new, job)| {
            if let Some(job) = job {
                compact_file(Arc::clone(self), id, file, job);
            }
            new
        });
        result.map_err(|e: DocError| match e {
            DocError::TooLarge { would_be, .. } if max < max_doc_bytes && would_be > room_left => {
                workspace_full(format!(
                    "the room's documents would be over {} bytes",
                    limits.max_workspace_bytes
                ))
            }
            e => doc_refusal(&e),
        })
    }

    /// Opens file `id` for member `from`: answers `opened` with the file's
    /// document (what `version` lacks, when given), and from then on relays
    /// the file's updates to it. An `open` of a file already open is
    /// answered again in full.
    pub(crate) async fn open(
        self: &Arc<Self>,
        from: UserId,
        conn: u64,
        id: NodeId,
        version: Option<Vec<u8>>,
        max_frame_bytes: usize,
    ) -> Result<(), ProtocolError> {
        if !self.is_workspace() || !self.ws.tree.lock().await.tree.has_file(id) {
            return Err(no_such_doc(file_id(id)));
        }
        // A round repeats only when the file was dropped from memory while
        // this waited for it: bounded, as each needs another close.
        for _ in 0..64 {
            if self.session_on(from, conn).is_none() {
                return Ok(());
            }
            let file = self.ws.file(id);
            let mut guard = Arc::clone(&file).lock_owned().await;
            if guard.gone {
                continue;
            }
            if !guard.loaded {
                if let Some(store) = &self.ws.store {
                    match store.load(DocKey::of(&self.id, file_id(id))).await {
                        Ok(loaded) => {
                            guard.doc = loaded.doc.into();
                            guard.store =
                                Some(StoreLink::new(store.clone(), loaded.updates, loaded.bytes));
                            let bytes = guard.doc.len_bytes_at_most();
                            self.ws.sizes.lock().set_file(id, bytes);
                        }
                        Err(e) => {
                            guard.gone = true;
                            self.ws.forget(id, &file);
                            return Err(e);
                        }
                    }
                }
                guard.loaded = true;
            }
            // As a newcomer's welcome (`Room::join`): short unless history
            // is to be exported.
            let inline = version.is_none() && guard.doc.newcomer_doc_ready();
            let v = version.clone();
            let max_update_bytes = max_frame_bytes.saturating_sub(256) / 4 * 3;
            let (guard, taken) = run_on(guard, inline, move |p| {
                let vv = p.doc.version();
                super::welcome_doc(&mut p.doc, v.as_deref(), max_update_bytes).map(|d| (d, vv))
            })
            .await
            .map_err(|e| doc_refusal(&e))?;
            let texts = render_opened(id, taken.map_err(|e| doc_refusal(&e))?, max_frame_bytes);
            let mut st = self.lock();
            let Some(i) = st
                .members
                .iter()
                .position(|e| e.member.id == from && e.link.conn == conn)
            else {
                return Ok(());
            };
            st.members[i].open.insert(id);
            // Counted in the queue's bytes as relayed events are: a member
            // that opens a big file again and again and reads nothing is a
            // slow consumer, not a pile of documents in memory.
            let len: usize = texts.iter().map(|t| t.len()).sum();
            let max_queue_bytes = st.max_queue_bytes;
            let link = &st.members[i].link;
            let before = link.control.queued_bytes.fetch_add(len, Ordering::AcqRel);
            let fits = before == 0 || before.saturating_add(len) <= max_queue_bytes;
            let slow = match fits.then(|| link.tx.try_send(Out::Batch(texts))) {
                Some(Ok(())) => false,
                Some(Err(mpsc::error::TrySendError::Closed(_))) => {
                    link.control.dequeued(len);
                    false
                }
                None | Some(Err(mpsc::error::TrySendError::Full(_))) => {
                    link.control.dequeued(len);
                    true
                }
            };
            if slow {
                tracing::warn!(user = from, "slow consumer: outbound queue full, removing");
                st.members[i].link.control.kick(KickReason::SlowConsumer);
                remove(&mut st, i, collab_protocol::LeftReason::Removed);
            }
            drop(st);
            drop(guard);
            return Ok(());
        }
        Err(ProtocolError::from_code(ErrorCode::Internal))
    }

    /// Stops relaying file `id` to member `from`.
    pub(crate) fn close_file(
        &self,
        from: UserId,
        conn: u64,
        id: NodeId,
    ) -> Result<(), ProtocolError> {
        let mut st = self.lock();
        let Some(i) = st
            .members
            .iter()
            .position(|e| e.member.id == from && e.link.conn == conn)
        else {
            return Ok(());
        };
        if !st.members[i].open.remove(&id) {
            return Err(no_such_doc(file_id(id)));
        }
        Ok(())
    }

    /// With storage, drops from memory the files no member has open: each
    /// under its lock (an `open` adds its member under it too), after the
    /// store got what it lacked; a file that is compacting stays until its
    /// compaction is in (which calls this again). Without storage memory
    /// is the files' only copy: they stay while the room lives.
    pub(crate) fn unload_unopened(self: &Arc<Self>) {
        if self.ws.store.is_none() {
            return;
        }
        let open: HashSet<NodeId> = {
            let st = self.lock();
            st.members
                .iter()
                .flat_map(|e| e.open.iter().copied())
                .collect()
        };
        let closed: Vec<(NodeId, FileLock)> = self
            .ws
            .files
            .lock()
            .iter()
            .filter(|(id, _)| !open.contains(id))
            .map(|(id, f)| (*id, Arc::clone(f)))
            .collect();
        if self.lock().members.is_empty() {
            self.close_tree();
        }
        for (id, file) in closed {
            // Here when the file is free and has nothing to export (the
            // usual close); otherwise a task waits for it, and exports on
            // the blocking pool.
            if let Ok(mut part) = file.try_lock()
                && !part.store.as_ref().is_some_and(StoreLink::is_dirty)
            {
                self.unload(id, &file, &mut part);
                continue;
            }
            let Ok(rt) = tokio::runtime::Handle::try_current() else {
                return;
            };
            let room = Arc::clone(self);
            rt.spawn(async move {
                let part = Arc::clone(&file).lock_owned().await;
                let _ = run_on(part, false, move |p| room.unload(id, &file, p)).await;
            });
        }
    }

    /// The room emptied: when the store's inbox refused one of the tree's
    /// updates, it gets the tree's snapshot now (exported on the blocking
    /// pool), as the main document's does (`document::close`).
    fn close_tree(self: &Arc<Self>) {
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let room = Arc::clone(self);
        rt.spawn(async move {
            let tree = Arc::clone(&room.ws.tree).lock_owned().await;
            if !tree.store.as_ref().is_some_and(StoreLink::is_dirty) {
                return;
            }
            let key = DocKey::of(&room.id, DocId::Tree);
            let _ = run_on(tree, false, move |p| {
                let TreePart { tree, store, .. } = p;
                if let Some(link) = store.as_mut() {
                    link.close_with(key, || tree.snapshot());
                }
            })
            .await;
        });
    }

    /// Drops file `id` from memory unless a member opened it meanwhile or
    /// it is compacting; the store gets what it lacked, and its size.
    fn unload(&self, id: NodeId, file: &FileLock, part: &mut FilePart) {
        let opened = self.lock().members.iter().any(|e| e.open.contains(&id));
        if part.gone || opened || part.doc.is_compacting() {
            return;
        }
        part.gone = true;
        let FilePart { doc, store, .. } = part;
        if let Some(link) = store.as_mut() {
            link.close(doc, DocKey::of(&self.id, file_id(id)));
        }
        self.ws.store_size(&self.id, id, doc);
        self.ws.forget(id, file);
    }

    /// A presence in document `doc`, to every other member (also those
    /// that have not opened the file: the members panel and follow use
    /// it). Only in a file the member has open.
    pub(crate) fn presence_in(
        &self,
        from: UserId,
        conn: u64,
        doc: DocId,
        presence: Presence,
    ) -> Result<(), ProtocolError> {
        let Some(id) = node_of(doc) else {
            return Err(no_such_doc(doc));
        };
        let msg = ServerMsg::Presence { id: from, presence };
        let text = Utf8Bytes::from(with_doc_id(msg.to_json(), doc));
        let mut st = self.lock();
        match st.member_on(from, conn) {
            None => return Ok(()),
            Some(e) if !e.open.contains(&id) => return Err(no_such_doc(doc)),
            Some(_) => {}
        }
        broadcast(&mut st, &text, Some(from));
        Ok(())
    }
}

/// Compacts a file as the main document is compacted: the job runs on the
/// blocking pool with no lock held, and its result is swapped in under the
/// file's lock.
fn compact_file(room: Arc<Room>, id: NodeId, file: FileLock, job: CompactionJob) {
    tokio::spawn(async move {
        let done = crate::priority::background(move || job.run()).await;
        let mut part = file.lock().await;
        match done {
            Ok(Ok(done)) => {
                let swapped = part.doc.finish_compaction(done);
                if let Some(link) = part.store.as_mut() {
                    link.store_compacted(DocKey::of(&room.id, file_id(id)), &swapped);
                }
                room.ws.store_size(&room.id, id, &part.doc);
                drop(part);
                // A file closed while it compacted stayed in memory.
                room.unload_unopened();
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "compacting a file failed");
                part.doc.compaction_abandoned();
            }
            Err(_) => part.doc.compaction_abandoned(),
        }
    });
}

fn tree_limits(limits: &WorkspaceLimits) -> TreeLimits {
    TreeLimits {
        max_nodes: limits.max_files,
        max_ops_per_update: limits.max_tree_ops_per_update,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::room::tests::request;
    use collab_doc::SharedDoc;
    use collab_doc::tree::Kind;

    /// A member that opens a file again and again and reads nothing is a
    /// slow consumer once the answers pass the queue's bytes, not a pile
    /// of copies of the document in memory (each `opened` used to count as
    /// one event whatever its size: 256 answers of an 8 MiB file queued).
    #[tokio::test]
    async fn answers_to_open_count_in_the_queues_bytes() {
        let room = Arc::new(Room::new(RoomId::parse("opens").unwrap(), 20_000));
        let limits = crate::Config::default().workspace_limits();
        let (mut req, _alice_rx) = request("alice", 1);
        req.protocol = WORKSPACE_PROTOCOL_VERSION;
        let alice = room.join(req, || 1).await.ok().unwrap();
        let mut tree = Tree::new();
        let ids = tree.create_paths(&[("big.txt", Kind::File)]).unwrap();
        let seed = tree.take_local_update().unwrap();
        let info = UpdateInfo::read(&seed).unwrap();
        assert!(
            room.seed_tree(alice.id, 1, seed, info, limits)
                .await
                .unwrap()
        );
        room.open(alice.id, 1, ids[0], None, 1 << 20).await.unwrap();
        let mut doc = SharedDoc::new();
        doc.splice(0, 0, &"x".repeat(8000)).unwrap();
        let text = doc.take_local_update().unwrap();
        let info = UpdateInfo::read(&text).unwrap();
        assert!(
            room.file_update(alice.id, 1, ids[0], text, info, 1 << 20, limits, 1000)
                .await
                .unwrap()
        );

        let (mut req, _bob_rx) = request("bob", 2);
        req.protocol = WORKSPACE_PROTOCOL_VERSION;
        let bob = room.join(req, || 2).await.ok().unwrap();
        for _ in 0..3 {
            room.open(bob.id, 2, ids[0], None, 1 << 20).await.unwrap();
        }
        let names: Vec<String> = room.members().into_iter().map(|m| m.name).collect();
        assert_eq!(names, ["alice"], "bob was removed as too slow");
    }
}
