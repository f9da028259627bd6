//! The Redis side of scale-out (docs/scale-out.md): several nodes share
//! rooms through one Redis, each room's accepted updates and events in a
//! stream of its own, read only by the nodes that host members of that
//! room.
//!
//! Everything Redis does for the server goes through [`Cluster`] (commands
//! on one multiplexed connection that reconnects by itself) and [`Reader`]
//! (a connection of its own, for `XREAD BLOCK`, which would hold up every
//! other command queued behind it on a shared connection). The room code
//! sees entries and ids, never Redis commands, so the hooks in the rooms
//! stay small, and this module is tested against a real `redis-server`
//! (`tests.rs`) apart from them.
//!
//! Bounded, like everything a peer can cause: an entry's payload is at most
//! [`ClusterConfig::max_entry_bytes`] (larger ones are refused when written
//! and skipped when read), a read returns at most `count` entries per room
//! and blocks at most [`MAX_BLOCK`], and every command times out.

mod entry;
mod hub;
mod node;
mod scripts;
#[cfg(test)]
mod tests;

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, Instant};

use collab_protocol::RoomId;
use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::{AsyncConnectionConfig, Value};

pub(crate) use crate::room::DocSettings as Settings;
pub use entry::{Entry, EntryId, Kind};
pub(crate) use hub::{ClaimOutcome, Hub};
pub(crate) use node::Node;

/// The longest a read blocks waiting for entries.
pub const MAX_BLOCK: Duration = Duration::from_secs(5);

/// How long a command (other than a blocking read) may take, and a
/// connection attempt.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);

/// A node's name among the nodes sharing a Redis: 1 to 64 letters, digits,
/// `-`, `_` or `.` (the room id's rules, so it fits in a key unambiguously).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NodeId(String);

impl NodeId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for NodeId {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let n = s.chars().count();
        if !(1..=64).contains(&n) {
            return Err(format!("a node id has 1 to 64 characters; {s:?} has {n}"));
        }
        if let Some(c) = s
            .chars()
            .find(|c| !(c.is_alphanumeric() || matches!(c, '-' | '_' | '.')))
        {
            return Err(format!(
                "a node id is letters, digits, '-', '_' and '.'; {s:?} has {c:?}"
            ));
        }
        Ok(NodeId(s.to_owned()))
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where Redis is: a `redis://` (or `rediss://`, `redis+unix://`) URL,
/// checked when parsed. `Debug` and `Display` hide its password.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisUrl(String);

impl RedisUrl {
    /// The URL with its password, for connecting.
    fn expose(&self) -> &str {
        &self.0
    }
}

impl FromStr for RedisUrl {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        redis::Client::open(s)
            .map(|_| RedisUrl(s.to_owned()))
            .map_err(|e| {
                format!(
                    "{:?} is not a Redis URL like redis://HOST:6379/0: {e}",
                    RedisUrl(s.to_owned())
                )
            })
    }
}

impl fmt::Display for RedisUrl {
    /// The URL with `***` for a password (`redis://:***@host/0`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let url = &self.0;
        let Some((scheme, rest)) = url.split_once("://") else {
            return f.write_str(url);
        };
        let authority_end = rest.find('/').unwrap_or(rest.len());
        match rest[..authority_end].rfind('@') {
            Some(at) => {
                let (userinfo, host) = (&rest[..at], &rest[at..]);
                let user = userinfo.split_once(':').map_or("", |(u, _)| u);
                let hidden = if userinfo.contains(':') {
                    format!("{user}:***")
                } else {
                    "***".to_owned()
                };
                write!(f, "{scheme}://{hidden}{host}")
            }
            None => f.write_str(url),
        }
    }
}

impl fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RedisUrl({self})")
    }
}

/// How a node joins the others (`--redis`, `--node-id`).
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    pub redis: RedisUrl,
    pub node_id: NodeId,
    /// A member's entry expires this long after its node last refreshed
    /// it; so does the node's claim on its id. Default 15 s.
    pub member_ttl: Duration,
    /// Largest payload of one log entry. Default 2 MiB (an update is at
    /// most one frame, 1 MiB by default).
    pub max_entry_bytes: usize,
    /// A node snapshots a room into Redis (and trims its log) once the log
    /// holds this many entries past the snapshot (default 1,000)...
    pub snapshot_every: usize,
    /// ...or this many bytes of payload (default 1 MiB).
    pub snapshot_every_bytes: usize,
    /// Entries older than the snapshot by more than this are trimmed
    /// (default 60 s): a reader a little behind reads on instead of
    /// reading the room's snapshot again.
    pub trim_grace: Duration,
    /// `--room-ttl`: a room's keys expire this long after its last write,
    /// unless a node hosting members of it refreshes them (every third of
    /// the member ttl). Default `None` (kept forever). `collab_server::run`
    /// sets it from `Config::room_ttl`.
    pub room_ttl: Option<Duration>,
}

