//! [`Client`]: a [`Session`] and a [`Connection`] driven by a task, for
//! tests and bots. The session does the work; this module only carries its
//! effects out and waits.

use std::sync::Arc;
use std::time::Duration;

use collab_doc::DocError;
use collab_protocol::ClientMsg;
use parking_lot::Mutex;
use tokio::sync::watch;

use crate::{
    ClientError, ConnectOptions, Connection, Effect, JoinAs, Replica, Session, TransportEvent,
    TransportEvents,
};

/// Everything a [`Client`] knows, as its predicates see it.
#[derive(Debug)]
pub struct ClientState {
    session: Session,
    #[cfg(feature = "test-harness")]
    pub(crate) harness: crate::harness::Harness,
}

/// A predicate reads the session (and through it the replica) directly:
/// `s.text()`, `s.connected()`, `s.welcomes()`, `s.is_synced()`...
impl std::ops::Deref for ClientState {
    type Target = Session;
    fn deref(&self) -> &Session {
        &self.session
    }
}

impl ClientState {
    /// Sends the messages among `effects` (the events are for the test
    /// harness alone), then drains the text changes, which the replica
    /// keeps until then.
    fn carry_out(&mut self, effects: impl IntoIterator<Item = Effect>, conn: &Connection) {
        for effect in effects {
            match effect {
                Effect::Send(m) => _ = conn.send(m),
                Effect::Event(_event) => {
                    #[cfg(feature = "test-harness")]
                    self.harness.log(_event);
                }
            }
        }
        let _changes = self.session.take_changes();
        #[cfg(feature = "test-harness")]
        self.harness.mirror(_changes);
    }
}

/// The clock the [`Session`] is given: tokio's, so paused time works.
fn now() -> std::time::Instant {
    tokio::time::Instant::now().into_std()
}

/// What a [`Client`] and its driver task share.
#[derive(Debug)]
struct Shared {
    state: Mutex<ClientState>,
    /// Sent after every change of the state: the waits look again, and so
    /// does the driver at its timer (an update sent from outside it starts
    /// a wait for its ack).
    changed: watch::Sender<()>,
}

/// Options for [`Client`]; start with [`Client::builder`].
#[derive(Debug)]
pub struct ClientBuilder {
    url: String,
    join: JoinAs,
    /// Holds the seed until the first welcome.
    replica: Replica,
    options: ConnectOptions,
    timeout: Duration,
    #[cfg(feature = "test-harness")]
    mirror: bool,
    resend_after: Duration,
}

impl ClientBuilder {
    /// The access token, when the server requires one.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.join.token = Some(token.into());
        self
    }
    /// Seed the room with this text if it is empty at the first welcome.
    pub fn seed(mut self, text: impl Into<String>) -> Self {
        let _ = self.replica.seed(&text.into());
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
    #[cfg(feature = "test-harness")]
    pub fn mirror(mut self, on: bool) -> Self {
        self.mirror = on;
        self
    }
    /// Resend unacked updates when no ack came for this long (default 2 s;
    /// see [`Session`]).
    pub fn resend_after(mut self, after: Duration) -> Self {
        self.resend_after = after;
        self
    }

    /// Connects and waits for the first welcome. A fatal refusal (name
    /// taken...) is [`ClientError::Refused`].
    pub async fn join(self) -> Result<Client, ClientError> {
        let (conn, events) = Connection::open(&self.url, self.options)?;
        let user = self.join.user.clone();
        let shared = Arc::new(Shared {
            state: Mutex::new(ClientState {
                session: Session::new(self.replica, self.join).resend_after(self.resend_after),
                #[cfg(feature = "test-harness")]
                harness: crate::harness::Harness::new(self.mirror),
            }),
            changed: watch::Sender::new(()),
        });
        tokio::spawn(drive(Arc::clone(&shared), conn.clone(), events));
        let client = Client {
            shared,
            conn,
            timeout: self.timeout,
            user,
        };
        client
            .wait_for(|s| s.welcomes() > 0 || s.closed().is_some())
            .await?;
        if let Some(Some(e)) = client.shared.state.lock().closed() {
            return Err(ClientError::Refused(e.clone()));
        }
        Ok(client)
    }
}

/// A client in one room: a [`Session`] and a [`Connection`] driven by a
/// background task. Made for tests and bots:
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
#[derive(Debug)]
pub struct Client {
    shared: Arc<Shared>,
    conn: Connection,
    timeout: Duration,
    user: String,
}

impl Drop for Client {
    fn drop(&mut self) {
        self.conn.close();
    }
}

