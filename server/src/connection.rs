//! One task per socket: WebSocket handshake, then a loop that reads and
//! validates the client's events, writes what the room queued for it,
//! pings it, and rate-limits it (events per second, and bytes: past its
//! byte budget the connection is simply read later, `byte_budget.rs`).
//!
//! The task is the only writer of its socket, so a slow or stalled client
//! only ever blocks itself: the room hands it events through a bounded
//! queue with `try_send`, and kicks it (through [`Control`]) when the queue is
//! full. Every write races against that kick, shutdown and a timeout; the
//! fragments of a big message only against the timeout, so that the event
//! saying why the connection ends is never cut into a half-sent message.
//!
//! Every way the connection ends ([`End`]) has its close code, the table in
//! docs/protocol.md ("How a connection ends").
//!
//! Leaving the room is a drop guard ([`Membership`]): whichever way the task
//! ends (close, error, timeout, kick, even a panic) the room hears about it
//! once.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use collab_doc::{UpdateInfo, check_version};
use collab_protocol::workspace::{
    Addressed, ClientEvent, DocId, ServerEvent, WORKSPACE_PROTOCOL_VERSION, WorkspaceWelcome,
    with_doc_id,
};
use collab_protocol::{
    Base64Bytes, ClientMsg, ErrorCode, Join, LeftReason, PROTOCOL_VERSION, ProtocolError, RoomId,
    ServerMsg, UserId, UserName, validate_chat_text,
};
use futures::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior, interval_at, sleep, timeout};
use tokio_tungstenite::tungstenite::error::Error as WsError;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tracing::{debug, info, warn};

use crate::Shared;
use crate::byte_budget::ByteBudget;
use crate::rate_limit::{RateLimiter, Verdict};
use crate::room::{Control, DocSettings, JoinRequest, KickReason, Link, Out, Room};
use crate::room::{doc_refusal, no_such_doc, node_of};
use crate::shutdown::Shutdown;
use crate::socket::{
    COALESCE_BYTES, FRAGMENT_BYTES, Ws, close_and_wait, close_frame, drain, fragments,
    say_and_close,
};

/// Serves one connection, its WebSocket handshake done (by the listener,
/// which bounds it), to its end.
pub(crate) async fn serve(ws: Ws, peer: SocketAddr, shared: Arc<Shared>, shutdown: Shutdown) {
    let conn_id = shared.next_conn.fetch_add(1, Ordering::Relaxed);
    let span = tracing::info_span!("conn", id = conn_id, %peer);
    let conn = Connection::new(ws, shared, shutdown, conn_id);
    tracing::Instrument::instrument(conn.serve(), span).await;
}

/// How a connection ends; each way has its close code (the table in
/// docs/protocol.md, "How a connection ends").
#[derive(Debug)]
enum End {
    /// The client sent a close frame: answer with ours (RFC 6455 §5.5.1).
    ClientClosed,
    /// The client sent `leave`: close 1000.
    Left,
    /// A text frame that is not UTF-8: close 1007 (RFC 6455 §8.1).
    BadUtf8,
    /// The socket went away or broke.
    Dropped,
    /// No traffic for two ping intervals, or a write that never finished.
    Timeout,
    /// A fatal error to report before closing.
    Fatal(ProtocolError),
    /// Abuse (flood): report, close, others see `removed`.
    Removed(ProtocolError),
    /// A frame over the limit: the stream is out of step, so report, close
    /// and discard the rest of what the client sends.
    FrameTooLarge(ProtocolError),
    Kicked(KickReason),
    Shutdown,
}

/// This connection's place in a room; leaving is its drop.
struct Membership {
    shared: Arc<Shared>,
    room: Arc<Room>,
    id: UserId,
    conn: u64,
    reason: LeftReason,
    /// A viewer: its updates and seeds are refused.
    read_only: bool,
}

impl Drop for Membership {
    fn drop(&mut self) {
        self.shared
            .registry
            .leave(&self.room, self.id, self.conn, self.reason);
    }
}

struct Connection {
    ws: Ws,
    shared: Arc<Shared>,
    shutdown: Shutdown,
    conn_id: u64,
    control: Arc<Control>,
    limiter: RateLimiter,
    /// Bytes this connection may read before its reads wait for a refill.
    budget: ByteBudget,
    last_seen: Instant,
    member: Option<Membership>,
    rx: Option<mpsc::Receiver<Out>>,
    /// A fragmented message was cut off: no data frame may follow.
    partial: bool,
    /// The protocol the join asked for: 1, or 2 (workspaces, which read
    /// frames with `workspace::ClientEvent` and address answers).
    protocol: u32,
    /// Told `storage_failed` for an update Redis did not take, and no
    /// update was stored since.
    unstored: bool,
    /// The welcome of this connection's join went out. Until it has, the
    /// shutdown signal cuts no write: a joined client learns its session
    /// before `shutdown`.
    welcomed: bool,
}

