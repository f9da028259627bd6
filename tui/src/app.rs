//! The editor's whole state and its one way of changing: [`App::update`].
//!
//! The app owns the [`Session`] (its [`Replica`]: the room's document, my
//! undo history and the sync state; the connection's state and the acks'
//! clock; all sans-IO) and the `Editor` (the rope the screen shows). A
//! keystroke becomes an edit on the replica, local-first; the replica's
//! deltas, mine and remote alike, are mirrored into the rope.
//! What must leave the app (messages for the server, a file to write, the
//! clipboard, quitting) is queued as an [`Order`] for the event loop, so
//! `update` itself does no IO and tests drive it with plain actions.
//!
//! This file holds the state and `update`'s dispatch; the work it dispatches
//! to is split by concern into child modules, each an `impl App` block:
//! `view` (layout, the frame before drawing, scrolling, clicks), `edit`
//! (text commands, typing, undo), `mirror` (deltas into the rope), `prompt`
//! (find, go to line, save as), `chat_box`, `saving` (save and quit),
//! `follow`, and `session` (the client library's `Session` driven: transport
//! events and the clock in, messages and client events out).

mod buffers;
mod case_clash;
mod chat_box;
mod edit;
mod follow;
mod mirror;
mod on_disk;
mod picker;
mod prompt;
mod room;
mod save_all;
mod saving;
mod session;
mod tree_ops;
mod undo_group;
mod view;
mod workspace;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use collab_client::{JoinAs, Replica, Session};
use collab_protocol::workspace::ClientEvent as WireOut;
use collab_protocol::{ClientMsg, UserId};
use ropey::Rope;

use crate::action::Action;
use crate::editor::Editor;
use crate::highlight::{Highlight, Rgb};
use crate::input::LineInput;
use crate::keymap::{Command, KeyContext};
use crate::notices::{Level, Notices};
use crate::save::{Expect, Stamp};
use crate::theme::{ColorMode, Palette};

pub use room::{Current, Out, RoomSession};
pub use undo_group::UNDO_PAUSE;
pub use workspace::FolderStart;

/// After a reconnect, members who were here before and join again within
/// this long are back, not new: no "joined" notice.
const RETURN_WITHIN: Duration = Duration::from_secs(60);
/// Presence is sent at most this often.
const PRESENCE_EVERY: Duration = Duration::from_millis(50);
/// What typing says when I joined read-only.
pub const READ_ONLY_NOTICE: &str = "read-only: edits are not shared";
/// What typing says in a workspace before a file is open.
pub const NO_FILE_NOTICE: &str = "No file is open: pick one in the tree (F7) or with Ctrl-P.";

/// A question the last command asked ("Ctrl-Q again quits"): the same
/// command next answers yes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Armed {
    Quit,
    Save,
    /// Save As onto this existing file.
    SaveAs(PathBuf),
    /// Delete this file or folder of the workspace for everyone.
    Delete(collab_doc::tree::NodeId),
    /// Close this open file of the workspace, dropping unsaved changes.
    Close(collab_doc::tree::NodeId),
}

pub use saving::FileState;

/// What the app needs to start (not `collab_server::Config`, which
/// `collab-tui serve` builds beside it in run.rs).
#[derive(Debug, Clone)]
pub struct Startup {
    pub room: String,
    pub user: String,
    /// The server as the user named it (status bar, messages).
    pub server: String,
    pub token: Option<String>,
    /// Where saving writes.
    pub file: Option<PathBuf>,
    /// The file's text, if it exists: seeds an empty room.
    pub file_text: Option<Rope>,
    /// The file as it was read (`None`: there was none).
    pub file_stamp: Option<Stamp>,
    /// The local server this editor uses (no server was named): started
    /// again when it is found dead.
    pub local_server: Option<SocketAddr>,
    /// What FILE is on disk (said when it opens, marked in the status bar).
    pub file_on_disk: OnDisk,
    pub colors: ColorMode,
    /// Local time's offset from UTC in seconds, for chat times (read at
    /// start, while the process has one thread: see `run::main`).
    pub utc_offset: i32,
}