impl ClusterConfig {
    pub fn new(redis: RedisUrl, node_id: NodeId) -> Self {
        Self {
            redis,
            node_id,
            member_ttl: Duration::from_secs(15),
            max_entry_bytes: 2 * 1024 * 1024,
            snapshot_every: 1000,
            snapshot_every_bytes: 1024 * 1024,
            trim_grace: Duration::from_secs(60),
            room_ttl: None,
        }
    }
}

/// What went wrong talking to Redis.
#[derive(Debug)]
pub enum ClusterError {
    /// Redis could not be reached, or refused or timed out a command.
    Redis(redis::RedisError),
    /// Another live node has this id (or a killed one, until its claim
    /// expires).
    NodeIdTaken(NodeId),
    /// An answer that does not have the expected shape.
    Reply(String),
    /// An entry over [`ClusterConfig::max_entry_bytes`], not written.
    TooLarge(usize),
}

impl fmt::Display for ClusterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClusterError::Redis(e) => write!(f, "redis: {e}"),
            ClusterError::NodeIdTaken(id) => write!(
                f,
                "another node runs with node id {id:?} (or one that was killed less than a member ttl ago): give each node its own --node-id"
            ),
            ClusterError::Reply(what) => write!(f, "an unexpected answer from redis: {what}"),
            ClusterError::TooLarge(n) => write!(f, "a log entry of {n} bytes is over the bound"),
        }
    }
}

impl std::error::Error for ClusterError {}

impl From<redis::RedisError> for ClusterError {
    fn from(e: redis::RedisError) -> Self {
        ClusterError::Redis(e)
    }
}

type ClusterResult<T> = std::result::Result<T, ClusterError>;

/// A room's keys (docs/scale-out.md, "Keys"). The room id in braces is a
/// Redis Cluster hash tag: a room's keys share a slot.
struct Keys {
    log: String,
    snap: String,
    who: String,
    members: String,
    alive: String,
    presence: String,
    compacting: String,
    peers: String,
    sessions: String,
}

impl Keys {
    fn of(room: &RoomId) -> Keys {
        let r = room.as_str();
        Keys {
            log: format!("collab:{{{r}}}:log"),
            snap: format!("collab:{{{r}}}:snap"),
            who: format!("collab:{{{r}}}:who"),
            members: format!("collab:{{{r}}}:members"),
            alive: format!("collab:{{{r}}}:alive"),
            presence: format!("collab:{{{r}}}:presence"),
            compacting: format!("collab:{{{r}}}:compacting"),
            peers: format!("collab:{{{r}}}:peers"),
            sessions: format!("collab:{{{r}}}:sessions"),
        }
    }

    /// The keys that hold the room (not its lease or its channel): those
    /// `--room-ttl` expires.
    fn stored(&self) -> [&str; 7] {
        [
            &self.log,
            &self.snap,
            &self.who,
            &self.members,
            &self.alive,
            &self.peers,
            &self.sessions,
        ]
    }
}

/// The room whose presence channel is `channel`, if it is one.
fn presence_room(channel: &str) -> Option<RoomId> {
    let r = channel
        .strip_prefix("collab:{")?
        .strip_suffix("}:presence")?;
    RoomId::parse(r).ok()
}

/// What the publisher sends: a log entry, or a presence message for the
/// room's channel.
#[derive(Debug, Clone, Copy)]
pub enum Outgoing<'a> {
    Entry(&'a Entry),
    Presence(&'a [u8]),
}

fn node_key(node: &NodeId) -> String {
    format!("collab:node:{{{node}}}")
}

/// The counter member ids come from.
const NEXT_USER: &str = "collab:next-user";

/// How a claim on a name in a room went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// A new member; `joined` is in the log. Carries the record stored.
    Joined(Vec<u8>),
    /// The session's entry moved to this node; carries its stored record.
    Resumed(Vec<u8>),
    /// Someone of that name is live and no session was presented.
    Taken,
    /// Someone of that name is live with another session.
    BadSession,
    /// The room has its maximum of members.
    Full,
}

/// One room's part of a read: its entries in order, and the id to read on
/// from (past entries that could not be decoded, which are logged and
/// skipped, so one bad entry never stalls a room).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    pub room: RoomId,
    pub entries: Vec<(EntryId, Entry)>,
    pub last: EntryId,
}