/// What may cut a write short besides a stalled peer.
#[derive(Debug, Clone, Copy)]
enum Cut {
    /// A kick or shutdown: the write is between messages.
    Anything,
    /// Nothing: a fragmented message is half out, and no other data frame
    /// (the event saying why the connection ends) may go before it ends.
    StallOnly,
}

enum Step {
    End(End),
    Out(Option<Out>),
    In(Option<Result<Message, WsError>>),
    /// The byte budget refilled: reading resumes.
    Refilled,
    Tick,
}

async fn recv_opt(rx: &mut Option<mpsc::Receiver<Out>>) -> Option<Out> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

impl Connection {
    fn new(ws: Ws, shared: Arc<Shared>, shutdown: Shutdown, conn_id: u64) -> Self {
        let c = &shared.config;
        let limiter = RateLimiter::new(
            c.messages_per_second,
            c.burst,
            c.flood_max_refused,
            c.flood_max_duration,
        );
        let budget = ByteBudget::new(
            c.inbound_bytes_per_second,
            c.inbound_burst_bytes,
            Instant::now(),
        );
        Self {
            ws,
            shutdown,
            conn_id,
            control: Arc::default(),
            limiter,
            budget,
            last_seen: Instant::now(),
            member: None,
            rx: None,
            partial: false,
            protocol: PROTOCOL_VERSION,
            unstored: false,
            welcomed: false,
            shared,
        }
    }

    async fn serve(mut self) {
        let end = self.run().await;
        Box::pin(self.finish(end)).await;
    }

    async fn run(&mut self) -> End {
        let ping = self.shared.config.ping_interval;
        let mut ticker = interval_at(Instant::now() + ping, ping);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let join_deadline = sleep(self.shared.config.join_timeout);
        tokio::pin!(join_deadline);
        loop {
            let joined = self.member.is_some();
            let now = Instant::now();
            // Spent its byte budget: its socket is not read until the
            // budget refills (TCP holds the rest; nothing is refused).
            let paused = self.budget.resume_at(now);
            let step = tokio::select! {
                r = self.control.kicked() => Step::End(End::Kicked(r)),
                () = self.shutdown.recv() => Step::End(End::Shutdown),
                out = recv_opt(&mut self.rx) => Step::Out(out),
                frame = self.ws.next(), if paused.is_none() => Step::In(frame),
                () = tokio::time::sleep_until(paused.unwrap_or(now)), if paused.is_some() => Step::Refilled,
                _ = ticker.tick() => Step::Tick,
                () = &mut join_deadline, if !joined => Step::End(End::Fatal(ProtocolError::new(
                    ErrorCode::NotJoined,
                    "No join arrived in time; the connection closes.",
                ))),
            };
            let result = match step {
                // Joined as the server began to stop: the welcome, queued,
                // goes out before `shutdown`. Without it the client has no
                // session to present, and with `--redis` its name would be
                // held by its own entry on another node until this node's
                // release of it arrives (`name_taken`: the randomized
                // suite over three nodes hit it).
                Step::End(End::Shutdown) if self.rx.is_some() && !self.welcomed => {
                    Box::pin(self.welcome_before_shutdown()).await;
                    Err(End::Shutdown)
                }
                Step::End(end) => Err(end),
                Step::Out(Some(out)) => Box::pin(self.write_out(out)).await,
                Step::Out(None) => Err(End::Kicked(
                    self.control.reason().unwrap_or(KickReason::Replaced),
                )),
                // Kicked while the frame came (select! picks at random
                // among ready branches): a connection whose session was
                // taken over reads nothing more for the member.
                Step::In(frame) => match self.control.reason() {
                    Some(r) => Err(End::Kicked(r)),
                    None => Box::pin(self.on_frame(frame)).await,
                },
                Step::Refilled => {
                    // The silence was ours: the client's pongs and frames
                    // waited in the socket while it was not read.
                    self.last_seen = Instant::now();
                    Ok(())
                }
                Step::Tick => Box::pin(self.on_tick()).await,
            };
            if let Err(end) = result {
                return end;
            }
        }
    }

    /// Writes the queued welcome (and what is coalesced with it), bounded,
    /// with the server already stopping.
    async fn welcome_before_shutdown(&mut self) {
        let Some(out) = self.rx.as_mut().and_then(|rx| rx.try_recv().ok()) else {
            return;
        };
        let _ = timeout(Duration::from_secs(1), self.write_out(out)).await;
    }

