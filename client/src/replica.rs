//! [`Replica`]: the sans-IO sync state of one client (no tokio, no sockets).

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::time::Duration;

use collab_doc::{DocError, SharedDoc, TextChange, Undo};
use collab_protocol::{
    Base64Bytes, ClientMsg, DocEncoding, DocKind, ErrorCode, Join, LeftReason, Limits, Member,
    MemberRef, PROTOCOL_VERSION, Presence, ProtocolError, ServerMsg, UserId, Welcome,
};

/// What the owner of a [`Replica`] must do after [`Replica::handle`].
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Send this event to the server (through the [`crate::Connection`]).
    Send(ClientMsg),
    /// Tell the user (or the test) about this.
    Event(ClientEvent),
}

/// Something that happened, for the user interface.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientEvent {
    /// The transport connected; the `join` goes out with this event
    /// (from [`crate::Session`], as are the next two).
    Connected,
    /// The connection dropped: edits stay local until the next welcome.
    /// The transport retries in `retry_in` (`None` while suspended).
    Disconnected {
        reason: String,
        retry_in: Option<Duration>,
    },
    /// The transport stopped for good, with the fatal error if there was
    /// one. No event follows.
    Closed {
        error: Option<ProtocolError>,
    },
    /// Joined (or re-joined) the room; the document now holds everything the
    /// server had at the welcome, and what the server lacked is on its way
    /// (see [`Replica::unsent_edits`]).
    Welcome {
        you: Member,
        members: Vec<Member>,
        /// This join took over a live session (the others saw no leave).
        resumed: bool,
        /// The first welcome of this replica.
        first: bool,
    },
    /// The text changed because of the server (a remote edit, a seed, the
    /// welcome's document): drain [`Replica::take_changes`].
    DocChanged,
    /// The first welcome came with the room's text ahead of its document
    /// ([`Replica::text_first`]): show `text` now, read-only, and call
    /// [`Replica::settle`] once it is on screen. Settling loads the
    /// document (the long part), then the [`ClientEvent::Welcome`] follows,
    /// and [`Replica::take_changes`] gives the change from `text` to the
    /// document's text (usually none).
    TextFirst {
        text: String,
    },
    MemberJoined(Member),
    /// A member's details changed (its role, after it resumed its session
    /// with another token); [`Replica::members`] holds the new ones.
    MemberChanged(Member),
    MemberLeft {
        id: UserId,
        name: String,
        reason: LeftReason,
    },
    Chat {
        from: MemberRef,
        text: String,
        time: u64,
    },
    Direct {
        from: MemberRef,
        to: String,
        text: String,
        time: u64,
    },
    /// A member's cursor or selection moved; see [`Replica::member_cursor`].
    Presence {
        id: UserId,
    },
    /// The server merged my update `seq`; `unsent` edits remain unacked.
    Acked {
        seq: u64,
        unsent: usize,
    },
    /// The answer to my seed: `applied` is false when the room had text.
    Seeded {
        applied: bool,
    },
    /// My seed did not go into the empty room: it is larger than the
    /// welcome's limits allow (`too_large`, its bytes: it was not sent), or
    /// the server refused it (its `Error` follows).
    SeedRefused {
        too_large: Option<usize>,
    },
    /// The server refused something I sent (`seq` names a refused update),
    /// or the connection is about to close (fatal codes).
    Error {
        code: ErrorCode,
        message: String,
        seq: Option<u64>,
    },
    /// The server sent document bytes this replica could not merge (a bug
    /// or a hostile server). The document is unchanged.
    BadServerData {
        message: String,
    },
    /// The server is stopping; the transport reconnects later.
    Shutdown {
        message: String,
    },
}

/// Where the replica stands with the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncState {
    /// No connection (or the owner has not sent [`Replica::join_msg`] yet).
    /// Edits are local only and reach the server after the next welcome.
    Offline,
    /// `join` sent, waiting for the welcome. Edits stay local until then.
    Joining,
    /// Welcomed: every edit is sent at once.
    Live,
}

