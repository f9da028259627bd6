//! Room id -> room. The map's lock is held only to look up, insert or
//! remove an `Arc<Room>`, never while a room's own lock is held and never
//! across `.await`, so a busy room cannot stall joins to other rooms.
//!
//! A room is dropped as soon as its last member leaves (it is marked dead
//! under its own lock first, so a joiner that raced with the removal sees
//! "dead" and looks the room up again instead of joining a ghost).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::{Mutex, MutexGuard};

#[cfg(feature = "cluster")]
use collab_protocol::Member;
use collab_protocol::{ErrorCode, LeftReason, ProtocolError, RoomId, UserId};

use crate::room::{JoinError, JoinRequest, Joined, Room};
use crate::store::{Loaded, LoadedTree, StoreHandle};

/// All live rooms.
#[derive(Debug)]
pub struct Registry {
    rooms: Mutex<HashMap<RoomId, Arc<Room>>>,
    max_rooms: usize,
    max_queue_bytes: usize,
    next_user: AtomicU64,
    /// With storage: rooms are loaded from it on first join, never
    /// created empty over stored history.
    store: Option<StoreHandle>,
    /// With `--redis`: rooms are loaded from Redis and shared with the
    /// other nodes, and the nodes agree on every member.
    #[cfg(feature = "cluster")]
    hub: Option<Arc<crate::cluster::Hub>>,
}

impl Registry {
    pub fn new(max_rooms: usize, max_queue_bytes: usize) -> Self {
        Self {
            rooms: Mutex::new(HashMap::new()),
            max_rooms,
            max_queue_bytes,
            next_user: AtomicU64::new(1),
            store: None,
            #[cfg(feature = "cluster")]
            hub: None,
        }
    }

    /// Shares rooms with the other nodes from now on.
    #[cfg(feature = "cluster")]
    pub(crate) fn set_hub(&mut self, hub: Arc<crate::cluster::Hub>) {
        self.hub = Some(hub);
    }

    /// Whether the server is stopping and admits no joins (a node sharing
    /// rooms, once its stop began).
    pub(crate) fn closing(&self) -> bool {
        #[cfg(feature = "cluster")]
        if let Some(hub) = &self.hub {
            return hub.closing();
        }
        false
    }

    /// Keeps rooms in `store` from now on.
    pub(crate) fn set_store(&mut self, store: StoreHandle) {
        self.store = Some(store);
    }

    /// The room, if it is in memory.
    pub(crate) fn lookup(&self, id: &RoomId) -> Option<Arc<Room>> {
        self.lock().get(id).cloned()
    }

    /// Puts a room loaded from the store in the map, unless another joiner
    /// put it there first (then that one is returned).
    fn insert_loaded(
        &self,
        id: &RoomId,
        loaded: Loaded,
        tree: Option<LoadedTree>,
        sizes: &[(String, u64)],
        store: &StoreHandle,
    ) -> Result<Arc<Room>, ProtocolError> {
        self.get_or_insert_with(id, || {
            let mut room = Room::restored(
                id.clone(),
                self.max_queue_bytes,
                loaded,
                tree,
                store.clone(),
            );
            room.set_sizes(sizes);
            room
        })
    }

    /// Joins the room `id`, creating it, or with a store loading it first
    /// when it is not in memory (through the store thread, so it holds
    /// every update queued before). The one way into a room.
    pub(crate) async fn enter(
        &self,
        id: &RoomId,
        req: JoinRequest,
    ) -> Result<(Arc<Room>, Joined), ProtocolError> {
        #[cfg(feature = "cluster")]
        if let Some(hub) = &self.hub {
            return self.enter_shared(hub, id, req).await;
        }
        // A round repeats only when the room emptied between the lookup
        // and the join: bounded, as each retry needs another departure.
        for _ in 0..64 {
            let room = match (self.lookup(id), &self.store) {
                (Some(r), _) => r,
                (None, Some(store)) => {
                    let loaded = store.load(id).await?;
                    // A workspace's tree loads with the room; its files
                    // when opened.
                    let tree = store.load_tree(id).await?;
                    let sizes = match tree {
                        Some(_) => store.sizes(id).await?,
                        None => Vec::new(),
                    };
                    self.insert_loaded(id, loaded, tree, &sizes, store)?
                }
                (None, None) => self.get_or_create(id)?,
            };
            let joined = room
                .join(req.clone(), || {
                    self.next_user.fetch_add(1, Ordering::Relaxed)
                })
                .await;
            match joined {
                Ok(joined) => return Ok((room, joined)),
                Err(JoinError::Dead) => self.remove_if_dead(&room),
                Err(JoinError::Refused(e)) => {
                    // A room created for this join stays empty: drop it.
                    if room.retire_if_empty() {
                        self.remove_if_dead(&room);
                    }
                    return Err(e);
                }
            }
        }
        Err(ProtocolError::from_code(ErrorCode::Internal))
    }