impl Startup {
    /// `user` joining `room` at `server` with no FILE and no token, in
    /// monochrome: what a program or test that drives an `App` starts
    /// from (`..Startup::joining(..)` for the rest).
    pub fn joining(server: &str, room: &str, user: &str) -> Self {
        Self {
            room: room.into(),
            user: user.into(),
            server: server.into(),
            token: None,
            file: None,
            file_text: None,
            file_stamp: None,
            local_server: None,
            file_on_disk: OnDisk::default(),
            colors: ColorMode::Mono,
            utc_offset: 0,
        }
    }
}

/// What the file named on the command line is on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnDisk {
    /// It exists and can be written (or no file was named).
    #[default]
    Writable,
    /// It does not exist yet: saving creates it.
    New,
    /// It exists but cannot be written.
    ReadOnly,
}

/// Something only the event loop can do, queued by [`App::update`] and
/// carried out by [`crate::outside`]. (Not the client library's
/// `collab_client::Effect`, which is what a session hands its driver: the
/// app turns those into orders and notices.)
#[derive(Debug, Clone, PartialEq)]
pub enum Order {
    Send(ClientMsg),
    /// The same on a workspace's connection (protocol 2).
    SendWs(WireOut),
    /// Write `text` to `path` if the file there is as `expect`ed, then
    /// report with `Action::Saved` (see [`crate::save::save`]).
    Save {
        path: PathBuf,
        text: Rope,
        expect: Expect,
        /// A workspace's folder: the folders between it and `path` are
        /// created first (`None`: none are, as for FILE).
        folders_under: Option<PathBuf>,
    },
    /// Carry the room's renames and deletes to the member's folder `root`
    /// (see [`crate::disk_moves`]), after the saves before it, then report
    /// with `Action::MovedOnDisk`.
    MoveOnDisk {
        moves: Vec<crate::disk_moves::DiskMove>,
        root: PathBuf,
    },
    /// Put this on the terminal's clipboard (OSC 52).
    Clipboard(String),
    /// Close the connection (after the `leave` already queued) and exit.
    Quit,
    /// Start the local server at this address if nothing listens there,
    /// then report with `Action::LocalServer`.
    StartLocalServer(SocketAddr),
    /// Connect again now rather than after the backoff.
    Reconnect,
}

/// What has the keyboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Focus {
    Text,
    Prompt,
    Chat,
    /// The workspace's tree panel.
    Tree,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromptKind {
    Find,
    GotoLine,
    SaveAs,
    /// Ctrl-P: a file of the workspace by name.
    OpenFile,
    /// The folder a workspace's files are saved under (joined without DIR).
    SaveDir,
    /// A new file (or `name/`: folder) in the tree.
    NewFile,
    /// A new name for the selected file or folder.
    Rename,
}

impl PromptKind {
    pub fn label(self) -> &'static str {
        match self {
            PromptKind::Find => "Find: ",
            PromptKind::GotoLine => "Go to line: ",
            PromptKind::SaveAs => "Save as: ",
            PromptKind::OpenFile => "Open file: ",
            PromptKind::SaveDir => "Save the room's files under folder: ",
            PromptKind::NewFile => "New file (name/ for a folder): ",
            PromptKind::Rename => "Rename to: ",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Prompt {
    pub kind: PromptKind,
    pub input: LineInput,
    /// Where an incremental find starts from.
    origin: usize,
    /// The find prompt's text has no match (said in the prompt, not in a
    /// notice per keystroke).
    pub no_match: bool,
}

/// Another member as drawn: where their caret and selection are now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub id: UserId,
    pub name: String,
    pub color: Rgb,
    pub read_only: bool,
    pub me: bool,
    pub head: Option<usize>,
    pub anchor: Option<usize>,
    /// The line (from 0) their caret is on.
    pub line: Option<usize>,
    /// The file they are in, in a workspace.
    pub file: Option<collab_doc::tree::NodeId>,
}

/// The first visible line and column of the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct View {
    pub top: usize,
    pub left: usize,
}

