//! The rooms' side of a node (docs/scale-out.md): the publisher that
//! writes what this node's rooms accept to their logs, the reader that
//! hands every hosted room what the other nodes wrote, the tick that keeps
//! this node's members alive and sweeps the dead nodes' ones, and the
//! loading of a room this node does not host yet.
//!
//! Three tasks per node, whatever the number of rooms:
//!
//! - **publisher**: one queue ([`Op`]) fed by the rooms, in the order they
//!   push (a room pushes an update under its document lock, so its log is
//!   in its import order). Runs of entries go out as one pipeline on the
//!   node's command connection; a release runs its script in turn. An
//!   update's ack waits for its `XADD`'s answer, nothing else does.
//! - **reader**: `XREAD BLOCK` over every hosted room's log from its
//!   cursor, on a connection of its own. Each room's entries go, in order,
//!   to a task of that room (a bounded queue: a room whose queue is full
//!   is left out of the next read, so one slow room stalls nobody else).
//!   Entries this node wrote are skipped: the room applied them already. A
//!   room added while the reader waits wakes it with `CLIENT UNBLOCK`.
//! - **tick**: every third of the member ttl, per hosted room, refreshes
//!   the entries of this node's members and sweeps expired ones (whose
//!   `left` the reader then relays).
//! - **presence**: a Pub/Sub connection subscribed to the hosted rooms'
//!   presence channels (presence goes out with the publisher's pipeline,
//!   `PUBLISH`, never stored: the next one repairs a lost one).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use collab_doc::RoomDoc;
use collab_protocol::{Member, RoomId, ServerMsg};
use parking_lot::Mutex;
use tokio::sync::{Notify, mpsc, oneshot};
use tokio::task::JoinHandle;

use super::{Batch, Claim, Cluster, ClusterError, ClusterResult, Entry, EntryId, Kind, Outgoing};
use crate::room::{
    DocSettings as Settings, LogKind, Op, Remote, Room, RoomLink, peer_of, reason_of, reason_str,
};

/// Ops waiting for the publisher; past this a room's entry is refused (an
/// update then goes unacked and is sent again).
const QUEUE: usize = 4096;
/// Most entries in one pipeline.
const PIPELINE: usize = 256;
/// Most entries per room in one read.
const READ_COUNT: usize = 256;
/// Longest a read waits for entries.
const READ_BLOCK: Duration = Duration::from_secs(1);
/// Batches waiting for one room's task.
const ROOM_QUEUE: usize = 4;
/// A log page when loading a room.
const PAGE: usize = 1024;

/// A room as loaded from Redis.
pub(crate) struct Loaded {
    pub doc: RoomDoc,
    /// The last log entry the document contains.
    pub cursor: EntryId,
    /// The log past the snapshot: entries and payload bytes.
    pub since: Since,
    /// Its members, on whatever node.
    pub members: Vec<Member>,
    /// The peer ids given out in it, and their owners.
    pub peers: Vec<(u64, String)>,
}

/// How much of a room's log lies past its snapshot.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Since {
    pub entries: usize,
    pub bytes: usize,
}

/// What the reader hands a room's task: the other nodes' entries of one
/// read, and how far the read went (every entry, this node's included).
struct Delivery {
    entries: Vec<Remote>,
    /// The cursor the read started from.
    from: EntryId,
    last: EntryId,
    read: Since,
}

/// A hosted room: where the reader is in its log, and its task's queue.
struct Hosted {
    room: Weak<Room>,
    /// The room instance's id: its own entries are skipped.
    instance: u64,
    cursor: EntryId,
    tx: mpsc::Sender<Delivery>,
}

/// A node's rooms as seen from Redis.
pub(crate) struct Hub {
    pub cluster: Arc<Cluster>,
    node: String,
    ops: mpsc::Sender<Op>,
    settings: Settings,
    /// `--max-users-per-room`, for members claiming their name again.
    max_users: usize,
    /// Members whose name another node held at the last tick.
    contested: Mutex<std::collections::HashSet<(RoomId, collab_protocol::UserId)>>,
    hosted: Mutex<HashMap<RoomId, Hosted>>,
    /// A room was added since the reader last took the cursors.
    dirty: AtomicBool,
    /// Wakes a reader with no rooms to read.
    wake: Notify,
    /// The reader's connection id, for `CLIENT UNBLOCK` (0: none yet).
    reader_id: AtomicI64,
    /// The presence connection's subscriptions, while it is connected.
    sink: Mutex<Option<redis::aio::PubSubSink>>,
    published: AtomicU64,
    received: AtomicU64,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    /// Open (`true`) until the node stops: a join holds it shared from
    /// before its claim until it is a member of the room (or refused), so
    /// closing it waits for the joins under way and admits no more.
    gate: tokio::sync::RwLock<bool>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("node", &self.node)
            .finish_non_exhaustive()
    }
}

impl Hub {
    /// Starts the publisher, the reader and the tick.
    pub fn start(
        cluster: Arc<Cluster>,
        settings: Settings,
        max_users: usize,
        every: Duration,
    ) -> Arc<Hub> {
        let (hub, rx) = Hub::quiet(cluster, settings, max_users);
        let hub = Arc::new(hub);
        let tasks = vec![
            tokio::spawn(publish(Arc::clone(&hub), rx)),
            tokio::spawn(read(Arc::downgrade(&hub))),
            tokio::spawn(tick(Arc::downgrade(&hub), every)),
            tokio::spawn(presence(Arc::downgrade(&hub))),
        ];
        *hub.tasks.lock() = tasks;
        hub
    }