/// Feeds the transport's events and the session's timer to the session,
/// carrying out what it returns, until the transport ends.
async fn drive(shared: Arc<Shared>, conn: Connection, mut events: TransportEvents) {
    let mut changed = shared.changed.subscribe();
    loop {
        changed.borrow_and_update();
        let due = shared.state.lock().session.poll_timeout(now());
        tokio::select! {
            event = events.recv() => {
                let Some(event) = event else { break };
                let mut st = shared.state.lock();
                let effects = st.session.handle(event, now());
                st.carry_out(effects, &conn);
            }
            () = tokio::time::sleep_until(due.unwrap_or_else(now).into()), if due.is_some() => {
                let mut st = shared.state.lock();
                let effects = st.session.handle_timeout(now());
                st.carry_out(effects, &conn);
            }
            Ok(()) = changed.changed() => continue,
        }
        shared.changed.send_replace(());
    }
    let mut st = shared.state.lock();
    if st.closed().is_none() {
        let effects = st
            .session
            .handle(TransportEvent::Closed { error: None }, now());
        st.carry_out(effects, &conn);
    }
    drop(st);
    shared.changed.send_replace(());
}

impl Client {
    /// Joins `room` as `user` with default options; see [`Self::builder`].
    pub async fn join(url: &str, room: &str, user: &str) -> Result<Client, ClientError> {
        Self::builder(url, room, user).join().await
    }

    pub fn builder(url: &str, room: &str, user: &str) -> ClientBuilder {
        ClientBuilder {
            url: url.to_owned(),
            join: JoinAs {
                room: room.to_owned(),
                user: user.to_owned(),
                token: None,
            },
            replica: Replica::new(),
            options: ConnectOptions::default(),
            timeout: Duration::from_secs(30),
            #[cfg(feature = "test-harness")]
            mirror: false,
            resend_after: crate::RESEND_AFTER,
        }
    }

    /// The state, locked: keep the guard short (the background task waits
    /// for it).
    #[cfg(feature = "test-harness")]
    pub fn state(&self) -> parking_lot::MutexGuard<'_, ClientState> {
        self.shared.state.lock()
    }

    /// Runs `f` on the replica and sends what it returns (for anything the
    /// other methods do not cover).
    pub fn with_replica<R>(&self, f: impl FnOnce(&mut Replica) -> (R, Vec<ClientMsg>)) -> R {
        let mut st = self.shared.state.lock();
        let (r, msgs) = f(&mut st.session);
        st.carry_out(msgs.into_iter().map(Effect::Send), &self.conn);
        drop(st);
        // The driver asks for the session's timer again: an update sent
        // now waits for its ack from now.
        self.shared.changed.send_replace(());
        r
    }

    /// A local edit in chars, sent at once when live.
    pub fn edit(&self, pos: usize, delete: usize, insert: &str) -> Result<(), DocError> {
        self.with_replica(|r| match r.edit(pos, delete, insert) {
            Ok(m) => (Ok(()), m.into_iter().collect()),
            Err(e) => (Err(e), Vec::new()),
        })
    }

    /// Undoes my last edit; false when there was nothing to undo.
    pub fn undo(&self) -> bool {
        self.with_replica(|r| (r.can_undo(), r.undo().into_iter().collect()))
    }

    /// Redoes my last undone edit; false when there was nothing to redo.
    pub fn redo(&self) -> bool {
        self.with_replica(|r| (r.can_redo(), r.redo().into_iter().collect()))
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
        self.shared.state.lock().session.next_seq()
    }

    pub fn text(&self) -> String {
        self.shared.state.lock().text()
    }

    pub fn version(&self) -> Vec<u8> {
        self.shared.state.lock().session.doc().version()
    }

    pub fn unsent_edits(&self) -> usize {
        self.shared.state.lock().session.unsent_edits()
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
        let before = self.shared.state.lock().disconnects();
        self.disconnect();
        self.wait_for(|s| s.disconnects() > before).await
    }

    /// Like [`Self::reconnect`], then waits for the welcome and for every
    /// edit to be acked.
    pub async fn go_online(&self) -> Result<(), ClientError> {
        let before = self.shared.state.lock().welcomes();
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
        let mut changed = self.shared.changed.subscribe();
        loop {
            {
                let st = self.shared.state.lock();
                if pred(&st) {
                    return Ok(());
                }
                if let Some(closed) = st.closed() {
                    let user = &self.user;
                    let why = format!("{user} closed while waiting: {closed:?}");
                    return Err(ClientError::Closed(why));
                }
            }
            if tokio::time::timeout_at(deadline, changed.changed())
                .await
                .is_err()
            {
                let st = self.shared.state.lock();
                return Err(ClientError::Timeout(format!(
                    "{} waited {timeout:?}: connected={} synced={} {:?}",
                    self.user,
                    st.connected(),
                    st.is_synced(),
                    st.session
                )));
            }
        }
    }

    /// Waits until welcomed with every edit acked.
    pub async fn wait_synced(&self) -> Result<(), ClientError> {
        self.wait_for(|s| s.is_synced()).await
    }

    /// Waits until the text equals `text`.
    pub async fn wait_text(&self, text: &str) -> Result<(), ClientError> {
        self.wait_for(|s| s.text() == text).await
    }

    /// Waits until this replica has everything `version` has.
    pub async fn wait_includes(&self, version: &[u8]) -> Result<(), ClientError> {
        self.wait_for(|s| s.replica().doc().includes(version).unwrap_or(false))
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
}