pub struct App {
    pub config: Startup,
    pub editor: Editor,
    /// The room and its connection: a one-file [`Session`] or a workspace
    /// (see [`RoomSession`]); it derefs to the [`Replica`] of the document
    /// on screen, so edits and reads go straight to that replica.
    pub session: RoomSession,
    /// The workspace's tree panel and share (see `workspace`).
    ws_view: workspace::WsView,
    /// The open files not on screen (see `buffers`).
    buffers: buffers::Buffers,
    /// A workspace's save all under way (see `save_all`).
    save_all_run: save_all::SaveAllRun,
    /// The local server's check, the caret last sent, who is coming back
    /// (see `session`).
    in_room: session::InRoom,
    pub peers: Vec<Peer>,
    /// The chat and a direct message awaiting its echo (see `chat_box`).
    chat_box: chat_box::ChatBox,
    pub notices: Notices,
    pub focus: Focus,
    /// The open prompt and the last query found (see [`App::prompt`]).
    prompts: prompt::Prompts,
    /// The screen's size, its parts, the help overlay and the members
    /// panel (see `view`).
    screen: view::Screen,
    pub view: View,
    pub highlight: Highlight,
    pub palette: Palette,
    pub clipboard: String,
    /// The save under way, FILE's stamp and text as last loaded or saved,
    /// what FILE is to this session, quitting (see `saving`).
    saving: saving::Saving,
    /// A question asked by the last command, answered by repeating it...
    armed: Option<Armed>,
    /// ...and, while a command runs, the question it may be answering.
    asked: Option<Armed>,
    /// Tabs or spaces was decided from the first text.
    indent_known: bool,
    pub now: Instant,
    /// Follow mode and F6's jumps.
    follow: follow::Follow,
    /// The undo step being typed.
    undo_group: undo_group::UndoGroup,
    orders: Vec<Order>,
}

impl App {
    pub fn new(config: Startup, now: Instant) -> Self {
        // A long history loads after its text is on screen.
        let mut replica = Replica::new().text_first();
        // Undo steps are where `undo_group` starts them, not by time.
        replica.set_undo_merge_interval(0);
        // FILE seeds an empty room: the session sends it after the welcome.
        if let Some(text) = config.file_text.as_ref().filter(|t| t.len_chars() > 0) {
            let _ = replica.seed(&text.to_string());
        }
        let join = JoinAs {
            room: config.room.clone(),
            user: config.user.clone(),
            token: config.token.clone(),
        };
        let session = Session::new(replica, join);
        let first_line = config
            .file_text
            .as_ref()
            .filter(|t| t.len_lines() > 0)
            .map(|t| t.line(0).to_string())
            .unwrap_or_default();
        let highlight = Highlight::for_file(config.file.as_deref(), &first_line);
        let saved = config.file_text.clone().unwrap_or_default();
        let saving = saving::Saving::new(saved, config.file_stamp);
        let palette = Palette(config.colors);
        let mut app = Self {
            config,
            editor: Editor::default(),
            session: RoomSession::OneFile(Box::new(session)),
            ws_view: workspace::WsView::default(),
            buffers: buffers::Buffers::default(),
            save_all_run: save_all::SaveAllRun::default(),
            in_room: session::InRoom::default(),
            peers: Vec::new(),
            chat_box: chat_box::ChatBox::default(),
            notices: Notices::default(),
            focus: Focus::Text,
            prompts: prompt::Prompts::default(),
            screen: view::Screen::default(),
            view: View::default(),
            highlight,
            palette,
            clipboard: String::new(),
            saving,
            armed: None,
            asked: None,
            indent_known: false,
            now,
            follow: follow::Follow::default(),
            undo_group: undo_group::UndoGroup::default(),
            orders: Vec::new(),
        };
        app.relayout();
        app
    }

    /// The orders queued since the last call, in the order given.
    pub fn take_orders(&mut self) -> Vec<Order> {
        std::mem::take(&mut self.orders)
    }