    /// [`Self::enter`] for a node sharing rooms (docs/scale-out.md,
    /// "Members across nodes"): the room is loaded from Redis when this
    /// node does not host it yet, and the join script decides whether the
    /// name is free, taken, or a session that resumes, for every node at
    /// once; its member id comes from Redis too.
    #[cfg(feature = "cluster")]
    async fn enter_shared(
        &self,
        hub: &Arc<crate::cluster::Hub>,
        id: &RoomId,
        mut req: JoinRequest,
    ) -> Result<(Arc<Room>, Joined), ProtocolError> {
        use crate::cluster::ClaimOutcome;
        use crate::room::Claimed;
        let unavailable = |e: crate::cluster::ClusterError| {
            tracing::error!(room = %id, error = %e, "a join needed Redis, which failed");
            ProtocolError::new(
                ErrorCode::Internal,
                "The server cannot reach its shared store (Redis) now; try again in a moment.",
            )
        };
        // A node that is stopping claims no name: one claimed after its
        // stop released its members would be held by nobody (a ghost that
        // locks its owner out until it expires).
        let Some(_admitted) = hub.admit().await else {
            return Err(ProtocolError::new(
                ErrorCode::Internal,
                "The server is shutting down; join again.",
            ));
        };
        // Set once this join holds the name: a retry (the room emptied
        // meanwhile) claims it again as its own session.
        let mut held: Option<bool> = None;
        for _ in 0..64 {
            let room = match self.lookup(id) {
                Some(r) => r,
                None => {
                    let loaded = hub.load(id).await.map_err(unavailable)?;
                    let (cursor, since) = (loaded.cursor, loaded.since);
                    let mut inserted = false;
                    let room = self.get_or_insert_with(id, || {
                        inserted = true;
                        Room::clustered(
                            id.clone(),
                            self.max_queue_bytes,
                            loaded.doc,
                            loaded.members,
                            loaded.peers,
                            hub.link(id),
                        )
                    })?;
                    // Read on from where this document ends; a room another
                    // joiner loaded meanwhile is read from where its ends.
                    if inserted {
                        hub.host(&room, cursor, since);
                    }
                    room
                }
            };
            // A session that owns peer ids here keeps its token, also when
            // they were given out on another node whose binding this node
            // has not read yet.
            let owns = match req.session.as_deref() {
                Some(s) if !s.is_empty() => {
                    hub.cluster.owns_peers(id, s).await.map_err(unavailable)?
                }
                _ => false,
            };
            let (color, session) = room
                .proposal(req.name.as_str(), req.session.as_deref(), owns)
                .await;
            let member_id = hub.cluster.next_member_id().await.map_err(unavailable)?;
            let proposed = Member {
                id: member_id,
                name: req.name.as_str().to_owned(),
                color,
                read_only: req.read_only,
            };
            let outcome = hub
                .claim(
                    id,
                    &proposed,
                    req.session.as_deref(),
                    &session,
                    req.max_users,
                )
                .await
                .map_err(unavailable)?;
            let (member, resumed) = match outcome {
                ClaimOutcome::Ok(member, resumed) => (member, resumed),
                ClaimOutcome::Taken => {
                    return Err(ProtocolError::new(
                        ErrorCode::NameTaken,
                        format!(
                            "Someone called {:?} is already in room {:?}: pick another name with --user.",
                            req.name.as_str(),
                            id.as_str()
                        ),
                    ));
                }
                ClaimOutcome::BadSession => {
                    return Err(ProtocolError::from_code(ErrorCode::BadSession));
                }
                ClaimOutcome::Full => {
                    return Err(ProtocolError::new(
                        ErrorCode::RoomFull,
                        format!(
                            "Room {:?} is full ({} members).",
                            id.as_str(),
                            req.max_users
                        ),
                    ));
                }
            };
            // A resumed session keeps the token it presented.
            let session = if resumed {
                req.session.clone().unwrap_or(session)
            } else {
                session
            };
            let resumed = *held.get_or_insert(resumed);
            let claimed = Claimed {
                member,
                session: session.clone(),
                resumed,
            };
            match room.join_claimed(req.clone(), claimed).await {
                Ok(joined) => return Ok((room, joined)),
                Err(JoinError::Dead) => {
                    self.remove_if_dead(&room);
                    req.session = Some(session);
                }
                Err(JoinError::Refused(e)) => {
                    hub.link(id)
                        .release(req.name.as_str().to_owned(), LeftReason::Left);
                    if room.retire_if_empty() {
                        self.remove_if_dead(&room);
                    }
                    return Err(e);
                }
            }
        }
        Err(ProtocolError::from_code(ErrorCode::Internal))
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<RoomId, Arc<Room>>> {
        self.rooms.lock()
    }

    /// Rooms alive now.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every room alive now (for the store to tell their members).
    pub(crate) fn rooms(&self) -> Vec<Arc<Room>> {
        self.lock().values().cloned().collect()
    }

    /// Rooms alive now, for the metrics.
    pub(crate) fn room_count(&self) -> usize {
        self.lock().len()
    }

    /// The room, if it is alive.
    #[cfg(test)]
    pub fn get(&self, id: &RoomId) -> Option<Arc<Room>> {
        self.lock().get(id).cloned()
    }

    /// The room, created if needed (within the room limit).
    fn get_or_create(&self, id: &RoomId) -> Result<Arc<Room>, ProtocolError> {
        self.get_or_insert_with(id, || Room::new(id.clone(), self.max_queue_bytes))
    }

    /// The room in the map, or the one `make` builds, inserted within the
    /// room limit; one short critical section either way.
    fn get_or_insert_with(
        &self,
        id: &RoomId,
        make: impl FnOnce() -> Room,
    ) -> Result<Arc<Room>, ProtocolError> {
        let mut rooms = self.lock();
        if let Some(room) = rooms.get(id) {
            return Ok(Arc::clone(room));
        }
        if rooms.len() >= self.max_rooms {
            return Err(ProtocolError::new(
                ErrorCode::ServerFull,
                format!(
                    "The server already has {} rooms, its limit: try again later.",
                    self.max_rooms
                ),
            ));
        }
        let room = Arc::new(make());
        rooms.insert(id.clone(), Arc::clone(&room));
        Ok(room)
    }

    /// The member leaves (if `conn` is still theirs); an emptied room goes.
    pub(crate) fn leave(&self, room: &Arc<Room>, id: UserId, conn: u64, reason: LeftReason) {
        if room.leave(id, conn, reason) {
            self.remove_if_dead(room);
        }
        // The files only it had open leave memory (with a store).
        room.unload_unopened();
    }

    /// Drops `room` from the map if it is dead and still the one mapped.
    pub(crate) fn remove_if_dead(&self, room: &Arc<Room>) {
        if !room.is_dead() {
            return;
        }
        let mut rooms = self.lock();
        if rooms.get(room.id()).is_some_and(|r| Arc::ptr_eq(r, room)) {
            rooms.remove(room.id());
            tracing::info!(room = %room.id(), "room closed");
        }
        if rooms.capacity() > 64 && rooms.len() < rooms.capacity() / 4 {
            rooms.shrink_to_fit();
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Arc;

    use collab_protocol::ServerMsg;

    use super::*;
    use crate::room::Out;
    use crate::room::tests::request;

    fn room(s: &str) -> RoomId {
        RoomId::parse(s).unwrap()
    }

    #[tokio::test]
    async fn a_room_lives_while_it_has_members() {
        let reg = Registry::new(10, 1 << 20);
        let (req, _rx_a) = request("alice", 1);
        let (r, alice) = reg.enter(&room("abc"), req).await.unwrap();
        assert_eq!(reg.len(), 1);
        let (req, _rx_b) = request("bob", 2);
        let (r2, bob) = reg.enter(&room("abc"), req).await.unwrap();
        assert!(Arc::ptr_eq(&r, &r2));
        assert_ne!(alice.id, bob.id);
        reg.leave(&r, alice.id, 1, LeftReason::Left);
        assert_eq!(reg.len(), 1);
        reg.leave(&r, bob.id, 2, LeftReason::Left);
        assert!(reg.is_empty(), "an empty room leaves no trace");
        assert!(r.is_dead());
    }

    #[tokio::test]
    async fn a_refused_first_join_leaves_no_room() {
        let reg = Registry::new(10, 1 << 20);
        let (req, _rx) = request("alice", 1);
        let (_r, _) = reg.enter(&room("a"), req).await.unwrap();
        let (req, _rx2) = request("alice", 2);
        let err = reg.enter(&room("a"), req).await.unwrap_err();
        assert_eq!(err.code, ErrorCode::NameTaken);
        assert_eq!(reg.len(), 1);
        // Room full: max_users is 2.
        let (req, _rx3) = request("bob", 3);
        reg.enter(&room("a"), req).await.unwrap();
        let (req, _rx4) = request("carol", 4);
        assert_eq!(
            reg.enter(&room("a"), req).await.unwrap_err().code,
            ErrorCode::RoomFull
        );
    }

    #[tokio::test]
    async fn the_room_limit_is_enforced_and_freed() {
        let reg = Registry::new(1, 1 << 20);
        let (req, _rx) = request("alice", 1);
        let (r, alice) = reg.enter(&room("one"), req).await.unwrap();
        let (req, _rx2) = request("bob", 2);
        assert_eq!(
            reg.enter(&room("two"), req).await.unwrap_err().code,
            ErrorCode::ServerFull
        );
        reg.leave(&r, alice.id, 1, LeftReason::Left);
        let (req, _rx3) = request("bob", 3);
        reg.enter(&room("two"), req).await.unwrap();
    }

    #[tokio::test]
    async fn a_dead_room_is_replaced_on_join() {
        let reg = Registry::new(10, 1 << 20);
        let (req, _rx) = request("alice", 1);
        let (r, alice) = reg.enter(&room("x"), req).await.unwrap();
        // Simulate the race: the room dies but is still mapped.
        assert!(r.leave(alice.id, 1, LeftReason::Left));
        assert!(reg.get(&room("x")).is_some());
        let (req, _rx2) = request("bob", 2);
        let (r2, _) = reg.enter(&room("x"), req).await.unwrap();
        assert!(!Arc::ptr_eq(&r, &r2));
        assert_eq!(reg.len(), 1);
    }

    #[tokio::test]
    async fn left_is_sent_once() {
        let reg = Registry::new(10, 1 << 20);
        let (req, _rx_a) = request("alice", 1);
        let (r, alice) = reg.enter(&room("abc"), req).await.unwrap();
        let (req, mut rx_b) = request("bob", 2);
        reg.enter(&room("abc"), req).await.unwrap();
        reg.leave(&r, alice.id, 1, LeftReason::Disconnected);
        reg.leave(&r, alice.id, 1, LeftReason::Left);
        let mut lefts = 0;
        while let Ok(out) = rx_b.try_recv() {
            if let Out::Text(t) = out
                && let Ok(ServerMsg::Left { reason, .. }) = ServerMsg::from_json(t.as_str())
            {
                assert_eq!(reason, LeftReason::Disconnected);
                lefts += 1;
            }
        }
        assert_eq!(lefts, 1);
    }

    #[tokio::test]
    async fn a_stale_connection_cannot_remove_the_resumed_one() {
        let reg = Registry::new(10, 1 << 20);
        let (req, mut rx) = request("alice", 1);
        let (r, alice) = reg.enter(&room("abc"), req).await.unwrap();
        let Ok(Out::Welcome(w)) = rx.try_recv() else {
            panic!("the welcome comes first")
        };
        let session = w.welcome.session;
        let (mut req, _rx2) = request("alice", 2);
        req.session = Some(session);
        let (_, again) = reg.enter(&room("abc"), req).await.unwrap();
        assert!(again.resumed);
        assert_eq!(again.id, alice.id);
        // The old connection's drop guard runs: nothing happens.
        reg.leave(&r, alice.id, 1, LeftReason::Disconnected);
        assert_eq!(r.members().len(), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_joins_and_leaves_leave_no_room_behind() {
        let reg = Arc::new(Registry::new(1000, 1 << 20));
        let tasks: Vec<_> = (0..4u64)
            .map(|t| {
                let reg = Arc::clone(&reg);
                tokio::spawn(async move {
                    for i in 0..500u64 {
                        let conn = t * 10_000 + i;
                        let (mut req, _rx) = request(&format!("u{t}"), conn);
                        req.max_users = 10;
                        let id = room(&format!("r{}", i % 3));
                        let (r, joined) = reg.enter(&id, req).await.unwrap();
                        reg.leave(&r, joined.id, conn, LeftReason::Left);
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        assert!(reg.is_empty(), "{} rooms left", reg.len());
    }

    #[tokio::test]
    async fn a_member_with_too_many_bytes_queued_is_removed() {
        let reg = Registry::new(10, 1000);
        let (req, mut rx_a) = request("alice", 1);
        let (r, alice) = reg.enter(&room("abc"), req).await.unwrap();
        let (req, _rx_b) = request("bob", 2);
        let (_, bob) = reg.enter(&room("abc"), req).await.unwrap();
        let big = collab_protocol::Presence {
            cursor: Some(vec![0u8; 450].into()),
            anchor: None,
        };
        // Bob never reads: the first fits, the second would pass 1000 bytes.
        r.presence(alice.id, big.clone());
        assert_eq!(r.members().len(), 2);
        r.presence(alice.id, big);
        assert_eq!(r.members().len(), 1, "bob was removed");
        let mut removed = false;
        while let Ok(out) = rx_a.try_recv() {
            if let Out::Text(t) = out
                && let Ok(ServerMsg::Left { id, reason, .. }) = ServerMsg::from_json(t.as_str())
            {
                removed = id == bob.id && reason == LeftReason::Removed;
            }
        }
        assert!(removed);
    }
}
