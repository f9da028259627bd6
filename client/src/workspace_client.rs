//! [`WorkspaceClient`]: a [`Workspace`] and a [`WorkspaceConnection`]
//! driven by a task, for tests and bots, as [`crate::Client`] is for a
//! one-file room.

use std::sync::Arc;
use std::time::Duration;

use collab_protocol::workspace::ClientEvent as WireOut;
use parking_lot::Mutex;
use tokio::sync::watch;

use crate::workspace::{Workspace, WorkspaceConnection, WsEffect};
use crate::{ClientError, ConnectOptions, JoinAs, TransportEvent, TransportEvents};

/// Events kept for tests to read (the newest; older ones go).
#[cfg(feature = "test-harness")]
const EVENTS_KEPT: usize = 4096;

/// Everything a [`WorkspaceClient`] knows, as its predicates see it.
#[derive(Debug)]
pub struct WorkspaceState {
    workspace: Workspace,
    #[cfg(feature = "test-harness")]
    events: std::collections::VecDeque<crate::WsEvent>,
}

/// Predicates read the workspace directly: `s.kind()`, `s.file(id)`...
impl std::ops::Deref for WorkspaceState {
    type Target = Workspace;
    fn deref(&self) -> &Workspace {
        &self.workspace
    }
}

impl WorkspaceState {
    /// The events seen so far (the last few thousand), oldest first
    /// (the `test-harness` feature).
    #[cfg(feature = "test-harness")]
    pub fn events(&self) -> impl Iterator<Item = &crate::WsEvent> {
        self.events.iter()
    }

    fn carry_out(&mut self, effects: Vec<WsEffect>, conn: &WorkspaceConnection) {
        for effect in effects {
            match effect {
                WsEffect::Send(m) => _ = conn.send(m),
                WsEffect::Event(_e) => {
                    #[cfg(feature = "test-harness")]
                    {
                        if self.events.len() == EVENTS_KEPT {
                            self.events.pop_front();
                        }
                        self.events.push_back(_e);
                    }
                }
            }
        }
        // Drained: a test reads the texts, not the deltas.
        let _ = self.workspace.take_changes();
        let _ = self.workspace.room().take_changes();
    }
}

fn now() -> std::time::Instant {
    tokio::time::Instant::now().into_std()
}

struct Shared {
    state: Mutex<WorkspaceState>,
    changed: watch::Sender<()>,
}

/// A member of a room of protocol 2, driven by a background task. Every
/// wait is bounded by the timeout; dropping the client closes its
/// connection.
pub struct WorkspaceClient {
    shared: Arc<Shared>,
    conn: WorkspaceConnection,
    timeout: Duration,
    user: String,
}

impl std::fmt::Debug for WorkspaceClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkspaceClient")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

impl Drop for WorkspaceClient {
    fn drop(&mut self) {
        self.conn.close();
    }
}

