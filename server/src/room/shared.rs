//! A room shared with other nodes (`--redis`, docs/scale-out.md): what
//! the node does to a room besides what its own members do. It loads the
//! room from Redis, asks for a joiner's colour and session before the
//! nodes' join script runs, refreshes its members' entries, and applies
//! what the other nodes wrote to the room's log: their members' updates
//! (imported and relayed as from their authors), comings, goings and
//! messages.
//!
//! Kept apart from `room.rs` so that a server on its own (and the editor's
//! embedded one, built without the `cluster` feature) reads the room as it
//! always was: none of this runs without a link.

use std::sync::Arc;

use collab_doc::{DocError, UpdateInfo};
use collab_protocol::{Member, ServerMsg, UserId};
use tokio_tungstenite::tungstenite::Utf8Bytes;

use super::document::{run, spawn_compaction};
use crate::access::same_secret;

use super::{
    DocSettings, KickReason, Remote, Room, RoomLink, State, broadcast, free_color,
    new_session_token, returning_session, send_to,
};

/// A room as this node writes it back to a Redis that lost it.
#[cfg_attr(not(feature = "cluster"), allow(dead_code))]
pub(crate) struct ForRedis {
    pub snapshot: Vec<u8>,
    pub whole: Option<Vec<u8>>,
    pub peers: Vec<(u64, String)>,
}

#[cfg_attr(not(feature = "cluster"), allow(dead_code))]
impl Room {
    /// A room shared with other nodes through Redis: its document as
    /// loaded from there, the members on other nodes, and where its
    /// changes go.
    pub(crate) fn clustered(
        id: collab_protocol::RoomId,
        max_queue_bytes: usize,
        doc: collab_doc::RoomDoc,
        remote: Vec<Member>,
        peers: Vec<(u64, String)>,
        link: RoomLink,
    ) -> Self {
        let mut room = Self::with_doc(id, max_queue_bytes, doc.into(), None);
        // Not shared yet: the lock is free.
        if let Ok(mut part) = room.doc.try_lock() {
            part.owners.extend(peers);
        }
        let st = room.state.get_mut();
        st.remote = remote;
        st.link = Some(link.clone());
        room.link = Some(link);
        room
    }

    /// What a member joining here would get if the nodes let it in
    /// (`--redis`, before the join script): a colour no member has, and
    /// its session token (the one it presents when that owns peer ids in
    /// this room, so it keeps them; else a new one).
    ///
    /// `owns`: Redis says the presented session owns peer ids in the room
    /// (given out on any node).
    ///
    /// A joiner presenting the session of this node's live member of its
    /// own name is that member back on a new connection (its old one not
    /// closed yet): it keeps its session even when the join script makes it
    /// a new member (its entry was released meanwhile), else its unacked
    /// edits, under the peer ids of that session, would be refused as
    /// another's and lost (the randomized suite over three nodes found it).
    pub(crate) async fn proposal(
        &self,
        name: &str,
        presented: Option<&str>,
        owns: bool,
    ) -> (String, String) {
        let part = self.doc.lock().await;
        let st = self.lock();
        let color = free_color(&st, rand::random::<u64>());
        let own = presented
            .filter(|t| !t.is_empty())
            .filter(|t| {
                st.members
                    .iter()
                    .any(|e| e.member.name == name && same_secret(&e.session, t))
            })
            .map(str::to_owned);
        let elsewhere = presented
            .filter(|t| owns && !t.is_empty())
            .filter(|t| !st.members.iter().any(|e| same_secret(&e.session, t)))
            .map(str::to_owned);
        let session = own
            .or_else(|| returning_session(&st, &part.owners, presented))
            .or(elsewhere)
            .unwrap_or_else(new_session_token);
        (color, session)
    }

    /// The names of this node's members (`--redis`: the node keeps their
    /// entries alive).
    pub(crate) fn local_names(&self) -> Vec<String> {
        self.lock()
            .members
            .iter()
            .map(|e| e.member.name.clone())
            .collect()
    }

