//! [`Client`]: a [`Replica`] and a [`Connection`] driven by a task, for
//! tests, benchmarks and bots.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use collab_doc::{DocError, TextChange};
use collab_protocol::{ClientMsg, ErrorCode, ProtocolError};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::{
    ClientError, ClientEvent, ConnectOptions, Connection, Effect, Replica, TransportEvent,
    TransportEvents,
};

/// How many events [`ClientState::events`] keeps (oldest dropped first).
pub const EVENT_LOG_LEN: usize = 4096;

/// Everything a [`Client`] knows, as its predicates see it.
#[derive(Debug)]
pub struct ClientState {
    replica: Replica,
    connected: bool,
    events: VecDeque<ClientEvent>,
    closed: Option<Option<ProtocolError>>,
    mirror: Option<Vec<char>>,
    mirror_broken: Option<String>,
    disconnects: u64,
    /// When the server last acked an update or welcomed us.
    last_progress: tokio::time::Instant,
    resends: u64,
    /// The seqs of the last [`EVENT_LOG_LEN`] acks, oldest first.
    acks: VecDeque<u64>,
}

impl ClientState {
    pub fn replica(&self) -> &Replica {
        &self.replica
    }
    pub fn text(&self) -> String {
        self.replica.text()
    }
    /// A WebSocket is open (the welcome may not have come yet).
    pub fn connected(&self) -> bool {
        self.connected
    }
    /// Welcomed, every edit acked, nothing waiting.
    pub fn is_synced(&self) -> bool {
        self.connected && self.replica.is_synced()
    }
    pub fn welcomes(&self) -> u64 {
        self.replica.welcomes()
    }
    /// How many times unacked updates were resent after acks stalled.
    pub fn resends(&self) -> u64 {
        self.resends
    }
    /// How many times the transport reported a drop.
    pub fn disconnects(&self) -> u64 {
        self.disconnects
    }
    /// The last [`EVENT_LOG_LEN`] events, oldest first (without
    /// [`ClientEvent::DocChanged`] and [`ClientEvent::Acked`], which are
    /// too frequent to keep).
    pub fn events(&self) -> impl Iterator<Item = &ClientEvent> {
        self.events.iter()
    }
    /// The error events received, oldest first.
    pub fn errors(&self) -> Vec<(ErrorCode, Option<u64>)> {
        self.events
            .iter()
            .filter_map(|e| match e {
                ClientEvent::Error { code, seq, .. } => Some((*code, *seq)),
                _ => None,
            })
            .collect()
    }
    /// The seqs the server acked, the last [`EVENT_LOG_LEN`] of them,
    /// oldest first (to check what was accepted, e.g. of raw updates sent
    /// with [`Client::send_raw`]).
    pub fn acks(&self) -> impl Iterator<Item = u64> + '_ {
        self.acks.iter().copied()
    }
    /// `Some` once the transport stopped for good, with the fatal error if
    /// there was one.
    pub fn closed(&self) -> Option<&Option<ProtocolError>> {
        self.closed.as_ref()
    }
    /// With [`ClientBuilder::mirror`]: the text rebuilt from the change
    /// deltas alone, as an editor's buffer would be.
    pub fn mirror(&self) -> Option<String> {
        self.mirror.as_ref().map(|m| m.iter().collect())
    }
    /// With [`ClientBuilder::mirror`]: a delta that did not fit the mirror.
    pub fn mirror_error(&self) -> Option<&str> {
        self.mirror_broken.as_deref()
    }

    fn drain_changes(&mut self) {
        let changes = self.replica.take_changes();
        let Some(mirror) = self.mirror.as_mut() else {
            return;
        };
        for delta in changes {
            if let Err(e) = apply_delta(mirror, &delta) {
                self.mirror_broken.get_or_insert(e);
            }
        }
    }

    fn log(&mut self, event: ClientEvent) {
        if let ClientEvent::Acked { seq, .. } = event {
            if self.acks.len() >= EVENT_LOG_LEN {
                self.acks.pop_front();
            }
            self.acks.push_back(seq);
            return;
        }
        if matches!(event, ClientEvent::DocChanged) {
            return;
        }
        if self.events.len() >= EVENT_LOG_LEN {
            self.events.pop_front();
        }
        self.events.push_back(event);
    }
}