    async fn on_tick(&mut self) -> Result<(), End> {
        let ping = self.shared.config.ping_interval;
        // Not read for its byte budget: its pongs wait unread, so the
        // silence says nothing about the client.
        let paused = self.budget.resume_at(Instant::now()).is_some();
        if !paused && self.last_seen.elapsed() >= ping * 2 {
            info!("no answer to pings: dropping");
            return Err(End::Timeout);
        }
        self.write(Message::Ping(Default::default())).await
    }

    /// Writes one message, giving up on kick, shutdown or a stalled peer.
    async fn write(&mut self, msg: Message) -> Result<(), End> {
        self.write_with(msg, Cut::Anything).await
    }

    async fn write_with(&mut self, msg: Message, cut: Cut) -> Result<(), End> {
        self.write_all(std::iter::once(msg), cut).await
    }

    /// Feeds every message, then flushes once (one write for a batch);
    /// gives up when the peer stalls, and on what `cut` allows.
    async fn write_all(
        &mut self,
        msgs: impl IntoIterator<Item = Message> + Send,
        cut: Cut,
    ) -> Result<(), End> {
        let limit = self.shared.config.ping_interval * 2;
        let anything = matches!(cut, Cut::Anything);
        // Joined, the welcome not out yet: it goes out before `shutdown`.
        let welcoming = self.rx.is_some() && !self.welcomed;
        let ws = &mut self.ws;
        let write = async move {
            for msg in msgs {
                ws.feed(msg).await?;
            }
            ws.flush().await
        };
        tokio::select! {
            r = self.control.kicked(), if anything => Err(End::Kicked(r)),
            () = self.shutdown.recv(), if anything && !welcoming => Err(End::Shutdown),
            r = timeout(limit, write) => match r {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => {
                    debug!(error = %e, "write failed");
                    Err(End::Dropped)
                }
                Err(_) => {
                    info!("write stalled: dropping");
                    Err(End::Timeout)
                }
            },
        }
    }

    /// The text of a queued event, counted as taken off the queue.
    fn render(&self, out: Out) -> Utf8Bytes {
        let text = match out {
            Out::Text(t) => {
                self.control.dequeued(t.len());
                t
            }
            Out::Welcome(w) if w.doc_id.is_main() && w.workspace.is_none() => {
                Utf8Bytes::from(ServerMsg::Welcome(Box::new(w.welcome)).to_json())
            }
            Out::Welcome(w) => {
                let w = *w;
                Utf8Bytes::from(
                    ServerEvent::Welcome(Box::new(WorkspaceWelcome {
                        welcome: w.welcome,
                        doc_id: w.doc_id,
                        workspace: w.workspace,
                    }))
                    .to_json(),
                )
            }
            // Written one by one by `write_out`.
            Out::Batch(_) => Utf8Bytes::default(),
            Out::DocPart(data) => Utf8Bytes::from(
                ServerMsg::DocPart {
                    data: Base64Bytes(data),
                }
                .to_json(),
            ),
        };
        self.shared.metrics.message_out(text.len());
        text
    }

    /// Writes a queued event, and with it the small events already waiting
    /// behind it, in one write: under load a member's queue holds several
    /// keystrokes of its room, and one syscall per event was a third of the
    /// server's CPU. A lone event still goes out at once. Notes when the
    /// welcome went out.
    async fn write_out(&mut self, out: Out) -> Result<(), End> {
        let welcome = matches!(out, Out::Welcome(_));
        let written = Box::pin(self.write_queued(out)).await;
        self.welcomed |= welcome && written.is_ok();
        written
    }

