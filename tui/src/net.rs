//! The connection: a [`Connection`] (the client library's WebSocket task
//! with reconnect and backoff) and its event channel. Events become
//! `Action::Transport` for the app; the app's `Order::Send`s come back
//! here (through [`crate::outside`]). The sync logic itself lives in the
//! app's `Session`, so this module is only plumbing, plus the wait for the
//! first welcome that must happen before the terminal is taken over.

use std::time::Duration;

use collab_client::{
    ConnectOptions, Connection, Link, TransportEvent, TransportEvents, WorkspaceConnection,
};
use collab_protocol::ClientMsg;
use collab_protocol::workspace::{ClientEvent as WireOut, ServerEvent};
use tokio::time::{Instant, timeout_at};

use crate::action::Action;
use crate::app::App;
use crate::outside::Outside;

/// The connection and its events, as the editor holds them: protocol 1
/// for a one-file room (FILE), protocol 2 for a workspace session.
pub struct Net {
    wire: NetWire,
}

enum NetWire {
    V1 {
        conn: Connection,
        events: TransportEvents,
    },
    V2 {
        conn: WorkspaceConnection,
        events: TransportEvents<ServerEvent>,
    },
}

impl Net {
    /// Starts connecting to `url` (`host:port`, `ws://host:port[/ws]` or
    /// `wss://…`, trusting the system's roots plus `ca` when given).
    pub fn open(url: &str, ca: Option<std::path::PathBuf>) -> Result<Self, String> {
        let (conn, events) = Connection::open(url, options(ca)).map_err(|e| cannot(url, &e))?;
        Ok(Self {
            wire: NetWire::V1 { conn, events },
        })
    }

    /// [`Self::open`] speaking protocol 2 (a workspace session).
    pub fn open_workspace(url: &str, ca: Option<std::path::PathBuf>) -> Result<Self, String> {
        let (conn, events) =
            WorkspaceConnection::open_wire(url, options(ca)).map_err(|e| cannot(url, &e))?;
        Ok(Self {
            wire: NetWire::V2 { conn, events },
        })
    }

    /// Queues an event for the server; one of the other wire is dropped
    /// (the app makes only its own session's).
    pub fn send(&self, m: ClientMsg) {
        if let NetWire::V1 { conn, .. } = &self.wire {
            conn.send(m);
        }
    }

    /// Queues a protocol 2 event.
    pub fn send_ws(&self, m: WireOut) {
        if let NetWire::V2 { conn, .. } = &self.wire {
            conn.send(m);
        }
    }

    /// Connects again now, skipping what is left of the backoff.
    pub fn resume(&self) {
        match &self.wire {
            NetWire::V1 { conn, .. } => conn.resume(),
            NetWire::V2 { conn, .. } => conn.resume(),
        }
    }

    /// The next connection event, as the app's action (`None`: the
    /// transport is gone).
    pub async fn recv(&mut self) -> Option<Action> {
        match &mut self.wire {
            NetWire::V1 { events, .. } => events.recv().await.map(Action::Transport),
            NetWire::V2 { events, .. } => events.recv().await.map(Action::WsTransport),
        }
    }

    /// A connection event already waiting.
    pub fn try_recv(&mut self) -> Option<Action> {
        match &mut self.wire {
            NetWire::V1 { events, .. } => events.try_recv().ok().map(Action::Transport),
            NetWire::V2 { events, .. } => events.try_recv().ok().map(Action::WsTransport),
        }
    }

    /// Sends what is queued, closes, and waits (briefly) for the transport
    /// to finish, so a `leave` reaches the server before the process ends.
    pub async fn close(mut self, wait: Duration) {
        match &self.wire {
            NetWire::V1 { conn, .. } => conn.close(),
            NetWire::V2 { conn, .. } => conn.close(),
        }
        let deadline = Instant::now() + wait;
        while let Ok(Some(a)) = timeout_at(deadline, self.recv()).await {
            if matches!(
                a,
                Action::Transport(TransportEvent::Closed { .. })
                    | Action::WsTransport(TransportEvent::Closed { .. })
            ) {
                break;
            }
        }
    }
}

fn options(ca: Option<std::path::PathBuf>) -> ConnectOptions {
    ConnectOptions {
        extra_ca: ca,
        ..ConnectOptions::default()
    }
}

fn cannot(url: &str, e: &dyn std::fmt::Display) -> String {
    format!(
        "Cannot connect to {url}: {e}. Check --server (ws://HOST:PORT or wss://HOST:PORT) and --ca."
    )
}