/// Applies one delta to a buffer of chars (what an editor does with
/// [`Replica::take_changes`]).
pub fn apply_delta(text: &mut Vec<char>, delta: &[TextChange]) -> Result<(), String> {
    let mut at = 0usize;
    for step in delta {
        match step {
            TextChange::Retain(n) => at += n,
            TextChange::Insert(s) => {
                if at > text.len() {
                    return Err(format!("insert at {at} past the end ({})", text.len()));
                }
                let chars: Vec<char> = s.chars().collect();
                let n = chars.len();
                text.splice(at..at, chars);
                at += n;
            }
            TextChange::Delete(n) => {
                if at + n > text.len() {
                    return Err(format!("delete {n} at {at} past the end ({})", text.len()));
                }
                text.drain(at..at + n);
            }
        }
    }
    Ok(())
}

struct Shared {
    state: Mutex<ClientState>,
    changed: watch::Sender<u64>,
    room: String,
    user: String,
    token: Option<String>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, ClientState> {
        // A panic while holding the lock can only come from a bug here; the
        // state is still consistent enough to read.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
    fn bump(&self) {
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }
}

/// Options for [`Client`]; start with [`Client::builder`].
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    url: String,
    room: String,
    user: String,
    token: Option<String>,
    seed: Option<String>,
    options: ConnectOptions,
    timeout: Duration,
    mirror: bool,
    wait_welcome: bool,
    resend_after: Duration,
}

impl ClientBuilder {
    /// The access token, when the server requires one.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }
    /// Seed the room with this text if it is empty at the first welcome.
    pub fn seed(mut self, text: impl Into<String>) -> Self {
        self.seed = Some(text.into());
        self
    }
    pub fn options(mut self, options: ConnectOptions) -> Self {
        self.options = options;
        self
    }
    /// How long `join` and each `wait_*` wait at most (default 30 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
    /// Keep a buffer rebuilt only from the change deltas, to check them.
    pub fn mirror(mut self, on: bool) -> Self {
        self.mirror = on;
        self
    }
    /// Resend unacked updates when no ack came for this long (default 2 s;
    /// see [`Replica::resend_unacked`]).
    pub fn resend_after(mut self, after: Duration) -> Self {
        self.resend_after = after;
        self
    }
    /// Return from `join` at once instead of after the first welcome.
    pub fn no_wait(mut self) -> Self {
        self.wait_welcome = false;
        self
    }

    /// Connects and (unless [`Self::no_wait`]) waits for the first welcome.
    /// A fatal refusal (name taken...) is [`ClientError::Refused`].
    pub async fn join(self) -> Result<Client, ClientError> {
        let (conn, events) = Connection::open(&self.url, self.options.clone())?;
        let mut replica = Replica::new();
        if let Some(seed) = &self.seed {
            let _ = replica.seed(seed);
        }
        let (changed, _) = watch::channel(0);
        let shared = Arc::new(Shared {
            state: Mutex::new(ClientState {
                replica,
                connected: false,
                events: VecDeque::new(),
                closed: None,
                mirror: self.mirror.then(Vec::new),
                mirror_broken: None,
                disconnects: 0,
                last_progress: tokio::time::Instant::now(),
                resends: 0,
                acks: VecDeque::new(),
            }),
            changed,
            room: self.room,
            user: self.user,
            token: self.token,
        });
        let task = tokio::spawn(drive(
            Arc::clone(&shared),
            conn.clone(),
            events,
            self.resend_after,
        ));
        let client = Client {
            shared,
            conn,
            task,
            timeout: self.timeout,
        };
        if self.wait_welcome {
            client
                .wait_for(|s| s.welcomes() > 0 || s.closed().is_some())
                .await?;
            if let Some(Some(e)) = client.state().closed() {
                return Err(ClientError::Refused(e.clone()));
            }
        }
        Ok(client)
    }
}

/// A client in one room: a [`Replica`] and a [`Connection`] driven by a
/// background task. Made for tests, benchmarks and bots:
///
/// ```no_run
/// # async fn demo() -> Result<(), collab_client::ClientError> {
/// use collab_client::Client;
/// let alice = Client::join("127.0.0.1:7777", "room", "alice").await?;
/// alice.edit(0, 0, "hello")?;
/// alice.wait_synced().await?; // acked by the server
/// let bob = Client::join("127.0.0.1:7777", "room", "bob").await?;
/// assert_eq!(bob.text(), "hello");
/// # Ok(()) }
/// ```
///
/// Every wait is bounded by the builder's timeout. Dropping the client
/// closes its connection.
pub struct Client {
    shared: Arc<Shared>,
    conn: Connection,
    task: JoinHandle<()>,
    timeout: Duration,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("user", &self.shared.user)
            .field("room", &self.shared.room)
            .finish_non_exhaustive()
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.conn.close();
    }
}