    /// [`Self::write_out`]'s writing.
    async fn write_queued(&mut self, out: Out) -> Result<(), End> {
        // A welcome whose document comes in parts, or is followed by the
        // updates after its snapshot: the welcome, then every part, then
        // every update, each its own message, before anything else.
        let out = match out {
            Out::Batch(texts) => {
                self.control.dequeued(texts.iter().map(|t| t.len()).sum());
                for text in texts {
                    self.shared.metrics.message_out(text.len());
                    self.write_one(text).await?;
                }
                return Ok(());
            }
            Out::Welcome(mut w) if !w.parts.is_empty() || !w.tail.is_empty() => {
                let parts = std::mem::take(&mut w.parts);
                let tail = std::mem::take(&mut w.tail);
                let doc_id = w.doc_id;
                let welcome = self.render(Out::Welcome(w));
                self.write_one(welcome).await?;
                for part in parts {
                    let text = self.render(Out::DocPart(part));
                    self.write_one(text).await?;
                }
                for update in tail {
                    let msg = ServerMsg::Update {
                        from: 0,
                        data: Base64Bytes(update.as_ref().clone()),
                    };
                    let text = Utf8Bytes::from(with_doc_id(msg.to_json(), doc_id));
                    self.shared.metrics.message_out(text.len());
                    self.write_one(text).await?;
                }
                return Ok(());
            }
            other => other,
        };
        let first = self.render(out);
        if first.len() > FRAGMENT_BYTES {
            return self.write_fragmented(first).await;
        }
        let mut batch = vec![Message::Text(first)];
        let mut bytes = 0;
        let mut big = None;
        let mut batch_after = None;
        while bytes < COALESCE_BYTES {
            let Some(out) = self.rx.as_mut().and_then(|rx| rx.try_recv().ok()) else {
                break;
            };
            if let Out::Batch(_) = out {
                batch_after = Some(out);
                break;
            }
            let text = self.render(out);
            if text.len() > FRAGMENT_BYTES {
                big = Some(text);
                break;
            }
            bytes += text.len();
            batch.push(Message::Text(text));
        }
        self.write_all(batch, Cut::Anything).await?;
        if let Some(text) = big {
            self.write_fragmented(text).await?;
        }
        match batch_after {
            Some(out) => Box::pin(self.write_out(out)).await,
            None => Ok(()),
        }
    }

    /// One event, alone.
    async fn write_one(&mut self, text: Utf8Bytes) -> Result<(), End> {
        if text.len() > FRAGMENT_BYTES {
            self.write_fragmented(text).await
        } else {
            self.write_all(vec![Message::Text(text)], Cut::Anything)
                .await
        }
    }

    /// A big event in fragments of [`FRAGMENT_BYTES`].
    async fn write_fragmented(&mut self, text: Utf8Bytes) -> Result<(), End> {
        self.partial = text.len() > FRAGMENT_BYTES;
        let cut = if self.partial {
            Cut::StallOnly
        } else {
            Cut::Anything
        };
        for frame in fragments(text) {
            // Shutdown and kicks wait for the message to end: the event
            // that tells the client why (`shutdown`, `slow_consumer`)
            // cannot be sent in the middle of it. A stall does not wait.
            self.write_with(frame, cut).await?;
        }
        self.partial = false;
        Ok(())
    }

    /// Answers this client: through its queue once joined (keeping order
    /// with what the room sends it), straight to the socket before.
    async fn reply(&mut self, msg: ServerMsg) -> Result<(), End> {
        match &self.member {
            Some(m) => {
                // False: we were just removed as a slow consumer; the kick
                // is already waiting for the loop.
                m.room.send_to_member(m.id, m.conn, &msg);
                Ok(())
            }
            None => {
                let text = msg.to_json();
                self.shared.metrics.message_out(text.len());
                self.write(Message::Text(text.into())).await
            }
        }
    }

    /// Reports a refused event; fatal codes end the connection.
    async fn refuse(&mut self, err: ProtocolError, seq: Option<u64>) -> Result<(), End> {
        warn!(code = %err.code, message = %err.message, "refused");
        if err.code.is_fatal() {
            return Err(End::Fatal(err));
        }
        self.shared.metrics.error(err.code);
        self.reply(ServerMsg::Error {
            code: err.code,
            message: err.message,
            seq,
        })
        .await
    }

