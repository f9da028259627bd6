//! A room's end of the node's link to the other nodes (`--redis`,
//! docs/scale-out.md): what the room hands the node's publisher, and what
//! the node's reader hands the room back.
//!
//! Plain types only (no Redis here): the room code builds without the
//! `cluster` feature, and a server on its own has no link at all (a
//! `None` the hot path checks once). The publisher and the reader live in
//! `crate::cluster::hub`.

use collab_protocol::{LeftReason, Member, RoomId, UserId};
use tokio::sync::{mpsc, oneshot};

/// What a room's log entry records (`crate::cluster::Kind`, less what
/// only the Lua scripts write: `joined` and `left`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LogKind {
    /// Loro bytes, imported here.
    Update,
    /// A `member` event's member: a role change, or a session that moved
    /// to this node.
    Member,
    /// A `chat` event, as JSON.
    Chat,
    /// A `direct` event, as JSON, for a member on another node.
    Direct,
    /// A `presence` event, as JSON: not in the log but on the room's
    /// Pub/Sub channel (latest wins, never stored).
    Presence,
    /// `PEER SESSION`: this node gave a session a Loro peer id (or, with no
    /// session, authored a seed under it). Also kept in the room's `peers`
    /// hash, for nodes that load the room later.
    Peer,
}

/// One thing for the node's publisher, in the order the rooms push them
/// (a room pushes its updates under its document lock, so its log is in
/// its import order).
#[derive(Debug)]
pub(crate) enum Op {
    /// Append an entry to the room's log; `done` hears whether Redis holds
    /// it (the ack point of an update).
    Publish {
        room: RoomId,
        /// The room instance that publishes (see `RoomLink::instance`).
        instance: u64,
        kind: LogKind,
        from: UserId,
        data: Vec<u8>,
        done: Option<oneshot::Sender<bool>>,
    },
    /// The member left this node: release its name (with `left` in the
    /// log) if this node still holds it.
    Release {
        room: RoomId,
        name: String,
        reason: LeftReason,
    },
    /// Answered once every op before it is done (before a room is loaded
    /// from Redis again, so what this node wrote is in what it reads).
    Barrier(oneshot::Sender<()>),
    /// The id of the room's last log entry now (after every op before it),
    /// `None` when Redis cannot say.
    Tip {
        room: RoomId,
        reply: oneshot::Sender<Option<(u64, u64)>>,
    },
}

/// How far a room instance has applied its log (an entry id, `(ms, seq)`).
#[derive(Debug, Default)]
pub(crate) struct Progress {
    applied: parking_lot::Mutex<(u64, u64)>,
    moved: tokio::sync::Notify,
}

impl Progress {
    /// Everything up to `at` is applied.
    pub fn set(&self, at: (u64, u64)) {
        let mut applied = self.applied.lock();
        if at > *applied {
            *applied = at;
            drop(applied);
            self.moved.notify_waiters();
        }
    }

    /// Waits until everything up to `at` is applied.
    pub async fn reached(&self, at: (u64, u64)) {
        loop {
            let moved = self.moved.notified();
            let mut moved = std::pin::pin!(moved);
            moved.as_mut().enable();
            if *self.applied.lock() >= at {
                return;
            }
            moved.await;
        }
    }
}

/// The node's publisher queue, as one room holds it.
#[derive(Debug, Clone)]
pub(crate) struct RoomLink {
    pub ops: mpsc::Sender<Op>,
    pub room: RoomId,
    /// This room's life on this node, random and not 0: the reader skips
    /// the entries this instance wrote (it applied them already), not those
    /// of an earlier instance of the room on this node.
    pub instance: u64,
    /// How far this instance has applied the room's log.
    pub progress: std::sync::Arc<Progress>,
}

/// An entry another node wrote, decoded, for the room to apply.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Remote {
    Update {
        from: UserId,
        data: Vec<u8>,
    },
    Joined(Member),
    Left {
        id: UserId,
        reason: LeftReason,
    },
    Member(Member),
    /// A `chat` event's JSON, relayed as it is.
    Chat(String),
    /// A `direct` event's JSON, for the member called `to`.
    Direct {
        to: String,
        json: String,
    },
    /// A `presence` event's JSON, relayed as it is.
    Presence(String),
    /// A peer id another node gave out, and its owner.
    Peer {
        peer: u64,
        session: String,
    },
}

impl RoomLink {
    /// Queues an entry; false when the queue is full (the caller treats
    /// the entry as not stored).
    pub fn publish(
        &self,
        kind: LogKind,
        from: UserId,
        data: Vec<u8>,
        done: Option<oneshot::Sender<bool>>,
    ) -> bool {
        self.ops
            .try_send(Op::Publish {
                room: self.room.clone(),
                instance: self.instance,
                kind,
                from,
                data,
                done,
            })
            .is_ok()
    }

    /// Waits (at most `within`) until this node has applied the room's log
    /// up to its last entry now: it then has every update that any node
    /// had written when this was called.
    pub async fn catch_up(&self, within: std::time::Duration) {
        let _ = tokio::time::timeout(within, async {
            let (reply, tip) = oneshot::channel();
            let op = Op::Tip {
                room: self.room.clone(),
                reply,
            };
            if self.ops.send(op).await.is_err() {
                return;
            }
            if let Ok(Some(tip)) = tip.await {
                self.progress.reached(tip).await;
            }
        })
        .await;
    }

    /// Queues the binding of `peer` to `session`.
    pub fn publish_peer(&self, from: UserId, peer: u64, session: &str) {
        self.publish(LogKind::Peer, from, peer_record(peer, session), None);
    }

    /// Queues the release of `name`; when the queue is full its entry
    /// expires within the member ttl instead (nobody refreshes it).
    pub fn release(&self, name: String, reason: LeftReason) {
        let _ = self.ops.try_send(Op::Release {
            room: self.room.clone(),
            name,
            reason,
        });
    }
}

/// A peer binding as the log and the `peers` hash hold it.
pub(crate) fn peer_record(peer: u64, session: &str) -> Vec<u8> {
    format!("{peer} {session}").into_bytes()
}

/// The peer id and session of a binding, if it is one.
pub(crate) fn peer_of(record: &[u8]) -> Option<(u64, String)> {
    let text = std::str::from_utf8(record).ok()?;
    let (peer, session) = text.split_once(' ')?;
    Some((peer.parse().ok()?, session.to_owned()))
}

/// The name a reason has on the wire (`left`'s `reason`), which is also
/// what a `left` entry's payload holds.
pub(crate) fn reason_str(reason: LeftReason) -> &'static str {
    match reason {
        LeftReason::Left => "left",
        LeftReason::Disconnected => "disconnected",
        LeftReason::Removed => "removed",
    }
}

/// The reason a `left` entry's payload names (`disconnected` for one this
/// version does not know).
pub(crate) fn reason_of(payload: &[u8]) -> LeftReason {
    match payload {
        b"left" => LeftReason::Left,
        b"removed" => LeftReason::Removed,
        _ => LeftReason::Disconnected,
    }
}