async fn drive(
    shared: Arc<Shared>,
    conn: Connection,
    mut events: TransportEvents,
    resend_after: Duration,
) {
    let period = (resend_after / 4).max(Duration::from_millis(10));
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let event = tokio::select! {
            event = events.recv() => match event {
                Some(event) => event,
                None => break,
            },
            _ = tick.tick() => {
                let mut st = shared.lock();
                if st.replica.unacked_seqs().next().is_none() {
                    // Nothing waits: the clock starts with the next update.
                    st.last_progress = tokio::time::Instant::now();
                } else if st.last_progress.elapsed() >= resend_after {
                    if let Some(m) = st.replica.resend_unacked() {
                        conn.send(m);
                        st.resends += 1;
                    }
                    st.last_progress = tokio::time::Instant::now();
                }
                continue;
            }
        };
        {
            let mut st = shared.lock();
            match event {
                TransportEvent::Connected => {
                    st.connected = true;
                    let join =
                        st.replica
                            .join_msg(&shared.room, &shared.user, shared.token.as_deref());
                    conn.send(join);
                }
                TransportEvent::Message(msg) => {
                    if matches!(
                        msg,
                        collab_protocol::ServerMsg::Ack { .. }
                            | collab_protocol::ServerMsg::Welcome(_)
                            | collab_protocol::ServerMsg::DocPart { .. }
                    ) {
                        st.last_progress = tokio::time::Instant::now();
                    }
                    for effect in st.replica.handle(msg) {
                        match effect {
                            Effect::Send(m) => {
                                conn.send(m);
                            }
                            Effect::Event(e) => st.log(e),
                        }
                    }
                    st.drain_changes();
                }
                TransportEvent::Disconnected { .. } => {
                    st.connected = false;
                    st.disconnects += 1;
                    st.replica.on_disconnect();
                }
                TransportEvent::Closed { error } => {
                    st.connected = false;
                    st.replica.on_disconnect();
                    st.closed = Some(error);
                }
            }
        }
        shared.bump();
    }
    let mut st = shared.lock();
    st.closed.get_or_insert(None);
    drop(st);
    shared.bump();
}

impl Client {
    /// Joins `room` as `user` with default options; see [`Self::builder`].
    pub async fn join(url: &str, room: &str, user: &str) -> Result<Client, ClientError> {
        Self::builder(url, room, user).join().await
    }

    pub fn builder(url: &str, room: &str, user: &str) -> ClientBuilder {
        ClientBuilder {
            url: url.to_owned(),
            room: room.to_owned(),
            user: user.to_owned(),
            token: None,
            seed: None,
            options: ConnectOptions::default(),
            timeout: Duration::from_secs(30),
            mirror: false,
            wait_welcome: true,
            resend_after: Duration::from_secs(2),
        }
    }