    async fn on_frame(&mut self, frame: Option<Result<Message, WsError>>) -> Result<(), End> {
        let msg = match frame {
            None => return Err(End::Dropped),
            Some(Ok(msg)) => msg,
            Some(Err(WsError::Capacity(e))) => {
                warn!(error = %e, "frame too large");
                return Err(End::FrameTooLarge(ProtocolError::new(
                    ErrorCode::FrameTooLarge,
                    format!(
                        "The message is larger than the server accepts ({} bytes at most); the connection closes.",
                        self.shared.config.max_frame_bytes
                    ),
                )));
            }
            Some(Err(WsError::Utf8(e))) => {
                warn!(error = %e, "text frame is not UTF-8");
                return Err(End::BadUtf8);
            }
            Some(Err(e)) => {
                debug!(error = %e, "read failed");
                return Err(End::Dropped);
            }
        };
        self.last_seen = Instant::now();
        self.budget.charge(msg.len(), self.last_seen);
        match &msg {
            Message::Text(t) => self.shared.metrics.message_in(t.len()),
            Message::Binary(b) => self.shared.metrics.message_in(b.len()),
            _ => {}
        }
        match msg {
            Message::Close(_) => return Err(End::ClientClosed),
            // Our own pings' answers: heartbeat only, not rate limited.
            Message::Pong(_) | Message::Frame(_) => return Ok(()),
            _ => {}
        }
        match self.limiter.check(Instant::now()) {
            Verdict::Allow => {}
            Verdict::Refuse { notify } => {
                // An update's sender waits for the answer to its seq: each
                // dropped update gets one; other events one a second.
                let seq = match &msg {
                    Message::Text(t) => ClientMsg::readable_seq(t.as_str()),
                    _ => None,
                };
                if notify || seq.is_some() {
                    return self
                        .refuse(ProtocolError::from_code(ErrorCode::RateLimited), seq)
                        .await;
                }
                return Ok(());
            }
            Verdict::Disconnect => {
                warn!("sustained flood: removing");
                return Err(End::Removed(ProtocolError::new(
                    ErrorCode::RateLimited,
                    "Too many messages for too long: the connection closes.",
                )));
            }
        }
        match msg {
            Message::Text(text) => self.on_text(text.as_str()).await,
            Message::Binary(_) => {
                self.refuse(ProtocolError::from_code(ErrorCode::BinaryFrame), None)
                    .await
            }
            // Pings are answered by tungstenite itself.
            _ => Ok(()),
        }
    }

    async fn on_text(&mut self, text: &str) -> Result<(), End> {
        // A version 1 connection reads version 1 frames, exactly as before;
        // a join, and what a workspace connection sends, are read with the
        // workspace extension.
        let parsed = if self.member.is_none() || self.protocol >= WORKSPACE_PROTOCOL_VERSION {
            ClientEvent::from_json(text)
        } else {
            ClientMsg::from_json(text).map(|msg| {
                ClientEvent::V1(Addressed {
                    doc: DocId::Main,
                    msg,
                })
            })
        };
        let event = match parsed {
            Ok(m) => m,
            // A joined connection's join of another version is a second
            // join, not a reason to end the first.
            Err(e) if e.code == ErrorCode::VersionMismatch && self.member.is_some() => {
                return self
                    .refuse(ProtocolError::from_code(ErrorCode::AlreadyJoined), None)
                    .await;
            }
            Err(e) => return self.refuse(e, ClientMsg::readable_seq(text)).await,
        };
        let Some(m) = &self.member else {
            let not_joined = ProtocolError::from_code(ErrorCode::NotJoined);
            return match event {
                ClientEvent::V1(Addressed {
                    msg: ClientMsg::Join(join),
                    ..
                }) => self.join(join).await,
                ClientEvent::V1(Addressed {
                    msg: ClientMsg::Update { seq, .. },
                    ..
                }) => self.refuse(not_joined, Some(seq)).await,
                _ => self.refuse(not_joined, None).await,
            };
        };
        let (doc, msg) = match event {
            ClientEvent::V1(Addressed { doc, msg }) => (doc, msg),
            other => return Box::pin(self.on_workspace(other)).await,
        };
        let (room, id, conn, read_only) = (Arc::clone(&m.room), m.id, m.conn, m.read_only);
        let config = &self.shared.config;
        match msg {
            ClientMsg::Update { seq, .. } if read_only => {
                self.refuse_on(
                    doc,
                    ProtocolError::from_code(ErrorCode::ReadOnly),
                    Some(seq),
                )
                .await
            }
            ClientMsg::Seed { .. } if read_only => {
                self.refuse(ProtocolError::from_code(ErrorCode::ReadOnly), None)
                    .await
            }
            ClientMsg::Join(_) => {
                self.refuse(ProtocolError::from_code(ErrorCode::AlreadyJoined), None)
                    .await
            }
            ClientMsg::Chat { text } => match validate_chat_text(&text) {
                Ok(()) => {
                    room.chat(id, text);
                    Ok(())
                }
                Err(e) => self.refuse(e, None).await,
            },
            ClientMsg::Direct { to, text } => {
                match validate_chat_text(&text).and_then(|()| room.direct(id, &to, text)) {
                    Ok(()) => Ok(()),
                    Err(e) => self.refuse(e, None).await,
                }
            }
            ClientMsg::Presence(p) if doc.is_main() => {
                room.presence(id, p);
                Ok(())
            }
            ClientMsg::Presence(p) => match room.presence_in(id, conn, doc, p) {
                Ok(()) => Ok(()),
                Err(e) => self.refuse_on(doc, e, None).await,
            },
            ClientMsg::Update { seq, data } => {
                let started = std::time::Instant::now();
                // What the update claims, read before the room is locked or
                // its document touched (see `collab_doc::UpdateInfo`).
                let settings = DocSettings::of(config);
                let (max_doc_bytes, compact_every) = (config.max_doc_bytes, config.compact_every);
                let limits = config.workspace_limits();
                let result = match UpdateInfo::read(data.as_slice()) {
                    Err(e) => Err(doc_refusal(&e)),
                    Ok(_) if doc.is_main() && room.is_workspace() => Err(no_such_doc(doc)),
                    Ok(info) => match (doc, node_of(doc)) {
                        (DocId::Main, _) => room
                            .update_stored(id, conn, data.into_inner(), info, settings)
                            .await
                            .map_err(|e| doc_refusal(&e)),
                        (DocId::Tree, _) => room
                            .tree_update(id, conn, data.into_inner(), info, limits)
                            .await
                            .map(Some),
                        (_, Some(node)) => room
                            .file_update(
                                id,
                                conn,
                                node,
                                data.into_inner(),
                                info,
                                max_doc_bytes,
                                limits,
                                compact_every,
                            )
                            .await
                            .map(Some),
                        (_, None) => Err(no_such_doc(doc)),
                    },
                };
                self.shared.metrics.update_applied(started.elapsed());
                match result {
                    Ok(Some(_)) => {
                        self.unstored = false;
                        self.reply_on(doc, ServerMsg::Ack { seq }).await
                    }
                    // Shared here, not held by Redis (`--redis`): no ack,
                    // so its author sends it again; the member hears why
                    // once (docs/scale-out.md, "When Redis is away").
                    Ok(None) if self.unstored => Ok(()),
                    Ok(None) => {
                        self.unstored = true;
                        self.reply_on(doc, ServerMsg::error(ErrorCode::StorageFailed))
                            .await
                    }
                    Err(e) => self.refuse_on(doc, e, Some(seq)).await,
                }
            }
            ClientMsg::Seed { text } => {
                if text.len() > config.max_doc_bytes {
                    let err = ProtocolError::new(
                        ErrorCode::DocTooLarge,
                        format!(
                            "The seed text is {} bytes, over the server's limit of {} bytes.",
                            text.len(),
                            config.max_doc_bytes
                        ),
                    );
                    return self.refuse(err, None).await;
                }
                let applied = room.seed(id, conn, text).await;
                self.reply(ServerMsg::Seeded { applied }).await
            }
            ClientMsg::Leave => Err(End::Left),
        }
    }