/// The sans-IO state of one client in one room: its document replica, the
/// undo history of its own edits, the session token and the updates the
/// server has not acknowledged yet.
///
/// A `Replica` does no IO. A [`crate::Session`] plugs it into a transport
/// (the editor and [`crate::Client`] drive one): it sends
/// [`Replica::join_msg`] on every connect, calls [`Replica::handle`] on each
/// server event and [`Replica::on_disconnect`] on a drop, and resends when
/// acks stall. Its owner sends what [`Replica::edit`], [`Replica::undo`],
/// [`Replica::redo`], [`Replica::seed`] and [`Replica::presence`] return.
///
/// Editing is local-first: [`Replica::edit`] changes the document at once,
/// whatever the connection does. Offline edits are not queued as messages:
/// on every welcome the replica compares versions and sends exactly what
/// the server lacks, so nothing is lost and nothing is resent blindly.
///
/// The document tracks its changes: after every call that may change the
/// text (`edit`, `undo`, `redo`, `handle`), drain [`Replica::take_changes`]
/// and apply the deltas, in order, to the editor's buffer. Local edits show
/// up there too, so the buffer can simply mirror the document. The first
/// welcome's snapshot is imported into this same document (never swapped
/// for a fresh one), so if the user typed before the welcome, the delta is
/// relative to the text the buffer already shows.
///
/// Each `Replica` has a fresh random Loro peer id; make a new `Replica` per
/// process or session, never persist and reuse one's peer id.
pub struct Replica {
    doc: SharedDoc,
    undo: Undo,
    state: SyncState,
    welcomes: u64,
    session: Option<String>,
    next_seq: u64,
    /// The first seq of the current connection: an answer to an earlier
    /// one is stale (see [`Self::is_stale`]).
    connection_seqs_from: u64,
    /// Updates sent and not acked yet, by seq.
    unacked: BTreeMap<u64, InFlight>,
    /// Updates sent, not answered yet, whose edits a resend carries again
    /// (see [`Self::resend_lost_before`]): their answers are stale.
    superseded: BTreeSet<u64>,
    /// Local edits not yet put into an update.
    unflushed: usize,
    /// Parts of a big update (cut to fit the server's frame limit) waiting
    /// for the ack of the part before them.
    outbox: VecDeque<InFlight>,
    pending_seed: Option<String>,
    you: Option<Member>,
    members: Vec<Member>,
    presence: HashMap<UserId, Presence>,
    limits: Option<Limits>,
    diverged: bool,
    /// A welcome whose document is still arriving in `doc_part` and
    /// `update` events, with the updates so far.
    assembling: Option<(Welcome, Vec<Vec<u8>>)>,
    /// Ask a first welcome for the room's text ahead of the document.
    text_first: bool,
    /// A first welcome whose text is shown and whose document waits for
    /// [`Self::settle`].
    shown: Option<Shown>,
    /// What settling returned where no effects could be (an edit made
    /// while the text shown first waited): given by the next
    /// [`Self::handle`] or [`Self::settle`].
    late: Vec<Effect>,
}

/// A first welcome assembled, its text shown ahead of its document.
struct Shown {
    welcome: Welcome,
    updates: Vec<Vec<u8>>,
    text: String,
}

/// An update on its way to the server (or waiting in the outbox).
#[derive(Debug, Clone)]
struct InFlight {
    /// The update's bytes while in the outbox (empty once sent).
    data: Vec<u8>,
    /// Local edits it carries.
    edits: usize,
    /// The version it was exported from (for a part of a cut update, the
    /// version after the parts before it): resending from there makes up
    /// for it if it is lost.
    from: Vec<u8>,
    /// The peer ids whose changes it carries: my own, and in a catch-up
    /// after the server lost history, whatever it lacked. A resend carries
    /// these again and nothing else (the server refuses an update carrying
    /// another session's ids, even changes it has).
    peers: Vec<u64>,
    sending: Sending,
}

/// Whether an update carries edits for the first time or again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sending {
    First,
    /// Again, after updates were lost (see [`Replica::resend_lost_before`]).
    Resend,
}

impl Default for Replica {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Replica {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replica")
            .field("doc", &self.doc)
            .field("state", &self.state)
            .field("welcomes", &self.welcomes)
            .field("unacked", &self.unacked)
            .field("unflushed", &self.unflushed)
            .field("outbox", &self.outbox.len())
            .finish_non_exhaustive()
    }
}

impl Replica {
    /// An empty replica with a fresh peer id, tracking its text changes.
    pub fn new() -> Self {
        let mut doc = SharedDoc::new();
        doc.track_changes();
        let undo = doc.undo_manager();
        Self {
            doc,
            undo,
            state: SyncState::Offline,
            welcomes: 0,
            session: None,
            next_seq: 1,
            connection_seqs_from: 1,
            unacked: BTreeMap::new(),
            superseded: BTreeSet::new(),
            unflushed: 0,
            outbox: VecDeque::new(),
            pending_seed: None,
            you: None,
            members: Vec::new(),
            presence: HashMap::new(),
            limits: None,
            diverged: false,
            assembling: None,
            text_first: false,
            shown: None,
            late: Vec::new(),
        }
    }

    /// Asks the first welcome for the room's text ahead of its document
    /// (`join.text_first`): a long history takes many milliseconds to
    /// load (automerge-paper: about 12 ms), the text far less. The welcome
    /// then comes as [`ClientEvent::TextFirst`], and the owner calls
    /// [`Self::settle`] once that text is on screen.
    pub fn text_first(mut self) -> Self {
        self.text_first = true;
        self
    }

    /// Loads the document of a welcome whose text was shown first
    /// ([`ClientEvent::TextFirst`]) and returns the welcome's effects; with
    /// nothing waiting, only effects kept from an edit made meanwhile.
    /// Every call that needs the document settles first, so an owner that
    /// forgets still converges; until then the document is empty.
    pub fn settle(&mut self) -> Vec<Effect> {
        let mut out = std::mem::take(&mut self.late);
        if let Some(Shown {
            welcome,
            updates,
            text,
        }) = self.shown.take()
        {
            self.on_welcome(welcome, updates, Some(text), &mut out);
        }
        out
    }

    /// A welcome's text is shown and its document waits for
    /// [`Self::settle`].
    pub fn is_showing_text_first(&self) -> bool {
        self.shown.is_some()
    }