    /// The state, locked: keep the guard short (the background task waits
    /// for it).
    pub fn state(&self) -> MutexGuard<'_, ClientState> {
        self.shared.lock()
    }

    /// Runs `f` on the replica and sends what it returns (for anything the
    /// other methods do not cover).
    pub fn with_replica<R>(&self, f: impl FnOnce(&mut Replica) -> (R, Vec<ClientMsg>)) -> R {
        let mut st = self.shared.lock();
        let (r, msgs) = f(&mut st.replica);
        for m in msgs {
            self.conn.send(m);
        }
        st.drain_changes();
        drop(st);
        self.shared.bump();
        r
    }

    /// A local edit in chars, sent at once when live.
    pub fn edit(&self, pos: usize, delete: usize, insert: &str) -> Result<(), DocError> {
        self.with_replica(|r| match r.edit(pos, delete, insert) {
            Ok(m) => (Ok(()), m.into_iter().collect()),
            Err(e) => (Err(e), Vec::new()),
        })
    }

    /// A local edit that is not sent until [`Self::flush`].
    pub fn edit_local(&self, pos: usize, delete: usize, insert: &str) -> Result<(), DocError> {
        self.with_replica(|r| (r.edit_local(pos, delete, insert), Vec::new()))
    }

    /// Sends the edits made with [`Self::edit_local`] as one update.
    pub fn flush(&self) {
        self.with_replica(|r| ((), r.flush().into_iter().collect()));
    }

    /// Undoes my last edit; false when there was nothing to undo.
    pub fn undo(&self) -> bool {
        self.with_replica(|r| {
            let could = r.can_undo();
            let m = r.undo();
            (could, m.into_iter().collect())
        })
    }

    /// Redoes my last undone edit; false when there was nothing to redo.
    pub fn redo(&self) -> bool {
        self.with_replica(|r| {
            let could = r.can_redo();
            let m = r.redo();
            (could, m.into_iter().collect())
        })
    }

    /// Asks the server to seed the room's empty document with `text`.
    pub fn seed(&self, text: &str) {
        self.with_replica(|r| ((), r.seed(text).into_iter().collect()));
    }

    /// Sends my cursor (and selection anchor), in chars.
    pub fn presence(&self, cursor: usize, anchor: Option<usize>) {
        self.with_replica(|r| ((), vec![r.presence(cursor, anchor)]));
    }

    pub fn chat(&self, text: &str) {
        self.send_raw(ClientMsg::Chat { text: text.into() });
    }

    /// Sends any event as is (tests of hostile input).
    pub fn send_raw(&self, msg: ClientMsg) -> bool {
        self.conn.send(msg)
    }

    /// A fresh update seq of this client's sequence (for [`Self::send_raw`]).
    pub fn next_seq(&self) -> u64 {
        self.shared.lock().replica.next_seq()
    }

    pub fn text(&self) -> String {
        self.shared.lock().text()
    }

    pub fn version(&self) -> Vec<u8> {
        self.shared.lock().replica.doc().version()
    }

    pub fn unsent_edits(&self) -> usize {
        self.shared.lock().replica.unsent_edits()
    }

    /// Simulates a network drop: the connection closes and stays closed
    /// until [`Self::reconnect`]. Edits made meanwhile are local.
    pub fn disconnect(&self) {
        self.conn.suspend();
    }

    /// Connects again; the replica resyncs by version on the welcome.
    pub fn reconnect(&self) {
        self.conn.resume();
    }

    /// Like [`Self::disconnect`], then waits until the client knows it is
    /// offline (so that the next edits are surely offline edits).
    pub async fn go_offline(&self) -> Result<(), ClientError> {
        let before = self.state().disconnects();
        self.disconnect();
        self.wait_for(|s| s.disconnects() > before).await
    }

    /// Like [`Self::reconnect`], then waits for the welcome and for every
    /// edit to be acked.
    pub async fn go_online(&self) -> Result<(), ClientError> {
        let before = self.state().welcomes();
        self.reconnect();
        self.wait_for(|s| s.welcomes() > before).await?;
        self.wait_synced().await
    }

    /// Waits until `pred` holds for the state, re-checking after every
    /// change; fails after the builder's timeout or if the transport closed
    /// for good first.
    pub async fn wait_for(&self, pred: impl Fn(&ClientState) -> bool) -> Result<(), ClientError> {
        self.wait_for_within(self.timeout, pred).await
    }

    /// [`Self::wait_for`] with its own timeout.
    pub async fn wait_for_within(
        &self,
        timeout: Duration,
        pred: impl Fn(&ClientState) -> bool,
    ) -> Result<(), ClientError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut rx = self.shared.changed.subscribe();
        loop {
            rx.borrow_and_update();
            {
                let st = self.shared.lock();
                if pred(&st) {
                    return Ok(());
                }
                if st.closed.is_some() {
                    return Err(ClientError::Closed(format!(
                        "{} closed while waiting: {:?}",
                        self.shared.user, st.closed
                    )));
                }
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return Err(ClientError::Closed("client dropped".into())),
                Err(_) => {
                    let st = self.shared.lock();
                    return Err(ClientError::Timeout(format!(
                        "{} waited {timeout:?}: connected={} synced={} {:?}",
                        self.shared.user,
                        st.connected,
                        st.is_synced(),
                        st.replica
                    )));
                }
            }
        }
    }

    /// Waits until welcomed with every edit acked.
    pub async fn wait_synced(&self) -> Result<(), ClientError> {
        self.wait_for(ClientState::is_synced).await
    }

    /// Waits until the text equals `text`.
    pub async fn wait_text(&self, text: &str) -> Result<(), ClientError> {
        self.wait_for(|s| s.text() == text).await
    }

    /// Waits until this replica has everything `version` has.
    pub async fn wait_includes(&self, version: &[u8]) -> Result<(), ClientError> {
        self.wait_for(|s| s.replica.doc().includes(version).unwrap_or(false))
            .await
    }

    /// Leaves the room and closes the connection; waits until closed.
    pub async fn close(self) -> Result<(), ClientError> {
        self.conn.close();
        self.wait_for(|s| s.closed().is_some())
            .await
            .or_else(|e| match e {
                ClientError::Closed(_) => Ok(()),
                e => Err(e),
            })
    }

    /// The transport handle (to send raw events or suspend).
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// Whether the background task has ended.
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}