    /// The events protocol 2 adds: `open`, `close`, `seed_tree`.
    async fn on_workspace(&mut self, event: ClientEvent) -> Result<(), End> {
        let Some(m) = &self.member else {
            return self
                .refuse(ProtocolError::from_code(ErrorCode::NotJoined), None)
                .await;
        };
        let (room, id, conn, read_only) = (Arc::clone(&m.room), m.id, m.conn, m.read_only);
        let config = &self.shared.config;
        let (limits, max_frame_bytes) = (config.workspace_limits(), config.max_frame_bytes);
        match event {
            ClientEvent::Open { doc, version } => {
                let Some(node) = node_of(doc) else {
                    return self.refuse_on(doc, no_such_doc(doc), None).await;
                };
                if let Some(Err(e)) = version.as_ref().map(|v| check_version(v.as_slice())) {
                    let msg = format!(
                        "The open's \"version\" is not a version vector ({e}); open without it to load the whole file."
                    );
                    return self
                        .refuse_on(doc, ProtocolError::new(ErrorCode::BadUpdate, msg), None)
                        .await;
                }
                let version = version.map(Base64Bytes::into_inner);
                match room.open(id, conn, node, version, max_frame_bytes).await {
                    Ok(()) => Ok(()),
                    Err(e) => self.refuse_on(doc, e, None).await,
                }
            }
            ClientEvent::Close { doc } => {
                let closed = node_of(doc)
                    .ok_or_else(|| no_such_doc(doc))
                    .and_then(|node| room.close_file(id, conn, node));
                room.unload_unopened();
                match closed {
                    Ok(()) => Ok(()),
                    Err(e) => self.refuse_on(doc, e, None).await,
                }
            }
            ClientEvent::SeedTree { .. } if read_only => {
                let e = ProtocolError::from_code(ErrorCode::ReadOnly);
                self.refuse_on(DocId::Tree, e, None).await
            }
            ClientEvent::SeedTree { data } => {
                let info = match UpdateInfo::read(data.as_slice()) {
                    Ok(info) => info,
                    Err(e) => return self.refuse_on(DocId::Tree, doc_refusal(&e), None).await,
                };
                match room
                    .seed_tree(id, conn, data.into_inner(), info, limits)
                    .await
                {
                    Ok(applied) => {
                        self.reply_on(DocId::Tree, ServerMsg::Seeded { applied })
                            .await
                    }
                    Err(e) => self.refuse_on(DocId::Tree, e, None).await,
                }
            }
            // Version 1 events are `on_text`'s.
            ClientEvent::V1(_) => Ok(()),
        }
    }