    /// Settles where the effects cannot be returned: they wait in `late`.
    fn settle_quietly(&mut self) {
        if self.shown.is_some() {
            let out = self.settle();
            self.late.extend(out);
        }
    }

    // ----- connection lifecycle -------------------------------------------

    /// The `join` to send on every new connection. It carries the session
    /// token of the last welcome (to take over the session after a drop)
    /// and, once the document has any history, its version, so that the
    /// welcome brings only what this replica lacks.
    pub fn join_msg(&mut self, room: &str, user: &str, token: Option<&str>) -> ClientMsg {
        self.settle_quietly();
        self.state = SyncState::Joining;
        self.connection_seqs_from = self.next_seq;
        let has_history = self.welcomes > 0 || self.doc.history_len() > 0;
        ClientMsg::Join(Join {
            protocol: PROTOCOL_VERSION,
            room: room.to_owned(),
            user: user.to_owned(),
            session: self.session.clone(),
            token: token.map(str::to_owned),
            version: has_history.then(|| Base64Bytes(self.doc.version())),
            // A newcomer's history compressed: automerge-paper's welcome
            // 345 KB of base64 -> about 150 KB (docs/protocol.md 5.1).
            doc_encodings: vec![DocEncoding::Zlib.as_str().to_owned()],
            text_first: self.text_first && !has_history,
        })
    }

    /// The connection dropped: edits stay local until the next welcome.
    pub fn on_disconnect(&mut self) {
        // The welcome came whole: its document is the room's.
        self.settle_quietly();
        self.state = SyncState::Offline;
        self.assembling = None;
        // Offline edits go under an id nobody has seen (see
        // `SharedDoc::author_fresh`); the next welcome gives the session's.
        self.doc.author_fresh();
        self.presence.clear();
    }

    /// Forget the session token, e.g. after a `bad_session` refusal, so the
    /// next join starts a new session.
    pub fn forget_session(&mut self) {
        self.session = None;
    }