    /// A hub with no task running yet, and the receiving end of its
    /// publisher's queue.
    fn quiet(
        cluster: Arc<Cluster>,
        settings: Settings,
        max_users: usize,
    ) -> (Hub, mpsc::Receiver<Op>) {
        let (ops, rx) = mpsc::channel(QUEUE);
        let hub = Hub {
            node: cluster.node().as_str().to_owned(),
            cluster,
            ops,
            settings,
            max_users,
            contested: Mutex::default(),
            hosted: Mutex::new(HashMap::new()),
            dirty: AtomicBool::new(false),
            wake: Notify::new(),
            reader_id: AtomicI64::new(0),
            sink: Mutex::new(None),
            published: AtomicU64::new(0),
            received: AtomicU64::new(0),
            tasks: Mutex::new(Vec::new()),
            gate: tokio::sync::RwLock::new(true),
        };
        (hub, rx)
    }

    /// Admits a join, or `None` once the node is stopping. The join holds
    /// the guard until the joiner is a member of the room or refused.
    pub async fn admit(&self) -> Option<tokio::sync::RwLockReadGuard<'_, bool>> {
        let open = self.gate.read().await;
        (*open).then_some(open)
    }

    /// Whether the node is stopping (joins are no longer admitted).
    pub fn closing(&self) -> bool {
        self.gate.try_read().map_or(true, |open| !*open)
    }

    /// Admits no more joins, after waiting (at most `within`) for those
    /// under way: each is then a member of its room, whose release the
    /// stop makes sure of, or refused.
    pub async fn close(&self, within: Duration) {
        match tokio::time::timeout(within, self.gate.write()).await {
            Ok(mut open) => *open = false,
            Err(_) => tracing::warn!("joins under way did not finish in time at the node's stop"),
        }
    }

    /// Releases every name this node still holds in the rooms it hosts (at
    /// its stop, after [`Self::drain`]): a member whose connection was
    /// still closing, or whose join was claimed but never answered, does
    /// not hold its name after the node is gone (a client whose welcome was
    /// lost joins again without a session, and would get `name_taken`
    /// from its own entry until it expired).
    pub async fn release_all(&self, within: Duration) {
        let rooms: Vec<RoomId> = self.hosted.lock().keys().cloned().collect();
        let release = async {
            for room in &rooms {
                match self
                    .cluster
                    .release_node_members(
                        room,
                        reason_str(collab_protocol::LeftReason::Disconnected),
                    )
                    .await
                {
                    Ok(0) => {}
                    Ok(n) => {
                        tracing::info!(%room, members = n, "released members still held at the node's stop")
                    }
                    Err(e) => {
                        tracing::warn!(%room, error = %e, "could not release the node's members; they expire within the member ttl");
                    }
                }
            }
        };
        if tokio::time::timeout(within, release).await.is_err() {
            tracing::warn!(
                "releasing the node's members at its stop timed out; they expire within the member ttl"
            );
        }
    }

    /// Waits (at most `within`) until the publisher has written everything
    /// queued: at shutdown, the departures of the node's members.
    pub async fn drain(&self, within: Duration) {
        let (done, drained) = oneshot::channel();
        let _ = tokio::time::timeout(within, async {
            if self.ops.send(Op::Barrier(done)).await.is_ok() {
                let _ = drained.await;
            }
        })
        .await;
    }

    /// Stops its tasks (at shutdown).
    pub fn stop(&self) {
        for t in self.tasks.lock().drain(..) {
            t.abort();
        }
    }

    /// A room's way to the publisher.
    pub fn link(&self, room: &RoomId) -> RoomLink {
        RoomLink {
            ops: self.ops.clone(),
            room: room.clone(),
            instance: rand::random::<u64>().max(1),
            progress: Arc::default(),
        }
    }

    /// The `/metrics` lines of the rooms' side.
    pub fn render(&self, out: &mut String) {
        use std::fmt::Write as _;
        let rooms = self.hosted.lock().len();
        for (name, kind, help, value) in [
            (
                "collab_cluster_rooms",
                "gauge",
                "Rooms this node reads from Redis.",
                rooms as u64,
            ),
            (
                "collab_cluster_published_total",
                "counter",
                "Log entries this node wrote to Redis.",
                self.published.load(Ordering::Relaxed),
            ),
            (
                "collab_cluster_received_total",
                "counter",
                "Log entries of other nodes this node read from Redis.",
                self.received.load(Ordering::Relaxed),
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            let _ = writeln!(out, "{name} {value}");
        }
    }

    /// Loads a room this node does not host: the snapshot, the log after
    /// it, and its members. Everything this node published before is in
    /// it (the publisher's queue is drained first: a room that closed
    /// here a moment ago may still have entries in it, which the reader
    /// would skip as this node's own).
    pub async fn load(&self, room: &RoomId) -> ClusterResult<Loaded> {
        let (done, drained) = oneshot::channel();
        if self.ops.send(Op::Barrier(done)).await.is_ok() {
            let _ = drained.await;
        }
        // Entries past a snapshot are trimmed only once a newer snapshot
        // is stored (with a grace behind that one): when the snapshot is
        // the same after the log was read, nothing read was missing. A
        // newer one means starting again, from it (bounded: each round
        // needs another node's snapshot).
        let (snapshot, cursor, since, updates) = 'load: {
            for _ in 0..8 {
                let snapshot = self.cluster.snapshot(room).await?;
                let (snapshot, at) = match snapshot {
                    Some((doc, at)) => (Some(doc), at),
                    None => (None, EntryId::ZERO),
                };
                let (mut cursor, mut since, mut updates) = (at, Since::default(), Vec::new());
                loop {
                    let page = self.cluster.range(room, cursor, PAGE).await?;
                    let n = page.entries.len();
                    for (_, e) in page.entries {
                        since.entries += 1;
                        since.bytes += e.data.len();
                        if e.kind == Kind::Update {
                            updates.push(e.data);
                        }
                    }
                    cursor = page.last;
                    if n < PAGE {
                        break;
                    }
                }
                let now = self.cluster.snapshot_at(room).await?;
                if now.unwrap_or(EntryId::ZERO) == at {
                    break 'load (snapshot, cursor, since, updates);
                }
            }
            return Err(ClusterError::Reply(
                "the room's snapshot kept changing while it loaded".into(),
            ));
        };
        let peers = self.cluster.peers(room).await?;
        let members = self
            .cluster
            .members(room)
            .await?
            .into_iter()
            .filter_map(|(name, record)| {
                let m = member_of(&record);
                if m.is_none() {
                    tracing::warn!(%room, name, "skipping a member record that does not decode");
                }
                m
            })
            .collect();
        let id = room.clone();
        // At nice 10, below the workers but never starved: a joiner waits
        // for it (`priority.rs`).
        let doc = crate::priority::heavy(move || RoomDoc::load(snapshot.as_deref(), &updates))
            .await
            .map_err(|crate::priority::Lost| {
                ClusterError::Reply("loading the room failed: it panicked".into())
            })?
            .map_err(|e| ClusterError::Reply(format!("the room's snapshot does not load: {e}")))?;
        let (doc, failed) = doc;
        for (i, e) in failed {
            tracing::warn!(room = %id, update = i, error = %e, "an update of the room's log does not merge; skipped");
        }
        Ok(Loaded {
            doc,
            cursor,
            since,
            members,
            peers,
        })
    }

    /// Reads the room's log from `cursor` on, until the room dies.
    pub fn host(self: &Arc<Self>, room: &Arc<Room>, cursor: EntryId, since: Since) {
        {
            let mut hosted = self.hosted.lock();
            if let Some(h) = hosted.get(room.id())
                && h.room.upgrade().is_some_and(|r| !r.is_dead())
            {
                return;
            }
            let (tx, rx) = mpsc::channel(ROOM_QUEUE);
            tokio::spawn(apply(
                Arc::downgrade(room),
                rx,
                Arc::clone(&self.cluster),
                self.settings,
                since,
            ));
            hosted.insert(
                room.id().clone(),
                Hosted {
                    room: Arc::downgrade(room),
                    instance: room.instance(),
                    cursor,
                    tx,
                },
            );
        }
        self.dirty.store(true, Ordering::SeqCst);
        self.wake.notify_one();
        // (A presence connection that subscribes after this, on connecting,
        // takes every hosted room: it sets `sink` before it reads them.)
        if let Some(mut sink) = self.sink.lock().clone() {
            let channel = Cluster::presence_channel(room.id());
            tokio::spawn(async move {
                let _ = sink.subscribe(channel).await;
            });
        }
        // A reader blocked on the other rooms reads this one only once its
        // wait ends: end it now. It clears `dirty` when it takes the
        // cursors, after which the room is in its read.
        let hub = Arc::clone(self);
        tokio::spawn(async move {
            for _ in 0..400 {
                if !hub.dirty.load(Ordering::SeqCst) {
                    return;
                }
                let id = hub.reader_id.load(Ordering::SeqCst);
                if id > 0 {
                    let _ = hub.cluster.unblock(id).await;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
    }

    /// Asks the nodes for `name` in `room` (the join script). `record` is
    /// the member as this node would add it.
    pub async fn claim(
        &self,
        room: &RoomId,
        member: &Member,
        presented: Option<&str>,
        session: &str,
        max_members: usize,
    ) -> ClusterResult<ClaimOutcome> {
        let record = ServerMsg::Joined {
            member: member.clone(),
        }
        .to_json();
        let claim = self
            .cluster
            .claim_member(
                room,
                &member.name,
                presented,
                session,
                record.as_bytes(),
                member.id,
                max_members,
            )
            .await?;
        Ok(match claim {
            Claim::Joined(r) => ClaimOutcome::Ok(stored(&r)?, false),
            Claim::Resumed(r) => ClaimOutcome::Ok(stored(&r)?, true),
            Claim::Taken => ClaimOutcome::Taken,
            Claim::BadSession => ClaimOutcome::BadSession,
            Claim::Full => ClaimOutcome::Full,
        })
    }

    /// A member of this node whose entry Redis no longer has as this
    /// node's (swept while Redis or this node's heartbeat was away, or lost
    /// by a Redis that came back empty) claims its name again with its own
    /// session: the other nodes, which saw it leave, see it join again.
    ///
    /// It claims as a new member would (presenting no session), so it never
    /// takes back a session that resumed on another node: that node's
    /// `member` entry is on its way, and ends the connection here. A name
    /// still held elsewhere at the next tick is someone else's: the
    /// member's connection ends (its client joins again).
    async fn reclaim(&self, room: &Arc<Room>, name: &str) {
        let Some((member, session)) = room.local_member(name) else {
            return;
        };
        let key = (room.id().clone(), member.id);
        match self
            .claim(room.id(), &member, None, &session, self.max_users)
            .await
        {
            Ok(ClaimOutcome::Ok(..)) => {
                self.contested.lock().remove(&key);
                tracing::info!(room = %room.id(), user = member.id, "a member's entry was lost in Redis; claimed again");
            }
            Ok(ClaimOutcome::Taken) if self.contested.lock().insert(key.clone()) => {}
            Ok(_) => {
                self.contested.lock().remove(&key);
                tracing::warn!(room = %room.id(), user = member.id, "a member's name is held on another node; ending its connection here");
                room.drop_member(member.id);
            }
            Err(e) => {
                tracing::warn!(room = %room.id(), error = %e, "could not claim a lost member's name again");
            }
        }
    }

    /// Writes a room Redis lost (it came back empty, without persistence)
    /// back from this node: its peer bindings, a snapshot as of this node's
    /// cursor, and its whole history as an update in the log, which every
    /// node hosting the room merges (each node that noticed writes its own:
    /// together they hold what any of them had).
    async fn republish(&self, room: &Arc<Room>) {
        let Some(cursor) = self
            .hosted
            .lock()
            .get(room.id())
            .filter(|h| h.instance == room.instance())
            .map(|h| h.cursor)
        else {
            return;
        };
        let exported = match room.export_for_redis().await {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(room = %room.id(), error = %e, "could not export the room for a Redis that lost it");
                return;
            }
        };
        let result = async {
            self.cluster
                .restore_peers(room.id(), &exported.peers)
                .await?;
            self.cluster
                .put_snapshot(room.id(), &exported.snapshot, cursor)
                .await
        }
        .await;
        if let Some(whole) = exported.whole {
            room.publish_update(whole);
        }
        match result {
            Ok(_) => {
                tracing::warn!(room = %room.id(), "Redis had lost the room (it came back empty?); this node wrote it back");
            }
            Err(e) => {
                tracing::warn!(room = %room.id(), error = %e, "could not write the room back to Redis");
            }
        }
    }

    /// The rooms to read now, their cursors and the room instances they
    /// are the cursors of: live rooms whose queue has room for a batch.
    /// Dead rooms are dropped here.
    fn cursors(&self) -> Vec<(RoomId, EntryId, u64)> {
        let mut hosted = self.hosted.lock();
        let mut gone = Vec::new();
        hosted.retain(|id, h| {
            let live = h.room.upgrade().is_some_and(|r| !r.is_dead());
            if !live {
                gone.push(Cluster::presence_channel(id));
            }
            live
        });
        if !gone.is_empty()
            && let Some(mut sink) = self.sink.lock().clone()
        {
            tokio::spawn(async move {
                let _ = sink.unsubscribe(gone).await;
            });
        }
        hosted
            .iter()
            .filter(|(_, h)| h.tx.capacity() > 0)
            .map(|(id, h)| (id.clone(), h.cursor, h.instance))
            .collect()
    }

    /// Hands a read's entries to their room, moving its cursor, if the
    /// read was for the room instance hosted now (`instance`).
    ///
    /// A read blocks up to [`READ_BLOCK`]: meanwhile the room it read for
    /// may have closed and been opened again as a new instance, loaded
    /// from Redis with a cursor of its own. The old instance's read starts
    /// at an older or a newer cursor than the new one's: its entries
    /// would be applied twice, or the new instance's cursor moved past
    /// entries it never got (a member on this node then lacked other
    /// nodes' edits, found by the randomized convergence test over three
    /// nodes). Such a read is dropped; the next read starts from the new
    /// instance's cursor.
    fn dispatch(&self, batch: Batch, instance: u64) {
        let mut hosted = self.hosted.lock();
        let Some(h) = hosted.get_mut(&batch.room) else {
            return;
        };
        if h.instance != instance {
            tracing::debug!(room = %batch.room, read_for = instance, hosted = h.instance, "dropping a read of the room's log made for an instance since closed");
            return;
        }
        let from = std::mem::replace(&mut h.cursor, batch.last);
        let read = Since {
            entries: batch.entries.len(),
            bytes: batch.entries.iter().map(|(_, e)| e.data.len()).sum(),
        };
        let entries: Vec<Remote> = batch
            .entries
            .into_iter()
            // This instance's own entries, and the `joined` of this node's
            // members (the join adds them here itself: read before it
            // did, it would be announced twice).
            .filter(|(_, e)| {
                let own = e.instance != 0 && e.instance == h.instance;
                let joined_here = e.kind == Kind::Joined && e.node == self.node;
                !own && !joined_here
            })
            .filter_map(|(id, e)| {
                let r = remote(&e);
                if r.is_none() {
                    tracing::warn!(room = %batch.room, entry = %id, "skipping a log entry whose payload does not decode");
                }
                r
            })
            .collect();
        if read.entries == 0 {
            return;
        }
        self.received
            .fetch_add(entries.len() as u64, Ordering::Relaxed);
        // Only the reader sends, and it read only rooms with room in
        // their queue. (This node's own entries go too, without their
        // payload: they count towards the room's next snapshot.)
        let delivery = Delivery {
            entries,
            from,
            last: batch.last,
            read,
        };
        match h.tx.try_send(delivery) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::warn!(room = %batch.room, "a room's queue of log entries was full; entries skipped");
            }
            // The room is gone (its task ends with it): nothing to apply
            // to. (Counted as "full" before: hundreds of false warnings in
            // a run of the suite over three nodes.)
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }
}

/// How the join script answered.
pub(crate) enum ClaimOutcome {
    /// In: the member as stored, and whether it resumed.
    Ok(Member, bool),
    Taken,
    BadSession,
    Full,
}

/// The member a `joined` record holds.
fn member_of(record: &[u8]) -> Option<Member> {
    let text = std::str::from_utf8(record).ok()?;
    match ServerMsg::from_json(text).ok()? {
        ServerMsg::Joined { member } | ServerMsg::Member { member } => Some(member),
        _ => None,
    }
}

fn stored(record: &[u8]) -> ClusterResult<Member> {
    member_of(record)
        .ok_or_else(|| ClusterError::Reply("a member record that does not decode".into()))
}

/// An entry as the room applies it; `None` when its payload does not
/// decode.
fn remote(e: &Entry) -> Option<Remote> {
    let json = || std::str::from_utf8(&e.data).ok();
    Some(match e.kind {
        Kind::Update => Remote::Update {
            from: e.from,
            data: e.data.clone(),
        },
        Kind::Joined => Remote::Joined(member_of(&e.data)?),
        Kind::Member => Remote::Member(member_of(&e.data)?),
        Kind::Left => Remote::Left {
            id: e.from,
            reason: reason_of(&e.data),
        },
        Kind::Peer => {
            let (peer, session) = peer_of(&e.data)?;
            Remote::Peer { peer, session }
        }
        Kind::Chat => {
            let text = json()?;
            match ServerMsg::from_json(text).ok()? {
                ServerMsg::Chat { .. } => Remote::Chat(text.to_owned()),
                _ => return None,
            }
        }
        Kind::Direct => {
            let text = json()?;
            match ServerMsg::from_json(text).ok()? {
                ServerMsg::Direct { to, .. } => Remote::Direct {
                    to,
                    json: text.to_owned(),
                },
                _ => return None,
            }
        }
    })
}

/// What the publisher sends for a room.
enum Item {
    Entry(Entry),
    /// `NODE\nJSON`: receivers skip their own node's.
    Presence(Vec<u8>),
}

type Run = Vec<(RoomId, Item, Option<oneshot::Sender<bool>>)>;

/// The publisher: ops in order; consecutive entries as one pipeline.
async fn publish(hub: Arc<Hub>, mut rx: mpsc::Receiver<Op>) {
    let mut ops = Vec::with_capacity(PIPELINE);
    let mut run: Run = Vec::new();
    while rx.recv_many(&mut ops, PIPELINE).await > 0 {
        for op in ops.drain(..) {
            match op {
                Op::Publish {
                    room,
                    instance,
                    kind,
                    from,
                    data,
                    done,
                } => {
                    let kind = match kind {
                        LogKind::Update => Kind::Update,
                        LogKind::Member => Kind::Member,
                        LogKind::Chat => Kind::Chat,
                        LogKind::Direct => Kind::Direct,
                        LogKind::Peer => Kind::Peer,
                        LogKind::Presence => {
                            let mut payload = Vec::with_capacity(hub.node.len() + 1 + data.len());
                            payload.extend_from_slice(hub.node.as_bytes());
                            payload.push(b'\n');
                            payload.extend_from_slice(&data);
                            run.push((room, Item::Presence(payload), done));
                            continue;
                        }
                    };
                    let entry = Entry {
                        kind,
                        node: hub.node.clone(),
                        from,
                        data,
                        instance,
                    };
                    run.push((room, Item::Entry(entry), done));
                }
                Op::Release { room, name, reason } => {
                    flush(&hub, &mut run).await;
                    if let Err(e) = hub
                        .cluster
                        .release_member(&room, &name, reason_str(reason))
                        .await
                    {
                        tracing::warn!(%room, name, error = %e, "could not release a member; its entry expires within the member ttl");
                    }
                }
                Op::Barrier(done) => {
                    flush(&hub, &mut run).await;
                    let _ = done.send(());
                }
                Op::Tip { room, reply } => {
                    flush(&hub, &mut run).await;
                    let tip = hub.cluster.last_entry(&room).await;
                    let _ = reply.send(match tip {
                        Ok(Some(id)) => Some((id.ms, id.seq)),
                        Ok(None) => Some((0, 0)),
                        Err(_) => None,
                    });
                }
            }
        }
        flush(&hub, &mut run).await;
    }
}

/// Writes a run of entries in one pipeline and answers each.
async fn flush(hub: &Hub, run: &mut Run) {
    if run.is_empty() {
        return;
    }
    let entries: Vec<(&RoomId, Outgoing<'_>)> = run
        .iter()
        .map(|(r, item, _)| {
            let out = match item {
                Item::Entry(e) => Outgoing::Entry(e),
                Item::Presence(p) => Outgoing::Presence(p),
            };
            (r, out)
        })
        .collect();
    let result = hub.cluster.publish_many(&entries).await;
    drop(entries);
    match result {
        Ok(ids) => {
            hub.published.fetch_add(
                ids.iter().filter(|id| id.is_some()).count() as u64,
                Ordering::Relaxed,
            );
            for ((room, item, done), id) in run.drain(..).zip(ids) {
                if id.is_none() && matches!(item, Item::Entry(_)) {
                    tracing::warn!(%room, "Redis refused a log entry");
                }
                if let Some(done) = done {
                    let _ = done.send(id.is_some());
                }
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, entries = run.len(), "could not write to the rooms' logs");
            for (_, _, done) in run.drain(..) {
                if let Some(done) = done {
                    let _ = done.send(false);
                }
            }
        }
    }
}

/// The reader: one blocking read over every hosted room at a time.
async fn read(hub: Weak<Hub>) {
    let mut reader = None;
    let mut backoff = Duration::from_millis(50);
    loop {
        let Some(h) = hub.upgrade() else { return };
        let r = match reader.as_mut() {
            Some(r) => r,
            None => match h.cluster.reader().await {
                Ok(r) => {
                    h.reader_id.store(r.id(), Ordering::SeqCst);
                    reader.insert(r)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "the log reader cannot connect to Redis; retrying");
                    drop(h);
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                    continue;
                }
            },
        };
        h.dirty.store(false, Ordering::SeqCst);
        let cursors = h.cursors();
        if cursors.is_empty() {
            // Nothing to read: wait for a room (or a room's queue to drain).
            let _ = tokio::time::timeout(READ_BLOCK, h.wake.notified()).await;
            continue;
        }
        let (read_from, instances): (Vec<_>, Vec<_>) = cursors
            .into_iter()
            .map(|(room, cursor, instance)| ((room, cursor), instance))
            .unzip();
        // Which instance each room's cursor was taken for (no copy of the
        // room ids: this runs for every read).
        let instances: HashMap<&RoomId, u64> = read_from
            .iter()
            .map(|(room, _)| room)
            .zip(instances)
            .collect();
        match r.read(&read_from, READ_BLOCK, READ_COUNT).await {
            Ok(batches) => {
                backoff = Duration::from_millis(50);
                for b in batches {
                    if let Some(&instance) = instances.get(&b.room) {
                        h.dispatch(b, instance);
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "reading the rooms' logs failed; reconnecting");
                reader = None;
                h.reader_id.store(0, Ordering::SeqCst);
                drop(h);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        }
    }
}

/// One room's task: applies its deliveries in order and, when the log
/// past the room's snapshot has grown past the bound, snapshots the room.
async fn apply(
    room: Weak<Room>,
    mut rx: mpsc::Receiver<Delivery>,
    cluster: Arc<Cluster>,
    settings: Settings,
    mut since: Since,
) {
    // The oldest cursor whose check for trimmed entries Redis did not
    // answer: checked again with the next delivery.
    let mut unchecked: Option<EntryId> = None;
    // Updates that build on changes this node lacks, in log order, kept
    // until what they build on is merged (see `import_lacking`).
    let mut lacking: Vec<Remote> = Vec::new();
    while let Some(d) = rx.recv().await {
        let Some(room) = room.upgrade() else { return };
        // Read from a cursor older than the trim behind the room's
        // snapshot: entries it never read may be gone. The snapshot has
        // them (docs/scale-out.md, "Snapshots and trimming").
        let from = unchecked.take().map_or(d.from, |u| u.min(d.from));
        if may_be_trimmed(&cluster, from) {
            match retried(|| fill_from_snapshot(&room, &cluster, from, settings)).await {
                Ok(true) => {
                    tracing::info!(room = %room.id(), %from, "this node's read of the room's log fell behind its trimming; merged the room's snapshot");
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(room = %room.id(), error = %e, "could not check the room's log for trimmed entries; checking with the next read");
                    unchecked = Some(from);
                }
            }
        }
        let mut entries = d.entries;
        // A `member` entry says its session moved to the writer's node; by
        // the time it is read it may have moved back here (a client that
        // reconnects twice in a row): Redis says who holds it now, and a
        // stale one must not end the member's new connection here.
        for i in (0..entries.len()).rev() {
            if let Remote::Member(m) = &entries[i]
                && let Ok(Some(node)) = cluster.holder(room.id(), &m.name).await
                && node == cluster.node().as_str()
            {
                entries.remove(i);
            }
        }
        let mut missed = room.apply_remote(entries, settings).await;
        if !lacking.is_empty() || !missed.is_empty() {
            lacking.append(&mut missed);
            lacking = import_lacking(&room, &cluster, lacking, settings).await;
        }
        room.applied_to(d.last.ms, d.last.seq);
        since.entries += d.read.entries;
        since.bytes += d.read.bytes;
        let config = cluster.config();
        // A snapshot says the document holds every entry up to `d.last`,
        // and the log is trimmed behind it: while updates wait for what
        // they build on, the document does not, and the trim would lose
        // them for every node. The snapshot waits until they are in.
        let due =
            since.entries >= config.snapshot_every || since.bytes >= config.snapshot_every_bytes;
        if due && lacking.is_empty() {
            // Whoever takes the snapshot, this node counts afresh: another
            // node holding the lease is snapshotting it now.
            since = Since::default();
            if let Err(e) = snapshot(&room, &cluster, d.last).await {
                tracing::warn!(room = %room.id(), error = %e, "could not snapshot the room into Redis");
            }
        }
    }
}

/// Most updates kept waiting for what they build on (see
/// [`import_lacking`]); past it the oldest are dropped, with a warning.
const MAX_LACKING: usize = 1024;

/// Imports again, in log order, the updates that built on changes this
/// node lacked: as they are (what they lacked may have arrived since),
/// then after merging the room's snapshot (their dependencies were trimmed
/// from the log before this node read them, and a check for that failed
/// or raced with the trim). Those still lacking something are returned,
/// to try again with the next read. Without this they were dropped, and
/// this node's members never had them (a test of a reader behind the trim
/// failed one run in two).
async fn import_lacking(
    room: &Arc<Room>,
    cluster: &Cluster,
    lacking: Vec<Remote>,
    settings: Settings,
) -> Vec<Remote> {
    let lacking = room.apply_remote(lacking, settings).await;
    if lacking.is_empty() {
        return lacking;
    }
    match retried(|| merge_snapshot(room, cluster, settings)).await {
        Ok(_) => {}
        Err(e) => {
            tracing::warn!(room = %room.id(), error = %e, "could not merge the room's snapshot for updates that lack changes; trying again with the next read");
        }
    }
    let mut lacking = room.apply_remote(lacking, settings).await;
    if !lacking.is_empty() {
        tracing::warn!(room = %room.id(), kept = lacking.len(), "updates of other nodes lack changes this node has not got even from the room's snapshot; kept until they arrive");
    }
    if lacking.len() > MAX_LACKING {
        let dropped = lacking.len() - MAX_LACKING;
        lacking.drain(..dropped);
        tracing::warn!(room = %room.id(), dropped, "dropped updates of other nodes that lacked changes for too long");
    }
    lacking
}

/// `op`, tried again twice (50 then 100 ms later) when Redis failed: the
/// node's command connection reconnects by itself after an error.
async fn retried<T, F: std::future::Future<Output = ClusterResult<T>>>(
    mut op: impl FnMut() -> F,
) -> ClusterResult<T> {
    let mut wait = Duration::from_millis(50);
    for _ in 0..2 {
        match op().await {
            Ok(t) => return Ok(t),
            Err(e) => tracing::debug!(error = %e, "a Redis command failed; trying again"),
        }
        tokio::time::sleep(wait).await;
        wait *= 2;
    }
    op().await
}

/// How far the clocks of Redis and this node may disagree when judging
/// whether a cursor is old enough to have been trimmed past.
const CLOCK_SKEW_MS: u64 = 5_000;

/// Whether entries after `from` may have been trimmed: the log is trimmed
/// to its snapshot's id less the grace, and the snapshot's id is no later
/// than now, so a cursor younger than the grace (by this node's clock, with
/// a margin for Redis's) needs no look.
fn may_be_trimmed(cluster: &Cluster, from: EntryId) -> bool {
    let grace = u64::try_from(cluster.config().trim_grace.as_millis()).unwrap_or(u64::MAX);
    crate::clock::now_ms().saturating_add(CLOCK_SKEW_MS) > from.ms.saturating_add(grace)
}

/// When the room's log was trimmed past `from` (entries between `from` and
/// the trim point are gone, possibly unread here), merges the room's
/// snapshot, which holds every entry up to its id, into the room: what it
/// brings is imported and relayed to this node's members like another
/// node's update. Returns whether it looked at the snapshot.
async fn fill_from_snapshot(
    room: &Arc<Room>,
    cluster: &Cluster,
    from: EntryId,
    settings: Settings,
) -> ClusterResult<bool> {
    let grace = u64::try_from(cluster.config().trim_grace.as_millis()).unwrap_or(u64::MAX);
    let trimmed_to = |at: EntryId| at.minus_ms(grace);
    match cluster.snapshot_at(room.id()).await? {
        Some(at) if trimmed_to(at) > from => {}
        _ => return Ok(false),
    }
    merge_snapshot(room, cluster, settings).await
}

/// Merges the room's snapshot into the room: what it brings is imported
/// and relayed to this node's members like another node's update.
/// Returns whether there was a snapshot.
async fn merge_snapshot(
    room: &Arc<Room>,
    cluster: &Cluster,
    settings: Settings,
) -> ClusterResult<bool> {
    let Some((snapshot, _)) = cluster.snapshot(room.id()).await? else {
        return Ok(false);
    };
    let have = room.doc_version().await;
    let missing = tokio::task::spawn_blocking(move || {
        // Normal priority: the room waits on this catch-up, and a
        // starved idle-class thread would hold it up (server/src/priority.rs).
        let (doc, _) = RoomDoc::load(Some(&snapshot), &[])?;
        let had = collab_doc::VersionVector::decode(&have)
            .map_err(|e| collab_doc::DocError::BadVersion(e.to_string()))?;
        if had.includes_vv(&doc.version_vector()) {
            return Ok(None);
        }
        doc.updates_since(&have).map(Some)
    })
    .await
    .map_err(|e| ClusterError::Reply(format!("loading the room's snapshot failed: {e}")))?
    .map_err(|e| ClusterError::Reply(format!("the room's snapshot does not load: {e}")))?;
    if let Some(data) = missing {
        // Made from this document's version: it lacks nothing here.
        let _ = room
            .apply_remote(vec![Remote::Update { from: 0, data }], settings)
            .await;
    }
    Ok(true)
}

/// How long a node may take to snapshot a room before another may.
const LEASE: Duration = Duration::from_secs(30);

/// Snapshots the room into Redis and trims its log behind the snapshot
/// (docs/scale-out.md, "Snapshots and trimming"). `at` is the last entry
/// the room's document contains: every entry up to it was applied (this
/// node's own before they were written).
async fn snapshot(room: &Arc<Room>, cluster: &Cluster, at: EntryId) -> ClusterResult<()> {
    if !cluster.take_lease(room.id(), LEASE).await? {
        return Ok(());
    }
    let result = async {
        let doc = room
            .export_snapshot()
            .await
            .map_err(|e| ClusterError::Reply(format!("exporting the room failed: {e}")))?;
        if cluster.put_snapshot(room.id(), &doc, at).await? {
            let grace = u64::try_from(cluster.config().trim_grace.as_millis()).unwrap_or(u64::MAX);
            let trimmed = cluster.trim(room.id(), at.minus_ms(grace)).await?;
            tracing::debug!(room = %room.id(), %at, bytes = doc.len(), trimmed, "snapshotted the room into Redis");
        }
        Ok(())
    }
    .await;
    // The next snapshot may be anyone's (a lease this node no longer holds,
    // expired and taken, is left alone).
    let released = cluster.release_lease(room.id()).await;
    result.and(released)
}

/// Relays the other nodes' presence to the hosted rooms, reconnecting
/// (and subscribing to every hosted room again) when the connection ends.
async fn presence(hub: Weak<Hub>) {
    use futures::StreamExt as _;
    let mut backoff = Duration::from_millis(50);
    loop {
        let Some(h) = hub.upgrade() else { return };
        let (mut sink, stream) = match h.cluster.presence().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "the presence connection cannot reach Redis; retrying");
                drop(h);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
                continue;
            }
        };
        *h.sink.lock() = Some(sink.clone());
        let channels: Vec<String> = h
            .hosted
            .lock()
            .keys()
            .map(Cluster::presence_channel)
            .collect();
        let node = h.node.clone();
        drop(h);
        if !channels.is_empty() && sink.subscribe(channels).await.is_err() {
            continue;
        }
        backoff = Duration::from_millis(50);
        let mut stream = std::pin::pin!(stream);
        while let Some((room, payload)) = stream.next().await {
            let Some(h) = hub.upgrade() else { return };
            let Some(json) = presence_json(&node, &payload) else {
                continue;
            };
            let room = h.hosted.lock().get(&room).and_then(|r| r.room.upgrade());
            if let Some(room) = room {
                room.remote_presence(json);
            }
        }
        // Redis went away: connect again.
        if let Some(h) = hub.upgrade() {
            *h.sink.lock() = None;
        }
        tokio::time::sleep(backoff).await;
    }
}