    /// Joined read-only: the server refuses my edits, so none are made.
    pub fn read_only(&self) -> bool {
        self.session.read_only()
    }

    pub fn file_name(&self) -> Option<String> {
        self.config.file.as_ref().map(|p| {
            p.file_name().map_or_else(
                || p.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            )
        })
    }

    /// What has the keyboard, for the keymap.
    pub fn key_context(&self) -> KeyContext {
        if self.help().is_some() {
            KeyContext::Help
        } else if self.focus == Focus::Text {
            KeyContext::Text
        } else if self.focus == Focus::Tree {
            KeyContext::Tree
        } else {
            KeyContext::Input
        }
    }

    /// Applies one action.
    pub fn update(&mut self, action: Action) {
        match action {
            Action::Command(c) => {
                self.asked = self.armed.take();
                self.command(c);
                self.asked = None;
            }
            Action::Type(c) => self.type_char(c),
            Action::Paste(s) => self.paste(&s),
            Action::Click {
                column,
                row,
                extend,
            } => self.click(column, row, extend),
            Action::Scroll(n) => self.scroll(n),
            Action::Resize { width, height } => self.resize(width, height),
            Action::Clock(now) => {
                self.now = now;
                self.notices.expire(now);
                self.resend_stalled();
            }
            Action::Frame => self.frame(),
            Action::Terminate => self.quit_now(),
            Action::Sync => self.sync(),
            Action::Settle => self.settle_text_first(),
            Action::Transport(ev) => self.transport(ev),
            Action::WsTransport(ev) => self.ws_transport(ev),
            Action::Saved(result) => {
                let ok = result.is_ok();
                if ok {
                    // It exists now, and could be written.
                    self.config.file_on_disk = OnDisk::Writable;
                }
                self.saved_file(result);
                self.save_all_went_on(ok);
            }
            Action::MovedOnDisk(done) => self.moved_on_disk(done),
            Action::LocalServer(result) => self.local_server(result),
            Action::FileOnDisk(found) => self.file_on_disk(found),
        }
    }

    pub(super) fn notice(&mut self, text: impl Into<String>) {
        self.notices.push(text, Level::Info, self.now);
    }

    pub(super) fn warn(&mut self, text: impl Into<String>) {
        self.notices.push(text, Level::Warn, self.now);
    }

    // ----- commands --------------------------------------------------------

    /// Runs `c`. A question the previous command asked (in `asked`) is
    /// answered yes by the same command again; any other drops it.
    fn command(&mut self, c: Command) {
        use Command::*;
        // Anywhere.
        match c {
            Help => return self.toggle_help(),
            HelpUp | HelpDown | HelpPageUp | HelpPageDown => return self.scroll_help(c),
            Quit => return self.quit(),
            Save => return self.save_in_folder(),
            SaveAll => return self.save_all(),
            SaveAs => return self.open_prompt(PromptKind::SaveAs),
            Chat => return self.toggle_chat(),
            Follow => return self.follow_next(),
            JumpToMember => return self.jump_to_member(),
            Members => return self.toggle_members(),
            Tree => return self.toggle_tree(),
            NextFile => return self.cycle_buffers(true),
            PrevFile => return self.cycle_buffers(false),
            CloseFile => return self.close_buffer(),
            Picker => return self.open_picker(),
            Cancel => {
                if self.help().is_some() {
                    self.toggle_help();
                } else if self.prompt().is_some() {
                    self.close_prompt();
                } else if self.focus == Focus::Tree {
                    self.focus = Focus::Text;
                } else if self.focus == Focus::Chat {
                    self.close_chat(None);
                    self.follow_cursor();
                } else if self.follow.active() {
                    self.stop_following();
                } else if !self.editor.selection().is_empty() {
                    let head = self.editor.head();
                    self.editor.set_cursor(head, false);
                }
                return;
            }
            _ => {}
        }
        match self.focus {
            Focus::Text => self.text_command(c),
            Focus::Prompt => self.prompt_command(c),
            Focus::Chat => self.chat_command(c),
            Focus::Tree => self.tree_command(c),
        }
    }
}