    /// Handles one server event, returning what to send and what to show.
    /// Nothing a server sends makes this panic; bytes that do not merge
    /// leave the document unchanged and come back as
    /// [`ClientEvent::BadServerData`].
    pub fn handle(&mut self, msg: ServerMsg) -> Vec<Effect> {
        let mut out = self.settle();
        if self.is_stale(&msg) {
            return out;
        }
        match msg {
            ServerMsg::Welcome(w) if w.doc_parts > 0 || w.doc_updates > 0 => {
                self.assembling = Some((*w, Vec::new()));
            }
            ServerMsg::Welcome(w) => self.welcome_or_show(*w, Vec::new(), &mut out),
            ServerMsg::DocPart { data } => match self.assembling.as_mut() {
                Some((w, _)) if w.doc_parts > 0 => {
                    w.doc.0.extend_from_slice(data.as_slice());
                    w.doc_parts -= 1;
                    self.welcome_if_assembled(&mut out);
                }
                _ => out.push(Effect::Event(ClientEvent::BadServerData {
                    message: "the server sent a part of a document no welcome announced".into(),
                })),
            },
            ServerMsg::Update { data, .. }
                if self
                    .assembling
                    .as_ref()
                    .is_some_and(|(w, _)| w.doc_parts == 0 && w.doc_updates > 0) =>
            {
                if let Some((w, updates)) = self.assembling.as_mut() {
                    updates.push(data.into_inner());
                    w.doc_updates -= 1;
                }
                self.welcome_if_assembled(&mut out);
            }
            ServerMsg::Update { data, .. } => match self.doc.import(data.as_slice()) {
                Ok(true) => out.push(Effect::Event(ClientEvent::DocChanged)),
                Ok(false) => {}
                Err(e) => out.push(bad_data("update", &e)),
            },
            ServerMsg::Ack { seq } => {
                self.unacked.remove(&seq);
                self.superseded.remove(&seq);
                if !self.resend_lost_before(seq, None, &mut out) {
                    out.extend(self.release().map(Effect::Send));
                }
                out.push(Effect::Event(ClientEvent::Acked {
                    seq,
                    unsent: self.unsent_edits(),
                }));
            }
            ServerMsg::Joined { member } => {
                self.members.retain(|m| m.id != member.id);
                self.members.push(member.clone());
                out.push(Effect::Event(ClientEvent::MemberJoined(member)));
            }
            ServerMsg::Member { member } => {
                if let Some(m) = self.members.iter_mut().find(|m| m.id == member.id) {
                    *m = member.clone();
                }
                out.push(Effect::Event(ClientEvent::MemberChanged(member)));
            }
            ServerMsg::Left { id, name, reason } => {
                self.members.retain(|m| m.id != id);
                self.presence.remove(&id);
                out.push(Effect::Event(ClientEvent::MemberLeft { id, name, reason }));
            }
            ServerMsg::Chat { from, text, time } => {
                out.push(Effect::Event(ClientEvent::Chat { from, text, time }));
            }
            ServerMsg::Direct {
                from,
                to,
                text,
                time,
            } => out.push(Effect::Event(ClientEvent::Direct {
                from,
                to,
                text,
                time,
            })),
            ServerMsg::Presence { id, presence } => {
                self.presence.insert(id, presence);
                out.push(Effect::Event(ClientEvent::Presence { id }));
            }
            ServerMsg::Seeded { applied } => {
                self.pending_seed = None;
                out.push(Effect::Event(ClientEvent::Seeded { applied }));
            }
            ServerMsg::Error { seq: Some(seq), .. } if self.superseded.remove(&seq) => {
                // Refused (most likely for lack of an update the rate limit
                // dropped), but a resend since carries its edits: not a
                // divergence, nothing to tell the user.
            }
            ServerMsg::Error {
                code: ErrorCode::RateLimited,
                message,
                seq: Some(seq),
            } if self
                .unacked
                .get(&seq)
                .is_some_and(|f| f.sending == Sending::Resend) =>
            {
                // A resend dropped again: the server's bucket has not
                // refilled yet. Sending it once more at once would only feed
                // the flood (and the server removes a connection after
                // enough refusals): it stays unacked, as lost, and goes out
                // with the next ack (see `resend_lost_before`) or when acks
                // stall (`resend_unacked`).
                out.push(Effect::Event(ClientEvent::Error {
                    code: ErrorCode::RateLimited,
                    message,
                    seq: Some(seq),
                }));
            }
            ServerMsg::Error {
                code: ErrorCode::BadSession,
                ..
            } if self.welcomes > 0 => {
                // My token does not match the live member of my name: most
                // likely my own dropped connection, welcomed with a session
                // I never read (after a server restart). The token is of no
                // use any more; the connection joins again (see
                // `Connection`), nothing for the user to see.
                self.session = None;
            }
            ServerMsg::Error { code, message, seq } => {
                let mut stale = false;
                if let Some(seq) = seq {
                    let refused = self.unacked.remove(&seq);
                    // A rate-limited update was dropped: send it again. Any
                    // update refused after an earlier one went missing
                    // failed for lack of it: resend both.
                    let lost_before = self.unacked.range(..seq).next().is_some();
                    let mine = refused.is_some();
                    let retry = refused.filter(|_| code == ErrorCode::RateLimited || lost_before);
                    let resent = self.resend_lost_before(seq, retry, &mut out);
                    // Refused for lack of a lost update, and resent with it:
                    // nothing for the user to see.
                    stale = mine && resent && lost_before && code != ErrorCode::RateLimited;
                    if !resent {
                        out.extend(self.release().map(Effect::Send));
                        // (Not for a seq this replica did not send as its
                        // own: its document holds no edit of that update.)
                        if mine
                            && matches!(
                                code,
                                ErrorCode::BadUpdate
                                    | ErrorCode::DocTooLarge
                                    | ErrorCode::ReadOnly
                                    | ErrorCode::HistoryTrimmed
                            )
                        {
                            // My document holds edits the room refused.
                            self.diverged = true;
                        }
                    }
                }
                if seq.is_none()
                    && matches!(code, ErrorCode::DocTooLarge | ErrorCode::ReadOnly)
                    && self.pending_seed.take().is_some()
                {
                    let too_large = None;
                    out.push(Effect::Event(ClientEvent::SeedRefused { too_large }));
                }
                if !stale {
                    out.push(Effect::Event(ClientEvent::Error { code, message, seq }));
                }
            }
            ServerMsg::Shutdown { message } => {
                out.push(Effect::Event(ClientEvent::Shutdown { message }));
            }
        }
        out
    }

    /// An answer (`ack`, or `error` naming a seq) to an update sent on an
    /// earlier connection. The welcome of this one resynced by version
    /// (what the server lacked went out again, whatever became of those
    /// updates), so the answer says nothing about what this replica holds
    /// or sent since: a `bad_update` there is not a refusal of anything
    /// that is still to be sent, and an ack releases nothing. A server
    /// answers on the connection an update came on; one that let a session's
    /// old connection, still reading after a takeover, answer on the new
    /// one made an honest member see `bad_update` (issue 12).
    fn is_stale(&self, msg: &ServerMsg) -> bool {
        match msg {
            ServerMsg::Ack { seq } | ServerMsg::Error { seq: Some(seq), .. } => {
                *seq < self.connection_seqs_from
            }
            _ => false,
        }
    }

    /// Handles an assembled welcome once its last part or update came.
    fn welcome_if_assembled(&mut self, out: &mut Vec<Effect>) {
        if let Some((w, _)) = &self.assembling
            && w.doc_parts == 0
            && w.doc_updates == 0
            && let Some((w, updates)) = self.assembling.take()
        {
            self.welcome_or_show(w, updates, out);
        }
    }

    /// A first welcome with text, to a replica that asked for it and has
    /// nothing of its own: the text is shown and the document waits for
    /// [`Self::settle`]. Any other welcome is handled at once.
    fn welcome_or_show(&mut self, mut w: Welcome, updates: Vec<Vec<u8>>, out: &mut Vec<Effect>) {
        let text = w.text.take();
        let ahead =
            text.filter(|_| self.text_first && self.welcomes == 0 && self.doc.history_len() == 0);
        let shown = ahead.and_then(|z| {
            let cap = w.limits.max_doc_bytes;
            match collab_doc::zlib::inflate(z.as_slice(), cap).map(String::from_utf8) {
                Ok(Ok(text)) => Some(text),
                Ok(Err(_)) => {
                    out.push(Effect::Event(ClientEvent::BadServerData {
                        message: "the welcome's text is not UTF-8".into(),
                    }));
                    None
                }
                Err(e) => {
                    out.push(bad_data("welcome text", &e));
                    None
                }
            }
        });
        match shown.filter(|t| !t.is_empty()) {
            Some(text) => {
                out.push(Effect::Event(ClientEvent::TextFirst { text: text.clone() }));
                self.shown = Some(Shown {
                    welcome: w,
                    updates,
                    text,
                });
            }
            None => self.on_welcome(w, updates, None, out),
        }
    }