/// The sentence for a server that could not be joined, from the
/// transport's reason: a scheme that does not match the server's (TLS
/// spoken to a plain server or the other way round) and an untrusted
/// certificate are named as such, with what to pass instead.
pub fn unreachable(server: &str, reason: &str) -> String {
    let plain_url = server.starts_with("ws://");
    let tls_url = server.starts_with("wss://");
    if plain_url && (reason.contains("invalid HTTP version") || reason.contains("httparse")) {
        return format!(
            "The server at {server} speaks TLS: use --server wss://{} (with --ca FILE if its certificate is self-signed).",
            host_port(server)
        );
    }
    // A collab server on a plain port closes at once on a TLS hello (the
    // handshake ends in EOF); older ones answered in plain HTTP or not at
    // all.
    if tls_url
        && (reason.contains("handshake eof")
            || reason.contains("corrupt message")
            || reason.contains("InvalidContentType")
            || reason.contains("unexpected EOF")
            || reason.contains("close_notify"))
    {
        return format!(
            "The server at {server} speaks plain ws://, not TLS: use --server ws://{}.",
            host_port(server)
        );
    }
    if tls_url && reason.contains("no answer") {
        return format!(
            "The server at {server} does not answer TLS ({reason}); if it is a plain server, use --server ws://{}.",
            host_port(server)
        );
    }
    if tls_url && reason.contains("invalid peer certificate") {
        return format!(
            "The certificate of {server} is not trusted ({reason}): pass it, or the CA that signed it, with --ca FILE. A self-signed certificate given with --ca is trusted as the server's own."
        );
    }
    format!(
        "Cannot reach the collab server at {server} ({reason}): check --server or start one with collab-server."
    )
}

/// `host:port` of a `ws://` or `wss://` URL (its path dropped).
fn host_port(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split('/').next().unwrap_or(rest)
}

/// Feeds connection events to the app until it has joined (and its seed,
/// if any, was answered), or until a refusal, an unreachable server or the
/// deadline. `Err` is the one sentence to print.
pub async fn join(app: &mut App, out: &mut Outside, within: Duration) -> Result<(), String> {
    let deadline = Instant::now() + within;
    loop {
        // No keys are read yet: the orders are the connection's (and
        // Quit cannot be among them).
        let _ = out.carry_out(app);
        if let Some(fatal) = app.fatal() {
            return Err(fatal);
        }
        if *app.session.link() == Link::Live && !app.session.seeding() {
            return Ok(());
        }
        // The room's text came ahead of its document: shown at once, the
        // document loads in the event loop's first turn. (A room with
        // text takes no seed.)
        if app.session.is_showing_text_first() {
            return Ok(());
        }
        if let Link::Reconnecting { reason, .. } = app.session.link()
            && app.session.welcomes() == 0
        {
            return Err(unreachable(&app.config.server, reason));
        }
        match timeout_at(deadline, out.net.recv()).await {
            Ok(Some(action)) => app.update(action),
            Ok(None) => {
                return Err(format!(
                    "The connection to {} stopped before joining: try again.",
                    app.config.server
                ));
            }
            Err(_) if *app.session.link() == Link::Live => return Ok(()),
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

#[cfg(test)]
mod tests {
    use super::unreachable;

    #[test]
    fn a_scheme_mismatch_says_which_scheme_the_server_speaks() {
        let tls_port = unreachable(
            "ws://127.0.0.1:7878",
            "cannot connect to ws://127.0.0.1:7878/ws: WebSocket protocol error: httparse error: invalid HTTP version",
        );
        assert!(
            tls_port.starts_with(
                "The server at ws://127.0.0.1:7878 speaks TLS: use --server wss://127.0.0.1:7878"
            ),
            "{tls_port}"
        );
        let plain_port = unreachable(
            "wss://h:1/ws",
            "cannot connect to wss://h:1/ws: IO error: tls handshake eof",
        );
        assert!(
            plain_port.contains("speaks plain ws://, not TLS: use --server ws://h:1."),
            "{plain_port}"
        );
        let silent = unreachable(
            "wss://h:1/ws",
            "cannot connect to wss://h:1/ws: no answer in 5s",
        );
        assert!(silent.contains("use --server ws://h:1."), "{silent}");
        let cert = unreachable(
            "wss://h:1",
            "IO error: invalid peer certificate: UnknownIssuer",
        );
        assert!(cert.contains("--ca FILE"), "{cert}");
        let down = unreachable("ws://h:1", "Connection refused (os error 111)");
        assert!(
            down.starts_with("Cannot reach the collab server at ws://h:1"),
            "{down}"
        );
    }
}