/// A node's connection to the others through Redis.
pub struct Cluster {
    config: ClusterConfig,
    client: redis::Client,
    conn: ConnectionManager,
    /// Proves this process holds the node id (a random value in the
    /// node's key).
    token: String,
    scripts: scripts::Scripts,
    /// The round trip of every command and pipeline (`/metrics`).
    rtt: crate::metrics::Histogram,
}

impl fmt::Debug for Cluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cluster")
            .field("redis", &self.config.redis)
            .field("node", &self.config.node_id)
            .finish_non_exhaustive()
    }
}

impl Cluster {
    /// Connects and claims the node id; fails when Redis cannot be reached
    /// or another node holds the id.
    pub async fn connect(config: ClusterConfig) -> ClusterResult<Cluster> {
        let client = redis::Client::open(config.redis.expose())?;
        let manager = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(COMMAND_TIMEOUT))
            .set_response_timeout(Some(COMMAND_TIMEOUT))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_secs(1));
        let mut conn = client.get_connection_manager_with_config(manager).await?;
        let token = format!("{:032x}", rand::random::<u128>());
        let claimed: Option<String> = redis::cmd("SET")
            .arg(node_key(&config.node_id))
            .arg(&token)
            .arg("NX")
            .arg("PX")
            .arg(ttl_ms(config.member_ttl))
            .query_async(&mut conn)
            .await?;
        if claimed.is_none() {
            return Err(ClusterError::NodeIdTaken(config.node_id));
        }
        Ok(Cluster {
            config,
            client,
            conn,
            token,
            scripts: scripts::Scripts::new(),
            rtt: crate::metrics::Histogram::default(),
        })
    }

    pub fn node(&self) -> &NodeId {
        &self.config.node_id
    }

    /// A command connection: the manager is a handle, cloned per call so
    /// commands from many tasks share one pipelined socket.
    /// Each command's round trip goes to the histogram on `/metrics`.
    fn conn(&self) -> Timed<'_> {
        Timed {
            conn: self.conn.clone(),
            rtt: &self.rtt,
        }
    }

    /// The `/metrics` histogram of the command round trips.
    pub fn render(&self, out: &mut String) {
        self.rtt.render(
            out,
            "collab_cluster_command_seconds",
            "Round trip of each command, pipeline or script this node sent to Redis (blocking reads excepted).",
        );
    }

    /// One round trip, timed (`/healthz`, the RTT metric).
    pub async fn ping(&self) -> ClusterResult<Duration> {
        let started = Instant::now();
        let _: String = redis::cmd("PING").query_async(&mut self.conn()).await?;
        Ok(started.elapsed())
    }

    /// Extends this node's claim on its id (every `member_ttl / 3`), or
    /// claims it again if nobody holds it. Fails with
    /// [`ClusterError::NodeIdTaken`] when the claim expired and another
    /// node took the id.
    pub async fn heartbeat(&self) -> ClusterResult<()> {
        let held: i64 = self
            .scripts
            .node_refresh
            .key(node_key(&self.config.node_id))
            .arg(&self.token)
            .arg(ttl_ms(self.config.member_ttl))
            .invoke_async(&mut self.conn())
            .await?;
        if held == 1 {
            Ok(())
        } else {
            Err(ClusterError::NodeIdTaken(self.config.node_id.clone()))
        }
    }

    /// Gives the node id up (at shutdown), so a restart need not wait for
    /// the claim to expire.
    pub async fn release_node(&self) -> ClusterResult<()> {
        let _: i64 = self
            .scripts
            .node_release
            .key(node_key(&self.config.node_id))
            .arg(&self.token)
            .invoke_async(&mut self.conn())
            .await?;
        Ok(())
    }

    /// Appends an entry to the room's log; its id, once Redis answers, is
    /// the ack point: Redis holds the entry.
    pub async fn publish(&self, room: &RoomId, entry: &Entry) -> ClusterResult<EntryId> {
        if entry.data.len() > self.config.max_entry_bytes {
            return Err(ClusterError::TooLarge(entry.data.len()));
        }
        let mut cmd = redis::cmd("XADD");
        cmd.arg(Keys::of(room).log).arg("*");
        entry.write_fields(&mut cmd);
        let id: Value = cmd.query_async(&mut self.conn()).await?;
        entry::entry_id(id).ok_or_else(|| ClusterError::Reply("XADD gave no entry id".into()))
    }

    /// Appends entries to their rooms' logs in one pipeline, in order: one
    /// round trip for many rooms' updates. Each answer is its entry's id,
    /// or `None` for an entry over the bound (not written) or one Redis
    /// refused.
    pub async fn publish_many(
        &self,
        entries: &[(&RoomId, Outgoing<'_>)],
    ) -> ClusterResult<Vec<Option<EntryId>>> {
        let mut pipe = redis::pipe();
        let mut sent = Vec::with_capacity(entries.len());
        for (room, out) in entries {
            let fits = match out {
                Outgoing::Entry(entry) if entry.data.len() <= self.config.max_entry_bytes => {
                    let keys = Keys::of(room);
                    if entry.kind == Kind::Peer
                        && let Some((peer, session)) = crate::room::peer_of(&entry.data)
                    {
                        let mut cmd = redis::cmd("HSET");
                        cmd.arg(&keys.peers).arg(peer).arg(&session);
                        pipe.add_command(cmd).ignore();
                        if !session.is_empty() {
                            let mut cmd = redis::cmd("SADD");
                            cmd.arg(&keys.sessions).arg(&session);
                            pipe.add_command(cmd).ignore();
                        }
                    }
                    let mut cmd = redis::cmd("XADD");
                    cmd.arg(keys.log).arg("*");
                    entry.write_fields(&mut cmd);
                    pipe.add_command(cmd);
                    true
                }
                Outgoing::Presence(data) if data.len() <= self.config.max_entry_bytes => {
                    let mut cmd = redis::cmd("PUBLISH");
                    cmd.arg(Keys::of(room).presence).arg(*data);
                    pipe.add_command(cmd).ignore();
                    false
                }
                _ => false,
            };
            sent.push(fits);
        }
        if sent.is_empty() {
            return Ok(Vec::new());
        }
        if let Some(ttl) = self.config.room_ttl {
            let mut rooms: Vec<&RoomId> = entries
                .iter()
                .filter(|(_, out)| matches!(out, Outgoing::Entry(_)))
                .map(|(r, _)| *r)
                .collect();
            rooms.sort_unstable_by(|a, b| a.as_str().cmp(b.as_str()));
            rooms.dedup();
            for room in rooms {
                expire(&mut pipe, &Keys::of(room), ttl);
            }
        }
        let replies: Vec<Value> = pipe.query_async(&mut self.conn()).await?;
        let mut replies = replies.into_iter();
        Ok(sent
            .into_iter()
            .map(|fits| {
                if fits {
                    replies.next().and_then(entry::entry_id)
                } else {
                    None
                }
            })
            .collect())
    }

    /// Up to `count` entries of the room's log after `after` (a newcomer's
    /// catch-up after the snapshot, in pages).
    pub async fn range(&self, room: &RoomId, after: EntryId, count: usize) -> ClusterResult<Batch> {
        let reply: Value = redis::cmd("XRANGE")
            .arg(Keys::of(room).log)
            .arg(format!("({after}"))
            .arg("+")
            .arg("COUNT")
            .arg(count.max(1))
            .query_async(&mut self.conn())
            .await?;
        read_entries(room.clone(), after, reply, self.config.max_entry_bytes)
    }

    /// The id of the oldest entry the room's log still holds, if any. A
    /// reader whose cursor is older than the entry before it may have
    /// missed trimmed entries and loads the snapshot again
    /// (docs/scale-out.md, "Joining a room"). (Redis 7.0's XINFO field
    /// `max-deleted-entry-id` would say it exactly, but XTRIM does not move
    /// it.)
    pub async fn first_entry(&self, room: &RoomId) -> ClusterResult<Option<EntryId>> {
        let reply: Value = redis::cmd("XRANGE")
            .arg(Keys::of(room).log)
            .arg("-")
            .arg("+")
            .arg("COUNT")
            .arg(1)
            .query_async(&mut self.conn())
            .await?;
        let Value::Array(list) = reply else {
            return Err(ClusterError::Reply(format!("XRANGE: {reply:?}")));
        };
        match list.into_iter().next() {
            None => Ok(None),
            Some(Value::Array(pair)) => match pair.into_iter().next().and_then(entry::entry_id) {
                Some(id) => Ok(Some(id)),
                None => Err(ClusterError::Reply("an entry without an id".into())),
            },
            Some(other) => Err(ClusterError::Reply(format!("XRANGE entry: {other:?}"))),
        }
    }

    /// The id of the newest entry of the room's log, if any.
    pub async fn last_entry(&self, room: &RoomId) -> ClusterResult<Option<EntryId>> {
        let reply: Value = redis::cmd("XREVRANGE")
            .arg(Keys::of(room).log)
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(1)
            .query_async(&mut self.conn())
            .await?;
        let Value::Array(list) = reply else {
            return Err(ClusterError::Reply(format!("XREVRANGE: {reply:?}")));
        };
        match list.into_iter().next() {
            None => Ok(None),
            Some(Value::Array(pair)) => match pair.into_iter().next().and_then(entry::entry_id) {
                Some(id) => Ok(Some(id)),
                None => Err(ClusterError::Reply("an entry without an id".into())),
            },
            Some(other) => Err(ClusterError::Reply(format!("XREVRANGE entry: {other:?}"))),
        }
    }

    /// Drops the log's entries older than `min` (`XTRIM MINID`); returns
    /// how many went.
    pub async fn trim(&self, room: &RoomId, min: EntryId) -> ClusterResult<u64> {
        Ok(redis::cmd("XTRIM")
            .arg(Keys::of(room).log)
            .arg("MINID")
            .arg(min.to_string())
            .query_async(&mut self.conn())
            .await?)
    }

    /// Takes the room's compaction lease for `ttl` if nobody holds it, so
    /// one node at a time snapshots the room.
    pub async fn take_lease(&self, room: &RoomId, ttl: Duration) -> ClusterResult<bool> {
        let taken: Option<String> = redis::cmd("SET")
            .arg(Keys::of(room).compacting)
            .arg(self.node().as_str())
            .arg("NX")
            .arg("PX")
            .arg(ttl_ms(ttl))
            .query_async(&mut self.conn())
            .await?;
        Ok(taken.is_some())
    }

    /// Gives the room's compaction lease back, if this node still holds it.
    pub async fn release_lease(&self, room: &RoomId) -> ClusterResult<()> {
        let _: i64 = self
            .scripts
            .node_release
            .key(Keys::of(room).compacting)
            .arg(self.node().as_str())
            .invoke_async(&mut self.conn())
            .await?;
        Ok(())
    }

    /// The config this cluster runs with.
    pub fn config(&self) -> &ClusterConfig {
        &self.config
    }

    /// Stores the room's snapshot, which contains every log entry up to
    /// `at`, unless a newer one is stored. Returns whether it was stored.
    pub async fn put_snapshot(
        &self,
        room: &RoomId,
        doc: &[u8],
        at: EntryId,
    ) -> ClusterResult<bool> {
        let stored: i64 = self
            .scripts
            .put_snapshot
            .key(Keys::of(room).snap)
            .arg(doc)
            .arg(at.to_string())
            .invoke_async(&mut self.conn())
            .await?;
        if let Some(ttl) = self.config.room_ttl {
            let mut pipe = redis::pipe();
            expire(&mut pipe, &Keys::of(room), ttl);
            let () = pipe.query_async(&mut self.conn()).await?;
        }
        Ok(stored == 1)
    }

    /// Whether Redis holds the room's document (its log or its snapshot);
    /// with a room ttl, also pushes back the expiry of the room's keys (a
    /// room with members never expires).
    pub async fn touch_room(&self, room: &RoomId) -> ClusterResult<bool> {
        let keys = Keys::of(room);
        let mut pipe = redis::pipe();
        pipe.cmd("EXISTS").arg(&keys.log).arg(&keys.snap);
        if let Some(ttl) = self.config.room_ttl {
            expire(&mut pipe, &keys, ttl);
        }
        let (exists,): (u64,) = pipe.query_async(&mut self.conn()).await?;
        Ok(exists > 0)
    }

    /// Writes the room's peer bindings again (`peers`, `sessions`): for a
    /// Redis that came back without them.
    pub async fn restore_peers(&self, room: &RoomId, peers: &[(u64, String)]) -> ClusterResult<()> {
        if peers.is_empty() {
            return Ok(());
        }
        let keys = Keys::of(room);
        let mut pipe = redis::pipe();
        for (peer, session) in peers {
            pipe.cmd("HSET")
                .arg(&keys.peers)
                .arg(*peer)
                .arg(session)
                .ignore();
            if !session.is_empty() {
                pipe.cmd("SADD").arg(&keys.sessions).arg(session).ignore();
            }
        }
        if let Some(ttl) = self.config.room_ttl {
            expire(&mut pipe, &keys, ttl);
        }
        let () = pipe.query_async(&mut self.conn()).await?;
        Ok(())
    }

    /// The last log id the room's snapshot contains, if it has one.
    pub async fn snapshot_at(&self, room: &RoomId) -> ClusterResult<Option<EntryId>> {
        let at: Option<String> = redis::cmd("HGET")
            .arg(Keys::of(room).snap)
            .arg("at")
            .query_async(&mut self.conn())
            .await?;
        at.map(|a| a.parse().map_err(ClusterError::Reply))
            .transpose()
    }

    /// The room's snapshot and the last log id it contains, if any.
    pub async fn snapshot(&self, room: &RoomId) -> ClusterResult<Option<(Vec<u8>, EntryId)>> {
        let (doc, at): (Option<Vec<u8>>, Option<String>) = redis::cmd("HMGET")
            .arg(Keys::of(room).snap)
            .arg("doc")
            .arg("at")
            .query_async(&mut self.conn())
            .await?;
        match (doc, at) {
            (Some(doc), Some(at)) => {
                let at = at.parse().map_err(ClusterError::Reply)?;
                Ok(Some((doc, at)))
            }
            _ => Ok(None),
        }
    }

    /// A member id no other node gives out.
    pub async fn next_member_id(&self) -> ClusterResult<u64> {
        Ok(redis::cmd("INCR")
            .arg(NEXT_USER)
            .query_async(&mut self.conn())
            .await?)
    }

    /// Claims `name` in the room for this node (docs/scale-out.md, "Members
    /// across nodes"): expired members are swept first (each with `left`
    /// in the log), a live one with the `presented` session moves here, a
    /// new one is recorded with `session`, `record` and `id` and logged as
    /// `joined`. At most `max_members` members.
    #[allow(clippy::too_many_arguments)]
    pub async fn claim_member(
        &self,
        room: &RoomId,
        name: &str,
        presented: Option<&str>,
        session: &str,
        record: &[u8],
        id: u64,
        max_members: usize,
    ) -> ClusterResult<Claim> {
        // The scripts keep "ID SESSION NODE" in one field.
        if session.is_empty() || session.contains(char::is_whitespace) {
            return Err(ClusterError::Reply(
                "a session token must be non-empty and without spaces".into(),
            ));
        }
        let k = Keys::of(room);
        let (status, record): (String, Vec<u8>) = self
            .scripts
            .claim
            .key(&k.who)
            .key(&k.members)
            .key(&k.alive)
            .key(&k.log)
            .arg(name)
            .arg(presented.unwrap_or(""))
            .arg(session)
            .arg(record)
            .arg(ttl_ms(self.config.member_ttl))
            .arg(max_members)
            .arg(self.node().as_str())
            .arg(id)
            .invoke_async(&mut self.conn())
            .await?;
        match status.as_str() {
            "joined" => Ok(Claim::Joined(record)),
            "resumed" => Ok(Claim::Resumed(record)),
            "taken" => Ok(Claim::Taken),
            "bad_session" => Ok(Claim::BadSession),
            "full" => Ok(Claim::Full),
            other => Err(ClusterError::Reply(format!("claim: {other:?}"))),
        }
    }

    /// Removes `name` from the room if this node still holds it, with a
    /// `left` entry carrying `reason`. Returns whether it did.
    pub async fn release_member(
        &self,
        room: &RoomId,
        name: &str,
        reason: &str,
    ) -> ClusterResult<bool> {
        let k = Keys::of(room);
        let removed: i64 = self
            .scripts
            .release
            .key(&k.who)
            .key(&k.members)
            .key(&k.alive)
            .key(&k.log)
            .arg(name)
            .arg(self.node().as_str())
            .arg(reason)
            .invoke_async(&mut self.conn())
            .await?;
        Ok(removed == 1)
    }

    /// Removes every member this node holds in the room, each with a
    /// `left` entry carrying `reason` (at the node's stop). Returns how
    /// many.
    pub async fn release_node_members(&self, room: &RoomId, reason: &str) -> ClusterResult<u64> {
        let k = Keys::of(room);
        Ok(self
            .scripts
            .release_node
            .key(&k.who)
            .key(&k.members)
            .key(&k.alive)
            .key(&k.log)
            .arg(self.node().as_str())
            .arg(reason)
            .invoke_async(&mut self.conn())
            .await?)
    }

    /// Pushes back the expiry of this node's members `names` in the room;
    /// returns those that are no longer this node's.
    pub async fn refresh_members(
        &self,
        room: &RoomId,
        names: &[&str],
    ) -> ClusterResult<Vec<String>> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let k = Keys::of(room);
        let mut inv = self.scripts.refresh.key(&k.who);
        inv.key(&k.alive)
            .arg(self.node().as_str())
            .arg(ttl_ms(self.config.member_ttl));
        for name in names {
            inv.arg(*name);
        }
        Ok(inv.invoke_async(&mut self.conn()).await?)
    }

    /// Removes the room's expired members (each with `left` in the log,
    /// under the node that held the member); returns their names.
    pub async fn sweep_members(&self, room: &RoomId) -> ClusterResult<Vec<String>> {
        let k = Keys::of(room);
        Ok(self
            .scripts
            .sweep
            .key(&k.who)
            .key(&k.members)
            .key(&k.alive)
            .key(&k.log)
            .invoke_async(&mut self.conn())
            .await?)
    }

    /// The Loro peer ids the nodes gave out in the room, and their owners
    /// (skipping any that do not decode).
    pub async fn peers(&self, room: &RoomId) -> ClusterResult<Vec<(u64, String)>> {
        let all: Vec<(String, String)> = redis::cmd("HGETALL")
            .arg(Keys::of(room).peers)
            .query_async(&mut self.conn())
            .await?;
        Ok(all
            .into_iter()
            .filter_map(|(peer, session)| Some((peer.parse().ok()?, session)))
            .collect())
    }

    /// Whether `session` owns peer ids in the room (on any node): a member
    /// coming back with it keeps it, and so its ids.
    pub async fn owns_peers(&self, room: &RoomId, session: &str) -> ClusterResult<bool> {
        let n: i64 = redis::cmd("SISMEMBER")
            .arg(Keys::of(room).sessions)
            .arg(session)
            .query_async(&mut self.conn())
            .await?;
        Ok(n == 1)
    }

    /// The node holding `name` in the room now, if anyone does.
    pub async fn holder(&self, room: &RoomId, name: &str) -> ClusterResult<Option<String>> {
        let who: Option<String> = redis::cmd("HGET")
            .arg(Keys::of(room).who)
            .arg(name)
            .query_async(&mut self.conn())
            .await?;
        Ok(who.and_then(|w| w.rsplit(' ').next().map(str::to_owned)))
    }

    /// The room's members and their records, in no particular order.
    pub async fn members(&self, room: &RoomId) -> ClusterResult<Vec<(String, Vec<u8>)>> {
        let k = Keys::of(room);
        Ok(redis::cmd("HGETALL")
            .arg(&k.members)
            .query_async(&mut self.conn())
            .await?)
    }

    /// A Pub/Sub connection for the rooms' presence channels: its sink
    /// (subscribe, unsubscribe) and its stream of `(room, payload)`.
    pub async fn presence(
        &self,
    ) -> ClusterResult<(
        redis::aio::PubSubSink,
        impl futures::Stream<Item = (RoomId, Vec<u8>)> + use<>,
    )> {
        use futures::StreamExt as _;
        let (sink, stream) = self.client.get_async_pubsub().await?.split();
        let stream = stream.filter_map(|msg| {
            let room = presence_room(msg.get_channel_name());
            std::future::ready(room.map(|r| (r, msg.get_payload_bytes().to_vec())))
        });
        Ok((sink, stream))
    }

    /// The name of a room's presence channel.
    pub fn presence_channel(room: &RoomId) -> String {
        Keys::of(room).presence
    }

    /// A reader with a connection of its own.
    pub async fn reader(&self) -> ClusterResult<Reader> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(COMMAND_TIMEOUT))
            .set_response_timeout(Some(MAX_BLOCK + COMMAND_TIMEOUT));
        let mut conn = self
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        let id: i64 = redis::cmd("CLIENT")
            .arg("ID")
            .query_async(&mut conn)
            .await?;
        Ok(Reader {
            conn,
            id,
            max_entry_bytes: self.config.max_entry_bytes,
        })
    }

    /// Ends a [`Reader::read`] that is blocked now (its answer: no
    /// entries), so a room added to the node's set is read from at once.
    /// Returns whether the reader was blocked.
    pub async fn unblock(&self, reader_id: i64) -> ClusterResult<bool> {
        let n: i64 = redis::cmd("CLIENT")
            .arg("UNBLOCK")
            .arg(reader_id)
            .query_async(&mut self.conn())
            .await?;
        Ok(n == 1)
    }
}