    /// `updates` are the welcome's `doc_updates`, imported after its `doc`;
    /// `shown`, the text the owner shows in place of the document so far.
    fn on_welcome(
        &mut self,
        mut w: Welcome,
        updates: Vec<Vec<u8>>,
        shown: Option<String>,
        out: &mut Vec<Effect>,
    ) {
        if w.doc_encoding == Some(DocEncoding::Zlib) {
            // Capped at the most a room keeps for the largest text it
            // allows: a server cannot make this replica allocate more.
            let cap = collab_doc::history_bound(w.limits.max_doc_bytes);
            match collab_doc::zlib::inflate(w.doc.as_slice(), cap) {
                Ok(doc) => w.doc = Base64Bytes(doc),
                Err(e) => {
                    out.push(bad_data("welcome document", &e));
                    w.doc = Base64Bytes(Vec::new());
                }
            }
        }
        let first = self.welcomes == 0;
        self.welcomes += 1;
        self.session = Some(w.session);
        self.limits = Some(w.limits);
        // From now on my edits are authored under the peer id the room gave
        // this session (a peer id is bound to one session, see protocol.md).
        if let Err(e) = self.doc.author_as(w.peer) {
            out.push(bad_data("welcome peer", &e));
        }
        self.members = w.members.clone();
        self.you = Some(w.you.clone());
        self.presence.clear();
        // Snapshot or updates, both are imported into this document: it may
        // hold edits made before the welcome, and the change log must stay
        // relative to the text the editor shows.
        let docs = std::iter::once(w.doc.as_slice())
            .chain(updates.iter().map(Vec::as_slice))
            .filter(|d| !d.is_empty());
        let mut unmergeable = None;
        for doc in docs {
            match self.doc.import(doc) {
                Ok(true) => out.push(Effect::Event(ClientEvent::DocChanged)),
                Ok(false) => {}
                Err(e) if w.doc_kind == DocKind::Snapshot => {
                    unmergeable = Some(e);
                    break;
                }
                Err(e) => out.push(bad_data("welcome document", &e)),
            }
        }
        // The room's whole document that does not merge into mine: it
        // trimmed history mine builds on (docs/protocol.md, "Trimmed
        // history"). Mine is replaced by it; my edits it lacks are lost.
        let mut lost_edits = false;
        if let Some(e) = unmergeable {
            lost_edits = !self
                .doc
                .is_covered_by(w.version.as_slice())
                .unwrap_or(false);
            let tail: Vec<&[u8]> = updates.iter().map(Vec::as_slice).collect();
            match self.doc.replace_with(w.doc.as_slice(), &tail) {
                Ok(()) => {
                    let _ = self.doc.author_as(w.peer);
                    self.undo = self.doc.undo_manager();
                    out.push(Effect::Event(ClientEvent::DocChanged));
                    if lost_edits {
                        out.push(Effect::Event(ClientEvent::Error {
                            code: ErrorCode::HistoryTrimmed,
                            message: "Your edits made while away build on history the room no longer keeps: they could not be merged, and the room's text replaced yours.".into(),
                            seq: None,
                        }));
                    }
                }
                Err(_) => {
                    lost_edits = false;
                    out.push(bad_data("welcome document", &e));
                }
            }
        }
        if let Some(shown) = shown {
            // The owner shows `shown`, not the empty text the imports
            // logged their changes against.
            self.doc.changes_from_shown(&shown);
            out.push(Effect::Event(ClientEvent::DocChanged));
        }
        self.state = SyncState::Live;
        out.push(Effect::Event(ClientEvent::Welcome {
            you: w.you,
            members: w.members,
            resumed: w.resumed,
            first,
        }));
        // Whatever was unacked is either on the server already or in what
        // it lacks now: one update replaces them all.
        let carried = self.unsent_edits();
        self.unacked.clear();
        self.superseded.clear();
        self.outbox.clear();
        self.unflushed = 0;
        // Edits lost to a replaced document: the room and I differed.
        self.diverged = lost_edits;
        let budget = self.frame_budget();
        match self.doc.is_covered_by(w.version.as_slice()) {
            Ok(true) => {}
            Ok(false) => match self.doc.updates_since_chunked(w.version.as_slice(), budget) {
                Ok(parts) => {
                    // Mine, or history the server lost (a restart).
                    let peers = self
                        .doc
                        .peers_after(w.version.as_slice())
                        .unwrap_or_default();
                    self.enqueue(
                        parts,
                        w.version.as_slice().to_vec(),
                        peers,
                        carried.max(1),
                        Sending::First,
                    );
                    out.extend(self.release().map(Effect::Send));
                }
                Err(e) => out.push(bad_data("welcome version", &e)),
            },
            Err(e) => out.push(bad_data("welcome version", &e)),
        }
        self.doc.mark_all_sent();
        let Some(text) = self.pending_seed.take().filter(|_| self.doc.is_empty()) else {
            return;
        };
        // JSON escaping can double the size; leave room for it.
        let (bytes, frame) = (text.len(), w.limits.max_frame_bytes.saturating_sub(64) / 2);
        if bytes > w.limits.max_doc_bytes || bytes > frame {
            let too_large = Some(bytes);
            out.push(Effect::Event(ClientEvent::SeedRefused { too_large }));
        } else {
            out.push(Effect::Send(ClientMsg::Seed { text: text.clone() }));
            self.pending_seed = Some(text);
        }
    }