    /// Applies, in order, what other nodes wrote to the room's log
    /// (`--redis`): their members' updates, imported and relayed to this
    /// node's members as from their authors, and their members' comings,
    /// goings and messages. The entries were checked by the node that
    /// accepted them; an update is still imported checked and bounded,
    /// like a member's, on the blocking pool when it is not a keystroke.
    ///
    /// Returns the updates that build on changes this document lacks (its
    /// read of the log missed entries: trimmed before it read them), in
    /// order, for the caller to import again once it has merged what they
    /// build on; they are not lost with the entries already read.
    pub(crate) async fn apply_remote(
        self: &Arc<Self>,
        entries: Vec<Remote>,
        settings: DocSettings,
    ) -> Vec<Remote> {
        let mut lacking = Vec::new();
        for entry in entries {
            match entry {
                Remote::Update { from, data } => {
                    if let Some(data) = self.import_remote(from, data, settings).await {
                        lacking.push(Remote::Update { from, data });
                    }
                }
                Remote::Peer { peer, session } => {
                    self.doc.lock().await.owners.insert(peer, session);
                }
                event => self.remote_event(event),
            }
        }
        lacking
    }

    /// Imports another node's update; gives it back when it builds on
    /// changes the document does not have.
    async fn import_remote(
        self: &Arc<Self>,
        from: UserId,
        data: Vec<u8>,
        settings: DocSettings,
    ) -> Option<Vec<u8>> {
        let max_doc_bytes = settings.max_doc_bytes;
        let info = match UpdateInfo::read(&data) {
            Ok(info) => info,
            Err(e) => {
                tracing::warn!(room = %self.id, user = from, error = %e, "skipping another node's update that does not decode");
                return None;
            }
        };
        let relay = Utf8Bytes::from(ServerMsg::update_json(from, &data));
        let part = self.doc_with_room_for(data.len()).await;
        let runs = part.import_runs(data.len(), max_doc_bytes);
        let room = Arc::clone(self);
        let (part, result) = run(part, runs, move |p| {
            let new = match p.doc.import_checked(&data, &info, max_doc_bytes) {
                Ok(new) => new,
                Err(DocError::MissingDependencies) => return Err(Some(data)),
                Err(e) => {
                    tracing::warn!(room = %room.id, user = from, error = %e, "another node's update was not imported");
                    return Err(None);
                }
            };
            let mut job = None;
            if new {
                let mut st = room.lock();
                broadcast(&mut st, &relay, None);
                drop(st);
                p.after_import(&room.id, data);
                job = room.take_compaction(p, settings);
            }
            Ok(job)
        })
        .await;
        drop(part);
        match result {
            Ok(Ok(Some(job))) => spawn_compaction(Arc::clone(self), job),
            Ok(Ok(None)) | Ok(Err(None)) => {}
            Ok(Err(Some(data))) => return Some(data),
            Err(e) => {
                tracing::warn!(room = %self.id, user = from, error = %e, "another node's update was not imported");
            }
        }
        None
    }

    /// What a Redis that lost the room (it came back empty) gets back from
    /// this node: a snapshot of the room's document, its whole history as
    /// one update (`None` when it was trimmed here), and the peer ids given
    /// out in it with their owners.
    pub(crate) async fn export_for_redis(&self) -> Result<ForRedis, collab_doc::DocError> {
        let part = Arc::clone(&self.doc).lock_owned().await;
        let (part, exported) = run(part, super::Runs::Blocking, |p| {
            let snapshot = p.doc.snapshot()?;
            let empty = collab_doc::VersionVector::default().encode();
            Ok((snapshot, p.doc.updates_since(&empty).ok()))
        })
        .await;
        let peers = part.owners.iter().map(|(p, s)| (*p, s.clone())).collect();
        drop(part);
        let (snapshot, whole) = exported.and_then(|r| r)?;
        Ok(ForRedis {
            snapshot,
            whole,
            peers,
        })
    }

    /// Queues `data` for the room's log as an update of the node's own (a
    /// republished history: every other node imports it).
    pub(crate) fn publish_update(&self, data: Vec<u8>) {
        if let Some(link) = &self.link {
            link.publish(super::LogKind::Update, 0, data, None);
        }
    }

