//! The connection: a [`Connection`] (the client library's WebSocket task
//! with reconnect and backoff) and its event channel. Events become
//! `Action::Transport` for the app; the app's `Effect::Send`s come back
//! here. The sync logic itself lives in the app's `Replica`, so this module
//! is only plumbing, plus the wait for the first welcome that must happen
//! before the terminal is taken over.

use std::time::Duration;

use collab_client::{ConnectOptions, Connection, TransportEvent, TransportEvents};
use collab_protocol::ClientMsg;
use tokio::time::{Instant, timeout_at};

use crate::action::Action;
use crate::app::{App, Conn, Effect};

pub struct Net {
    conn: Connection,
    pub events: TransportEvents,
}

impl Net {
    /// Starts connecting to `url` (`host:port`, `ws://host:port[/ws]` or
    /// `wss://…`, trusting the system's roots plus `ca` when given).
    pub fn open(url: &str, ca: Option<std::path::PathBuf>) -> Result<Self, String> {
        let options = ConnectOptions {
            extra_ca: ca,
            ..ConnectOptions::default()
        };
        let (conn, events) = Connection::open(url, options).map_err(|e| {
            format!(
                "Cannot connect to {url}: {e}. Check --server (ws://HOST:PORT or wss://HOST:PORT) and --ca."
            )
        })?;
        Ok(Self { conn, events })
    }

    pub fn send(&self, msg: ClientMsg) {
        self.conn.send(msg);
    }

    /// Connects again now, skipping what is left of the backoff.
    pub fn resume(&self) {
        self.conn.resume();
    }

    /// Sends what is queued, closes, and waits (briefly) for the transport
    /// to finish, so a `leave` reaches the server before the process ends.
    pub async fn close(mut self, wait: Duration) {
        self.conn.close();
        let deadline = Instant::now() + wait;
        while let Ok(Some(ev)) = timeout_at(deadline, self.events.recv()).await {
            if matches!(ev, TransportEvent::Closed { .. }) {
                break;
            }
        }
    }
}

/// Carries out the app's `Send` effects, returning the others.
pub fn send_effects(app: &mut App, net: &Net) -> Vec<Effect> {
    let mut rest = Vec::new();
    for e in app.take_effects() {
        match e {
            Effect::Send(m) => net.send(m),
            other => rest.push(other),
        }
    }
    rest
}

/// Feeds connection events to the app until it has joined (and its seed,
/// if any, was answered), or until a refusal, an unreachable server or the
/// deadline. `Err` is the one sentence to print.
pub async fn join(app: &mut App, net: &mut Net, within: Duration) -> Result<(), String> {
    let deadline = Instant::now() + within;
    loop {
        let _ = send_effects(app, net);
        if let Some(fatal) = &app.fatal {
            return Err(fatal.clone());
        }
        if app.conn == Conn::Live && !app.seeding {
            return Ok(());
        }
        if let Conn::Reconnecting { reason, .. } = &app.conn
            && app.replica.welcomes() == 0
        {
            return Err(format!(
                "Cannot reach the collab server at {} ({reason}): check --server or start one with collab-server.",
                app.config.server
            ));
        }
        match timeout_at(deadline, net.events.recv()).await {
            Ok(Some(ev)) => app.update(Action::Transport(ev)),
            Ok(None) => {
                return Err(format!(
                    "The connection to {} stopped before joining: try again.",
                    app.config.server
                ));
            }
            Err(_) if app.conn == Conn::Live => return Ok(()),
            Err(_) => {
                return Err(format!(
                    "The collab server at {} did not answer within {}s: check that it is a collab server.",
                    app.config.server,
                    within.as_secs()
                ));
            }
        }
    }
}