    /// The server answers updates in order, so when it answers `seq`, every
    /// unanswered update before it was dropped (rate limit). Resends them
    /// (and `also`, a dropped `seq` itself) from the oldest one's version.
    /// Returns whether anything was resent.
    ///
    /// The resend carries every local edit since that version, so it also
    /// carries the updates still in flight after `seq` and the outbox. Those
    /// are superseded: the server may well refuse one (it builds on the
    /// dropped update, which the server lacks), and that refusal is stale.
    /// It carries the changes of the peer ids they carried and of my
    /// current id only: other members' changes received since came from the
    /// server, which has them, and refuses an update carrying another
    /// session's ids.
    fn resend_lost_before(
        &mut self,
        seq: u64,
        also: Option<InFlight>,
        out: &mut Vec<Effect>,
    ) -> bool {
        let later = self.unacked.split_off(&seq);
        let lost = std::mem::replace(&mut self.unacked, later);
        let mut lost: Vec<(u64, InFlight)> = lost.into_iter().collect();
        lost.extend(also.map(|f| (seq, f)));
        let Some((_, oldest)) = lost.first() else {
            return false;
        };
        if self.doc.resend_from(&oldest.from).is_err() {
            return false;
        }
        let in_flight = std::mem::take(&mut self.unacked);
        let mut peers = vec![self.doc.peer_id()];
        for f in lost
            .iter()
            .map(|(_, f)| f)
            .chain(in_flight.values())
            .chain(&self.outbox)
        {
            peers.extend(&f.peers);
        }
        peers.sort_unstable();
        peers.dedup();
        let queued: usize = self.outbox.drain(..).map(|f| f.edits).sum();
        let carried = lost.iter().map(|(_, f)| f.edits).sum::<usize>()
            + in_flight.values().map(|f| f.edits).sum::<usize>();
        for s in lost
            .iter()
            .map(|(s, _)| *s)
            .chain(in_flight.keys().copied())
        {
            if s != seq {
                self.superseded.insert(s);
            }
        }
        while self.superseded.len() > MAX_SUPERSEDED {
            self.superseded.pop_first();
        }
        self.unflushed += carried.max(1) + queued;
        if let Some(msg) = self.flush_as(Sending::Resend, Some(peers)) {
            out.push(Effect::Send(msg));
        }
        true
    }

    /// Largest update bytes that fit the server's frame limit once in base64
    /// inside the JSON event.
    fn frame_budget(&self) -> usize {
        match self.limits {
            Some(l) => (l.max_frame_bytes.saturating_sub(512) / 4 * 3).max(1024),
            None => usize::MAX,
        }
    }

    /// Queues the parts of one update, which carries the changes of
    /// `peers`; the edits count with the last part.
    fn enqueue(
        &mut self,
        parts: Vec<Vec<u8>>,
        from: Vec<u8>,
        peers: Vec<u64>,
        edits: usize,
        sending: Sending,
    ) {
        let last = parts.len().saturating_sub(1);
        let mut from = from;
        for (i, data) in parts.into_iter().enumerate() {
            // The next part starts where this one ends: a lost part is
            // resent from there, without the parts before it the server
            // acked (resending those too, one message each, could use up
            // the rate limit at the same part every time).
            let next = (i < last).then(|| {
                collab_doc::UpdateInfo::read(&data)
                    .and_then(|info| info.version_after(&from))
                    .unwrap_or_else(|_| from.clone())
            });
            self.outbox.push_back(InFlight {
                data,
                edits: if i == last { edits } else { 0 },
                from: from.clone(),
                peers: peers.clone(),
                sending,
            });
            if let Some(next) = next {
                from = next;
            }
        }
    }

    /// Sends the next queued part: one at a time while a big update's parts
    /// go out, each after the ack of the one before.
    fn release(&mut self) -> Option<ClientMsg> {
        if self.state != SyncState::Live {
            return None;
        }
        let mut next = self.outbox.pop_front()?;
        let seq = self.take_seq();
        let data = std::mem::take(&mut next.data);
        self.unacked.insert(seq, next);
        Some(ClientMsg::Update {
            seq,
            data: Base64Bytes(data),
        })
    }