/// The `presence` event in another node's `NODE\nJSON` message; `None`
/// for this node's own and for one that does not decode.
fn presence_json(node: &str, payload: &[u8]) -> Option<String> {
    let at = payload.iter().position(|b| *b == b'\n')?;
    if &payload[..at] == node.as_bytes() {
        return None;
    }
    let json = std::str::from_utf8(&payload[at + 1..]).ok()?;
    match ServerMsg::from_json(json).ok()? {
        ServerMsg::Presence { .. } => Some(json.to_owned()),
        _ => None,
    }
}

/// Keeps this node's members alive and sweeps the expired ones.
async fn tick(hub: Weak<Hub>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(h) = hub.upgrade() else { return };
        let rooms: Vec<Arc<Room>> = h
            .hosted
            .lock()
            .values()
            .filter_map(|h| h.room.upgrade())
            .collect();
        for room in rooms {
            let names = room.local_names();
            // Redis holds the room still (with a room ttl, its keys live on
            // while it has members here); one that came back empty gets it
            // back from this node, before its members claim their names
            // again (their `joined` would make the log exist again).
            match h.cluster.touch_room(room.id()).await {
                Ok(true) => {}
                Ok(false) if !names.is_empty() => h.republish(&room).await,
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(room = %room.id(), error = %e, "could not refresh the room's keys");
                    continue;
                }
            }
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            let lost = match h.cluster.refresh_members(room.id(), &names).await {
                Ok(lost) => lost,
                Err(e) => {
                    tracing::warn!(room = %room.id(), error = %e, "could not refresh the room's members");
                    continue;
                }
            };
            for name in lost {
                h.reclaim(&room, &name).await;
            }
            if let Err(e) = h.cluster.sweep_members(room.id()).await {
                tracing::warn!(room = %room.id(), error = %e, "could not sweep the room's members");
            }
        }
    }
}

#[cfg(test)]
mod tests;