async fn drive(
    shared: Arc<Shared>,
    conn: WorkspaceConnection,
    mut events: TransportEvents<collab_protocol::workspace::ServerEvent>,
) {
    let mut changed = shared.changed.subscribe();
    loop {
        changed.borrow_and_update();
        let due = shared.state.lock().workspace.poll_timeout(now());
        let timer = async {
            match due {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            event = events.recv() => {
                let Some(event) = event else { break };
                let mut st = shared.state.lock();
                let effects = st.workspace.handle(event, now());
                st.carry_out(effects, &conn);
            }
            () = timer => {
                let mut st = shared.state.lock();
                let effects = st.workspace.handle_timeout(now());
                st.carry_out(effects, &conn);
            }
            Ok(()) = changed.changed() => continue,
        }
        shared.changed.send_replace(());
    }
    let mut st = shared.state.lock();
    if st.closed().is_none() {
        let effects = st
            .workspace
            .handle(TransportEvent::Closed { error: None }, now());
        st.carry_out(effects, &conn);
    }
    drop(st);
    shared.changed.send_replace(());
}

impl WorkspaceClient {
    /// Connects to `url` as `user` in `room` and returns at once (the
    /// welcome comes later: wait for it). `prepare` runs on the workspace
    /// before it connects (to share a folder with
    /// [`Workspace::seed_tree`], say).
    pub fn start(
        url: &str,
        room: &str,
        user: &str,
        options: ConnectOptions,
        prepare: impl FnOnce(&mut Workspace),
    ) -> Result<WorkspaceClient, ClientError> {
        let (conn, events) = WorkspaceConnection::open_wire(url, options)?;
        let mut workspace = Workspace::new(JoinAs {
            room: room.into(),
            user: user.into(),
            token: None,
        })
        .resend_after(Duration::from_millis(500));
        prepare(&mut workspace);
        let shared = Arc::new(Shared {
            state: Mutex::new(WorkspaceState {
                workspace,
                #[cfg(feature = "test-harness")]
                events: std::collections::VecDeque::new(),
            }),
            changed: watch::Sender::new(()),
        });
        tokio::spawn(drive(Arc::clone(&shared), conn.clone(), events));
        Ok(WorkspaceClient {
            shared,
            conn,
            timeout: Duration::from_secs(30),
            user: user.into(),
        })
    }

    /// [`Self::start`], then waits for the welcome (of the room, and of
    /// the tree in a workspace).
    pub async fn join(url: &str, room: &str, user: &str) -> Result<WorkspaceClient, ClientError> {
        let c = Self::start(url, room, user, ConnectOptions::default(), |_| {})?;
        c.wait_for(|s| *s.link() == crate::Link::Live).await?;
        Ok(c)
    }

    pub fn user(&self) -> &str {
        &self.user
    }

    /// The state, locked: read it, don't hold it across an await (the
    /// `test-harness` feature: programs read it in `wait_for`'s predicates).
    #[cfg(feature = "test-harness")]
    pub fn state(&self) -> parking_lot::MutexGuard<'_, WorkspaceState> {
        self.shared.state.lock()
    }

    /// Acts on the workspace and sends what the action returns.
    pub fn act<R, E>(
        &self,
        f: impl FnOnce(&mut Workspace) -> Result<(R, Vec<WireOut>), E>,
    ) -> Result<R, E> {
        let mut st = self.shared.state.lock();
        let (value, out) = f(&mut st.workspace)?;
        st.carry_out(Workspace::as_effects(out), &self.conn);
        drop(st);
        self.shared.changed.send_replace(());
        Ok(value)
    }

    /// [`Self::act`] for actions that return only what to send.
    pub fn run<E>(
        &self,
        f: impl FnOnce(&mut Workspace) -> Result<Vec<WireOut>, E>,
    ) -> Result<(), E> {
        self.act(|w| f(w).map(|out| ((), out)))
    }

    /// Drops the connection until [`Self::reconnect`].
    pub fn disconnect(&self) {
        self.conn.suspend();
    }

    pub fn reconnect(&self) {
        self.conn.resume();
    }

    /// Sends a raw event (tests of refusals).
    pub fn send_raw(&self, msg: WireOut) -> bool {
        self.conn.send(msg)
    }

    /// Waits until `pred` holds, re-checking after every change.
    pub async fn wait_for(
        &self,
        pred: impl Fn(&WorkspaceState) -> bool,
    ) -> Result<(), ClientError> {
        let deadline = tokio::time::Instant::now() + self.timeout;
        let mut changed = self.shared.changed.subscribe();
        loop {
            {
                let st = self.shared.state.lock();
                if pred(&st) {
                    return Ok(());
                }
                if let Some(closed) = st.closed() {
                    let why = format!("{} closed while waiting: {closed:?}", self.user);
                    return Err(ClientError::Closed(why));
                }
            }
            if tokio::time::timeout_at(deadline, changed.changed())
                .await
                .is_err()
            {
                let st = self.shared.state.lock();
                return Err(ClientError::Timeout(format!(
                    "{} waited {:?}: link {:?} synced={} {:?}",
                    self.user,
                    self.timeout,
                    st.link(),
                    st.is_synced(),
                    st.workspace
                )));
            }
        }
    }

    /// Waits until welcomed with every document's updates acked.
    pub async fn wait_synced(&self) -> Result<(), ClientError> {
        self.wait_for(|s| s.is_synced()).await
    }

    /// Leaves and waits until closed.
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