    /// Resends everything not acked yet as one new update, exported from
    /// the oldest unacked update's version. For when acks stop coming while
    /// [`Self::unsent_edits`] is not zero (a couple of seconds is plenty on
    /// a live connection): the last updates were dropped by the server's
    /// rate limit and nothing later revealed it, or a resend was dropped
    /// again (it is not resent at once, which would only feed the flood).
    /// Harmless if they were only
    /// slow: the server ignores what it already has. `None` when nothing is
    /// unacked or while not live.
    pub fn resend_unacked(&mut self) -> Option<ClientMsg> {
        if self.state != SyncState::Live {
            return None;
        }
        let mut out = Vec::new();
        self.resend_lost_before(u64::MAX, None, &mut out);
        out.into_iter().find_map(|e| match e {
            Effect::Send(m) => Some(m),
            Effect::Event(_) => None,
        })
    }

    fn take_seq(&mut self) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        seq
    }

    // ----- editing -----------------------------------------------------------

    /// Replaces `delete` chars at char position `pos` with `insert`, at once,
    /// and returns the update to send (`None` while not [`SyncState::Live`]:
    /// the edit then reaches the server after the next welcome).
    pub fn edit(
        &mut self,
        pos: usize,
        delete: usize,
        insert: &str,
    ) -> Result<Option<ClientMsg>, DocError> {
        self.edit_local(pos, delete, insert)?;
        Ok(self.flush())
    }

    /// Like [`Self::edit`] without producing the update: call
    /// [`Self::flush`] later to send several edits as one update (each edit
    /// is still its own operation and its own undo step).
    pub fn edit_local(&mut self, pos: usize, delete: usize, insert: &str) -> Result<(), DocError> {
        if delete == 0 && insert.is_empty() {
            return Ok(());
        }
        self.settle_quietly();
        self.doc.splice(pos, delete, insert)?;
        self.unflushed += 1;
        Ok(())
    }

    /// The update holding the local edits not sent yet, when live.
    ///
    /// An update larger than the server's frame limit (a huge paste, a long
    /// offline session) is cut into parts that go out one at a time: this
    /// returns the first, and each next part comes out of [`Self::handle`]
    /// as an [`Effect::Send`] when the ack of the one before arrives. While
    /// parts wait, `flush` queues behind them and returns `None`.
    pub fn flush(&mut self) -> Option<ClientMsg> {
        self.settle_quietly();
        self.flush_as(Sending::First, None)
    }

    /// Puts unsent changes into updates and sends the first: with `peers`,
    /// the changes of those peer ids since the sent version (a resend);
    /// otherwise everything unsent, which is my own edits (what came from
    /// the server counts as sent when imported).
    fn flush_as(&mut self, sending: Sending, peers: Option<Vec<u64>>) -> Option<ClientMsg> {
        if self.state != SyncState::Live || self.unflushed == 0 {
            return None;
        }
        let from = self.doc.sent_version();
        let budget = self.frame_budget();
        let (parts, peers) = match peers {
            Some(peers) => (self.doc.take_updates_of_chunked(&peers, budget), peers),
            None => {
                let peers = self.doc.peers_after(&from).unwrap_or_default();
                (self.doc.take_local_update_chunked(budget), peers)
            }
        };
        if parts.is_empty() {
            return None;
        }
        let waiting = !self.outbox.is_empty();
        self.enqueue(parts, from, peers, self.unflushed, sending);
        self.unflushed = 0;
        if waiting {
            // Behind the parts of an earlier big update: goes out with the
            // acks, through `handle`'s effects.
            return None;
        }
        self.release()
    }

    /// Reverts my last edit (remote edits made since stay in place). Returns
    /// the update to send; `None` when there was nothing to undo or while
    /// not live. See [`Self::can_undo`].
    pub fn undo(&mut self) -> Option<ClientMsg> {
        self.settle_quietly();
        if !self.undo.undo() {
            return None;
        }
        self.unflushed += 1;
        self.flush()
    }

    /// Re-applies my last undone edit; like [`Self::undo`].
    pub fn redo(&mut self) -> Option<ClientMsg> {
        self.settle_quietly();
        if !self.undo.redo() {
            return None;
        }
        self.unflushed += 1;
        self.flush()
    }

    pub fn can_undo(&self) -> bool {
        self.undo.can_undo()
    }

    pub fn can_redo(&self) -> bool {
        self.undo.can_redo()
    }

    /// Ends the current undo step: the next edit starts a new one.
    pub fn undo_checkpoint(&mut self) {
        self.undo.checkpoint();
    }

    /// Ends the current undo step and starts one that holds every edit
    /// until the next [`Self::undo_checkpoint`] or `undo_step`, whatever
    /// time passes (the editor decides where steps end: words, pauses).
    pub fn undo_step(&mut self) {
        self.undo.begin_group();
    }

    /// Merge my edits closer than `ms` milliseconds into one undo step
    /// (0, the default, makes every edit its own step).
    pub fn set_undo_merge_interval(&mut self, ms: i64) {
        self.undo.set_merge_interval(ms);
    }

    /// Asks the server to put `text` in the room's document if, and only
    /// if, it is empty (opening a file in a new room). Two clients seeding
    /// at once get the text once. Returns the `seed` to send when live and
    /// the document is empty; before the welcome the seed is kept and sent
    /// after it if the room turns out empty and the welcome's limits take
    /// it ([`ClientEvent::SeedRefused`] if not). The text arrives as an
    /// update from the server like any remote edit.
    pub fn seed(&mut self, text: &str) -> Option<ClientMsg> {
        self.settle_quietly();
        if text.is_empty() || !self.doc.is_empty() {
            return None;
        }
        self.pending_seed = Some(text.to_owned());
        (self.state == SyncState::Live).then(|| ClientMsg::Seed {
            text: text.to_owned(),
        })
    }

    /// A seed waits for the welcome or for its answer.
    pub fn seeding(&self) -> bool {
        self.pending_seed.is_some()
    }

    // ----- presence ----------------------------------------------------------

    /// My caret at char `cursor` and the other end of my selection at
    /// `anchor`, as stable cursors that follow their characters while
    /// others edit.
    pub fn presence(&self, cursor: usize, anchor: Option<usize>) -> ClientMsg {
        ClientMsg::Presence(Presence {
            cursor: self.doc.cursor_at(cursor).map(Base64Bytes),
            anchor: anchor.and_then(|a| self.doc.cursor_at(a)).map(Base64Bytes),
        })
    }

    /// Where a stable cursor (from a member's presence) is now, in chars.
    pub fn resolve_cursor(&self, bytes: &[u8]) -> Option<usize> {
        self.doc.resolve_cursor(bytes)
    }

    /// A member's caret and selection anchor now, in chars (`None` for a
    /// member without presence).
    pub fn member_cursor(&self, id: UserId) -> Option<(Option<usize>, Option<usize>)> {
        let p = self.presence.get(&id)?;
        let resolve =
            |b: &Option<Base64Bytes>| b.as_ref().and_then(|b| self.resolve_cursor(b.as_slice()));
        Some((resolve(&p.cursor), resolve(&p.anchor)))
    }

    /// The last presence of every member who sent one since the welcome.
    pub fn presences(&self) -> &HashMap<UserId, Presence> {
        &self.presence
    }

    // ----- reading -------------------------------------------------------------

    /// The text changes since the last call (local and remote), oldest first;
    /// each inner list is one delta over the text as it was before it.
    pub fn take_changes(&self) -> Vec<Vec<TextChange>> {
        self.doc.take_changes()
    }

    /// The whole text.
    pub fn text(&self) -> String {
        self.doc.text()
    }

    /// The document (read-only).
    pub fn doc(&self) -> &SharedDoc {
        &self.doc
    }

    pub fn state(&self) -> SyncState {
        self.state
    }

    /// How many welcomes this replica has had (1 after the first join).
    pub fn welcomes(&self) -> u64 {
        self.welcomes
    }

    /// Local edits the server has not acknowledged: "offline with N unsent
    /// edits". An edit counts until the ack of the update that carried it.
    pub fn unsent_edits(&self) -> usize {
        self.unflushed
            + self.unacked.values().map(|f| f.edits).sum::<usize>()
            + self.outbox.iter().map(|f| f.edits).sum::<usize>()
    }

    /// The server refused an edit this document holds (`bad_update`,
    /// `doc_too_large`, `read_only` or `history_trimmed`): the room and
    /// this replica differ until a fresh join without version, or until the
    /// edit is undone. Also set by a welcome whose document did not merge
    /// (the room trimmed history this replica builds on) when this replica
    /// had edits the room lacked: its document was replaced by the room's,
    /// and those edits are lost.
    pub fn diverged(&self) -> bool {
        self.diverged
    }

    /// Live, every update acked and nothing waiting to be sent.
    pub fn is_synced(&self) -> bool {
        self.state == SyncState::Live
            && self.unacked.is_empty()
            && self.outbox.is_empty()
            && self.unflushed == 0
    }

    /// The seqs of updates sent and not yet acked, oldest first.
    pub fn unacked_seqs(&self) -> impl Iterator<Item = u64> + '_ {
        self.unacked.keys().copied()
    }

    /// The session token of the last welcome.
    pub fn session(&self) -> Option<&str> {
        self.session.as_deref()
    }

    /// Me as the others see me (after a welcome).
    pub fn you(&self) -> Option<&Member> {
        self.you.as_ref()
    }

    /// Joined with a read-only token: the server refuses my edits, so the
    /// editor should not make any.
    pub fn read_only(&self) -> bool {
        self.you.as_ref().is_some_and(|m| m.read_only)
    }

    /// The room's members, me included, in order of joining.
    pub fn members(&self) -> &[Member] {
        &self.members
    }

    /// The server's limits (after a welcome).
    pub fn limits(&self) -> Option<Limits> {
        self.limits
    }

    /// The next update seq this replica will use (for tests that inject
    /// their own updates without colliding).
    pub fn next_seq(&mut self) -> u64 {
        self.take_seq()
    }
}

/// Most superseded seqs remembered (answers to older ones are treated as
/// answers to unknown seqs): a server answers every update, so this only
/// bounds the memory a server that never answers can make us hold.
const MAX_SUPERSEDED: usize = 4096;

fn bad_data(what: &str, e: &DocError) -> Effect {
    Effect::Event(ClientEvent::BadServerData {
        message: format!("the server's {what} could not be merged: {e}"),
    })
}