/// The command connection, counting each round trip (a command, a
/// pipeline, a script's `EVALSHA`) in a histogram.
struct Timed<'a> {
    conn: ConnectionManager,
    rtt: &'a crate::metrics::Histogram,
}

impl redis::aio::ConnectionLike for Timed<'_> {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a redis::Cmd) -> redis::RedisFuture<'a, Value> {
        Box::pin(async move {
            let started = Instant::now();
            let reply = self.conn.req_packed_command(cmd).await;
            self.rtt.observe(started.elapsed());
            reply
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            let started = Instant::now();
            let replies = self.conn.req_packed_commands(pipeline, offset, count).await;
            self.rtt.observe(started.elapsed());
            replies
        })
    }

    fn get_db(&self) -> i64 {
        self.conn.get_db()
    }
}

/// A node's reader: `XREAD BLOCK` over the logs of the rooms it hosts, on
/// a connection that nothing else waits behind.
pub struct Reader {
    conn: MultiplexedConnection,
    id: i64,
    max_entry_bytes: usize,
}

impl fmt::Debug for Reader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reader")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl Reader {
    /// Its connection's id, for [`Cluster::unblock`].
    pub fn id(&self) -> i64 {
        self.id
    }

    /// The entries after each room's cursor, at most `count` per room,
    /// waiting up to `block` (at most [`MAX_BLOCK`]) for the first. Only
    /// the rooms that have entries are in the answer; none when the wait
    /// ended (or [`Cluster::unblock`] ended it).
    pub async fn read(
        &mut self,
        cursors: &[(RoomId, EntryId)],
        block: Duration,
        count: usize,
    ) -> ClusterResult<Vec<Batch>> {
        if cursors.is_empty() {
            return Ok(Vec::new());
        }
        let block = block.min(MAX_BLOCK);
        let mut cmd = redis::cmd("XREAD");
        cmd.arg("COUNT").arg(count.max(1));
        // BLOCK 0 would wait forever: no wait is no BLOCK at all.
        let block_ms = u64::try_from(block.as_millis()).unwrap_or(0);
        if block_ms > 0 {
            cmd.arg("BLOCK").arg(block_ms);
        }
        cmd.arg("STREAMS");
        for (room, _) in cursors {
            cmd.arg(Keys::of(room).log);
        }
        for (_, id) in cursors {
            cmd.arg(id.to_string());
        }
        let reply: Value = cmd.query_async(&mut self.conn).await?;
        let streams = match reply {
            Value::Nil => return Ok(Vec::new()),
            Value::Array(streams) => streams
                .into_iter()
                .map(|s| match s {
                    Value::Array(mut kv) if kv.len() == 2 => {
                        let entries = kv.pop().unwrap_or(Value::Nil);
                        let key = kv.pop().unwrap_or(Value::Nil);
                        Ok((key, entries))
                    }
                    other => Err(ClusterError::Reply(format!("XREAD stream: {other:?}"))),
                })
                .collect::<ClusterResult<Vec<_>>>()?,
            Value::Map(m) => m,
            other => return Err(ClusterError::Reply(format!("XREAD: {other:?}"))),
        };
        let mut batches = Vec::with_capacity(streams.len());
        for (key, entries) in streams {
            let key = entry::bytes(key).unwrap_or_default();
            let Some((room, from)) = cursors
                .iter()
                .find(|(room, _)| Keys::of(room).log.as_bytes() == key.as_slice())
            else {
                return Err(ClusterError::Reply(format!(
                    "XREAD answered for a stream not asked for: {:?}",
                    String::from_utf8_lossy(&key)
                )));
            };
            batches.push(read_entries(
                room.clone(),
                *from,
                entries,
                self.max_entry_bytes,
            )?);
        }
        Ok(batches)
    }
}