    /// [`Self::reply`] about document `doc`: named in the event unless it
    /// is the main document.
    async fn reply_on(&mut self, doc: DocId, msg: ServerMsg) -> Result<(), End> {
        match &self.member {
            Some(m) if !doc.is_main() => {
                let text = Utf8Bytes::from(with_doc_id(msg.to_json(), doc));
                m.room.send_text_to_member(m.id, m.conn, text);
                Ok(())
            }
            _ => self.reply(msg).await,
        }
    }

    /// [`Self::refuse`] of an event about document `doc`.
    async fn refuse_on(
        &mut self,
        doc: DocId,
        err: ProtocolError,
        seq: Option<u64>,
    ) -> Result<(), End> {
        if doc.is_main() || err.code.is_fatal() {
            return self.refuse(err, seq).await;
        }
        warn!(code = %err.code, message = %err.message, %doc, "refused");
        self.shared.metrics.error(err.code);
        self.reply_on(
            doc,
            ServerMsg::Error {
                code: err.code,
                message: err.message,
                seq,
            },
        )
        .await
    }

    async fn join(&mut self, join: Join) -> Result<(), End> {
        let role = crate::access::role_for(
            self.shared.config.access_token.as_ref(),
            self.shared.config.read_only_token.as_ref(),
            join.token.as_deref(),
        );
        let Some(role) = role else {
            return self
                .refuse(ProtocolError::from_code(ErrorCode::Unauthorized), None)
                .await;
        };
        let read_only = role == crate::access::Role::Viewer;
        let room_id = match RoomId::parse_for_wire(&join.room) {
            Ok(r) => r,
            Err(e) => return self.refuse(e, None).await,
        };
        let name = match UserName::parse_for_wire(&join.user) {
            Ok(n) => n,
            Err(e) => return self.refuse(e, None).await,
        };
        if let Some(Err(e)) = join.version.as_ref().map(|v| check_version(v.as_slice())) {
            // Not fatal: the connection may join again without it.
            let msg = format!(
                "The join's \"version\" is not a version vector ({e}); join without it to load the whole document."
            );
            return self
                .refuse(ProtocolError::new(ErrorCode::BadUpdate, msg), None)
                .await;
        }
        let config = &self.shared.config;
        let join_protocol = join.protocol;
        let (tx, rx) = mpsc::channel(config.outbound_queue);
        let doc_encoding = if join.reads(collab_protocol::DocEncoding::Zlib) {
            collab_doc::DocEncoding::Zlib
        } else {
            collab_doc::DocEncoding::Raw
        };
        let req = JoinRequest {
            name,
            session: join.session,
            version: join.version.map(|v| v.into_inner()),
            link: Link {
                conn: self.conn_id,
                tx,
                control: Arc::clone(&self.control),
            },
            limits: config.limits(),
            max_users: config.max_users_per_room,
            read_only,
            protocol: join.protocol,
            workspace: config.workspace_limits(),
            doc_encoding,
            text_first: join.text_first,
        };
        match self.shared.registry.enter(&room_id, req).await {
            Ok((room, joined)) => {
                self.shared.metrics.joined();
                info!(room = %room_id, user = joined.id, name = %joined.name, resumed = joined.resumed, read_only, "joined");
                self.member = Some(Membership {
                    shared: Arc::clone(&self.shared),
                    room,
                    id: joined.id,
                    conn: self.conn_id,
                    reason: LeftReason::Disconnected,
                    read_only,
                });
                self.rx = Some(rx);
                self.protocol = join_protocol;
                Ok(())
            }
            // Refused because the node is stopping: the client hears
            // `shutdown` and joins again elsewhere.
            Err(_) if self.shared.registry.closing() => Err(End::Shutdown),
            Err(e) => self.refuse(e, None).await,
        }
    }