    /// The room document's version (encoded).
    pub(crate) async fn doc_version(&self) -> Vec<u8> {
        self.doc.lock().await.doc.version()
    }

    /// This room instance's id among the room's lives on all nodes (0 for
    /// a room that is not shared).
    pub(crate) fn instance(&self) -> u64 {
        self.link.as_ref().map_or(0, |l| l.instance)
    }

    /// Everything of the room's log up to `(ms, seq)` is applied here.
    pub(crate) fn applied_to(&self, ms: u64, seq: u64) {
        if let Some(link) = &self.link {
            link.progress.set((ms, seq));
        }
    }

    /// This node's member called `name`, and its session.
    pub(crate) fn local_member(&self, name: &str) -> Option<(Member, String)> {
        self.lock()
            .members
            .iter()
            .find(|e| e.member.name == name)
            .map(|e| (e.member.clone(), e.session.clone()))
    }

    /// Ends this node's member `id` whose name another node holds now: its
    /// connection closes, and this node's other members see it leave.
    pub(crate) fn drop_member(&self, id: UserId) {
        let mut st = self.lock();
        if let Some(i) = st.members.iter().position(|e| e.member.id == id) {
            st.members[i].link.control.kick(KickReason::Replaced);
            super::remove(&mut st, i, collab_protocol::LeftReason::Disconnected);
        }
    }

    /// A snapshot of the room's document (on the blocking pool, with the
    /// document lock held: every update imported so far is in it).
    pub(crate) async fn export_snapshot(&self) -> Result<Vec<u8>, collab_doc::DocError> {
        let part = Arc::clone(&self.doc).lock_owned().await;
        let (_part, snapshot) = run(part, super::Runs::Blocking, |p| p.doc.snapshot()).await;
        snapshot.and_then(|s| s)
    }

    /// A `presence` event of a member on another node, relayed as it is.
    pub(crate) fn remote_presence(&self, json: String) {
        self.remote_event(Remote::Presence(json));
    }

    /// A member event another node wrote.
    fn remote_event(&self, event: Remote) {
        let mut st = self.lock();
        let known = |st: &State, id: UserId| {
            st.members.iter().any(|e| e.member.id == id) || st.remote.iter().any(|m| m.id == id)
        };
        let msg = match event {
            Remote::Update { .. } | Remote::Peer { .. } => return,
            Remote::Joined(member) => {
                // Loaded with the room already, or this node's own.
                if known(&st, member.id) {
                    return;
                }
                st.remote.push(member.clone());
                ServerMsg::Joined { member }
            }
            Remote::Left { id, reason } => {
                let Some(i) = st.remote.iter().position(|m| m.id == id) else {
                    return;
                };
                let gone = st.remote.remove(i);
                ServerMsg::Left {
                    id,
                    name: gone.name,
                    reason,
                }
            }
            Remote::Member(member) => {
                let was = if let Some(i) = st.members.iter().position(|e| e.member.id == member.id)
                {
                    // Its session resumed on another node: this connection
                    // is stale. It ends without a `left` (the member is
                    // still in the room) and without a release (the name
                    // is the other node's now).
                    let gone = st.members.remove(i);
                    gone.link.control.kick(KickReason::Replaced);
                    st.remote.push(member.clone());
                    gone.member.read_only
                } else if let Some(m) = st.remote.iter_mut().find(|m| m.id == member.id) {
                    std::mem::replace(m, member.clone()).read_only
                } else {
                    return;
                };
                if was == member.read_only {
                    return;
                }
                ServerMsg::Member { member }
            }
            Remote::Chat(json) | Remote::Presence(json) => {
                broadcast(&mut st, &Utf8Bytes::from(json), None);
                return;
            }
            Remote::Direct { to, json } => {
                if let Some(target) = st.members.iter().find(|e| e.member.name == to) {
                    let target = target.member.id;
                    send_to(&mut st, &Utf8Bytes::from(json), |id| id == target);
                }
                return;
            }
        };
        broadcast(&mut st, &Utf8Bytes::from(msg.to_json()), None);
    }
}