/// `[[k, v], [k, v]]` or `[k, v, k, v]` as pairs.
fn pairs(a: Vec<Value>) -> Vec<(Value, Value)> {
    let mut out = Vec::with_capacity(a.len() / 2);
    let mut it = a.into_iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        out.push((k, v));
    }
    out
}

/// A list of `[id, [field, value, ...]]` as a batch, skipping (and
/// logging) entries that do not decode.
fn read_entries(
    room: RoomId,
    from: EntryId,
    reply: Value,
    max_data: usize,
) -> ClusterResult<Batch> {
    let list = match reply {
        Value::Array(list) => list,
        Value::Nil => Vec::new(),
        other => return Err(ClusterError::Reply(format!("entries: {other:?}"))),
    };
    let mut batch = Batch {
        room,
        entries: Vec::with_capacity(list.len()),
        last: from,
    };
    for item in list {
        let Value::Array(mut pair) = item else {
            return Err(ClusterError::Reply(
                "an entry that is not [id, fields]".into(),
            ));
        };
        if pair.len() != 2 {
            return Err(ClusterError::Reply(
                "an entry that is not [id, fields]".into(),
            ));
        }
        let fields = pair.pop().unwrap_or(Value::Nil);
        let id = entry::entry_id(pair.pop().unwrap_or(Value::Nil))
            .ok_or_else(|| ClusterError::Reply("an entry without an id".into()))?;
        batch.last = id;
        let fields = match fields {
            Value::Array(f) => f,
            Value::Map(m) => m.into_iter().flat_map(|(k, v)| [k, v]).collect(),
            _ => Vec::new(),
        };
        match Entry::read_fields(fields, max_data) {
            Ok(e) => batch.entries.push((id, e)),
            Err(why) => {
                tracing::warn!(room = %batch.room, entry = %id, "skipping a log entry with {why}");
            }
        }
    }
    Ok(batch)
}

/// `--room-ttl`: the room's keys expire `ttl` from now (replies ignored).
fn expire(pipe: &mut redis::Pipeline, keys: &Keys, ttl: Duration) {
    for key in keys.stored() {
        pipe.cmd("PEXPIRE").arg(key).arg(ttl_ms(ttl)).ignore();
    }
}

fn ttl_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}