    /// Leaves the room (so the others hear at once), then says goodbye on
    /// the socket as the way of ending asks.
    async fn finish(mut self, end: End) {
        debug!(?end, "closing");
        match &end {
            End::Fatal(e) | End::Removed(e) | End::FrameTooLarge(e) => {
                self.shared.metrics.error(e.code);
            }
            End::Kicked(KickReason::SlowConsumer) => {
                self.shared.metrics.error(ErrorCode::SlowConsumer);
            }
            _ => {}
        }
        let reason = match &end {
            End::ClientClosed | End::Left => LeftReason::Left,
            End::Dropped | End::Timeout | End::Shutdown => LeftReason::Disconnected,
            End::Fatal(_)
            | End::Removed(_)
            | End::FrameTooLarge(_)
            | End::BadUtf8
            | End::Kicked(_) => LeftReason::Removed,
        };
        if let Some(mut m) = self.member.take() {
            m.reason = reason;
        }
        self.rx = None;
        let short = Duration::from_millis(250);
        let ws = &mut self.ws;
        if self.partial {
            // Mid-message: only a control frame may go out now.
            let frame = close_frame(CloseCode::Away, "closing");
            let _ = timeout(short, ws.close(frame)).await;
            return;
        }
        match end {
            End::ClientClosed => {
                // tungstenite queued the echo of the client's close when it
                // read it; a flush sends it (a close would be refused as
                // "sent after closing").
                let _ = timeout(short, ws.flush()).await;
            }
            End::Left => {
                let frame = close_frame(CloseCode::Normal, "left");
                let _ = timeout(Duration::from_secs(1), close_and_wait(ws, frame)).await;
            }
            End::BadUtf8 => {
                let frame = close_frame(CloseCode::Invalid, "text frame is not UTF-8");
                let _ = timeout(Duration::from_secs(1), close_and_wait(ws, frame)).await;
            }
            End::Dropped => {}
            End::Timeout => {
                let frame = close_frame(CloseCode::Away, "no answer to pings");
                let _ = timeout(short, ws.close(frame)).await;
            }
            End::Fatal(e) | End::Removed(e) => {
                let frame = match e.code {
                    // Full: try again later, like the connection caps.
                    ErrorCode::ServerFull | ErrorCode::RoomFull => {
                        close_frame(CloseCode::Again, "full")
                    }
                    _ => close_frame(CloseCode::Policy, "refused"),
                };
                let msg = ServerMsg::from(e);
                let _ = timeout(Duration::from_secs(1), say_and_close(ws, &msg, frame)).await;
            }
            End::FrameTooLarge(e) => {
                let _ = timeout(Duration::from_secs(1), async {
                    ws.send(Message::Text(ServerMsg::from(e).to_json().into()))
                        .await?;
                    ws.close(close_frame(CloseCode::Size, "frame too large"))
                        .await
                })
                .await;
                // Swallow the rest of the oversized frame and the close.
                let limit = self.shared.config.max_frame_bytes.saturating_mul(4);
                let _ = timeout(Duration::from_secs(2), drain(ws.get_mut(), limit)).await;
            }
            End::Kicked(KickReason::SlowConsumer) => {
                // The client is behind by definition: give it as long as a
                // stalled write gets (two ping intervals) to read what is in
                // flight, then the reason, then the close.
                let msg = ServerMsg::error(ErrorCode::SlowConsumer);
                let frame = close_frame(CloseCode::Again, "too slow");
                let limit = self.shared.config.ping_interval * 2;
                let _ = timeout(limit, say_and_close(ws, &msg, frame)).await;
            }
            End::Kicked(KickReason::Replaced) => {
                let frame = close_frame(CloseCode::Normal, "session resumed elsewhere");
                let _ = timeout(short, ws.close(frame)).await;
            }
            End::Shutdown => {
                let msg = ServerMsg::Shutdown {
                    message: "The server is shutting down; reconnect later.".into(),
                };
                let frame = close_frame(CloseCode::Away, "server shutting down");
                let _ = timeout(Duration::from_secs(1), say_and_close(ws, &msg, frame)).await;
            }
        }
        debug!(shutting_down = self.shutdown.is_shutdown(), "closed");
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn size_of_future<F>(_: &F) -> usize {
        std::mem::size_of::<F>()
    }

    /// A task's future is allocated at its largest state for the life of
    /// the connection: keep the deep paths boxed so an idle one is small.
    #[tokio::test]
    async fn an_idle_connection_task_stays_small() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let ws = tokio_tungstenite::WebSocketStream::from_raw_socket(
            crate::tls::Stream::plain(s),
            tokio_tungstenite::tungstenite::protocol::Role::Server,
            None,
        )
        .await;
        let shared = Arc::new(Shared::new(crate::Config::default()));
        let (tx, _rx) = tokio::sync::broadcast::channel(1);
        let (done, _done_rx) = mpsc::channel(1);
        let task = serve(ws, addr, shared, Shutdown::new(tx.subscribe(), done));
        let size = size_of_future(&task);
        assert!(size < 3 * 1024, "the connection future is {size} bytes");
    }
}
