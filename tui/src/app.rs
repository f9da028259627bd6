//! The editor's whole state and its one way of changing: [`App::update`].
//!
//! The app owns the [`Replica`] (the room's document, my undo history and
//! the sync state, all sans-IO) and the [`Editor`] (the rope the screen
//! shows). A keystroke becomes an edit on the replica, local-first; the
//! replica's deltas, mine and remote alike, are mirrored into the rope.
//! What must leave the app (messages for the server, a file to write, the
//! clipboard, quitting) is queued as an [`Effect`] for the event loop, so
//! `update` itself does no IO and tests drive it with plain actions.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use collab_client::{ClientEvent, Effect as ReplicaEffect, Replica, TransportEvent};
use collab_protocol::{ClientMsg, ErrorCode, LeftReason, Member, ServerMsg, UserId};
use ratatui::layout::{Position, Rect};
use ropey::Rope;

use crate::action::Action;
use crate::chat::{Chat, ChatLine, parse_outgoing};
use crate::editor::{Change, Editor, Selection, changed_span, find_next, find_prev, map_pos, text};
use crate::highlight::{Highlight, Rgb};
use crate::input::LineInput;
use crate::keymap::{Command, KeyContext};
use crate::notices::{Level, Notices};
use crate::ui::layout::{self, Areas, Open};
use crate::ui::theme::{ColorMode, Palette, parse_hex};

/// Presence is sent at most this often.
const PRESENCE_EVERY: Duration = Duration::from_millis(50);
/// My edits closer than this are one undo step.
const UNDO_MERGE_MS: i64 = 600;
/// Updates unacked this long are sent again (the server drops updates over
/// its rate limit without a word when nothing follows them).
pub const RESEND_AFTER: Duration = Duration::from_secs(2);
/// What typing says when I joined read-only.
pub const READ_ONLY_NOTICE: &str = "read-only: edits are not shared";

/// What the app needs to start.
#[derive(Debug, Clone)]
pub struct Config {
    pub room: String,
    pub user: String,
    /// The server as the user named it (status bar, messages).
    pub server: String,
    pub token: Option<String>,
    /// Where saving writes.
    pub file: Option<PathBuf>,
    /// The file's text, if it exists: seeds an empty room.
    pub file_text: Option<Rope>,
    pub colors: ColorMode,
}

/// Something only the event loop can do.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    Send(ClientMsg),
    /// Write `text` to `path` atomically, then report with `Action::Saved`.
    Save {
        path: PathBuf,
        text: Rope,
    },
    /// Put this on the terminal's clipboard (OSC 52).
    Clipboard(String),
    /// Close the connection (after the `leave` already queued) and exit.
    Quit,
}

/// The connection as the status bar tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Conn {
    Connecting,
    Joining,
    Live,
    /// Dropped; retrying (`retry_in` is `None` while suspended).
    Reconnecting {
        reason: String,
        retry_in: Option<Duration>,
    },
    /// Stopped for good.
    Closed {
        reason: String,
    },
}

/// What has the keyboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Focus {
    Text,
    Prompt,
    Chat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromptKind {
    Find,
    GotoLine,
    SaveAs,
}

impl PromptKind {
    pub fn label(self) -> &'static str {
        match self {
            PromptKind::Find => "Find: ",
            PromptKind::GotoLine => "Go to line: ",
            PromptKind::SaveAs => "Save as: ",
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
}

/// The first visible line and column of the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct View {
    pub top: usize,
    pub left: usize,
}

pub struct App {
    pub config: Config,
    pub editor: Editor,
    pub replica: Replica,
    pub conn: Conn,
    /// A refusal before the first welcome: the sentence to print on exit.
    pub fatal: Option<String>,
    pub me: Option<Member>,
    pub peers: Vec<Peer>,
    pub chat: Chat,
    pub notices: Notices,
    pub focus: Focus,
    pub prompt: Option<Prompt>,
    /// The help overlay's scroll offset, when open.
    pub help: Option<usize>,
    pub show_members: bool,
    pub view: View,
    pub size: Rect,
    pub areas: Areas,
    pub highlight: Highlight,
    pub palette: Palette,
    pub clipboard: String,
    pub last_search: String,
    /// The text as last loaded or saved, to tell whether it is modified.
    saved: Rope,
    pub modified: bool,
    pending_save: Option<Rope>,
    /// The chat box's text of a direct message not yet echoed by the
    /// server: if the name is nobody in the room it goes back in the box
    /// rather than being lost.
    unechoed_direct: Option<String>,
    quit_armed: bool,
    pub quitting: bool,
    /// The seed sent and not answered yet.
    pub seeding: bool,
    /// Tabs or spaces was decided from the first text.
    indent_known: bool,
    pub now: Instant,
    last_presence: Option<(Selection, Instant)>,
    /// The last ack or welcome, or when nothing was waiting for one.
    ack_progress: Instant,
    effects: Vec<Effect>,
}

impl App {
    pub fn new(config: Config, now: Instant) -> Self {
        let mut replica = Replica::new();
        replica.set_undo_merge_interval(UNDO_MERGE_MS);
        // The seed goes after the first welcome, once the room is known to
        // be empty and the server's limits are known.
        let seeding = config.file_text.as_ref().is_some_and(|t| t.len_chars() > 0);
        let first_line = config
            .file_text
            .as_ref()
            .filter(|t| t.len_lines() > 0)
            .map(|t| t.line(0).to_string())
            .unwrap_or_default();
        let highlight = Highlight::for_file(config.file.as_deref(), &first_line);
        let saved = config.file_text.clone().unwrap_or_default();
        let palette = Palette(config.colors);
        let mut app = Self {
            config,
            editor: Editor::default(),
            replica,
            conn: Conn::Connecting,
            fatal: None,
            me: None,
            peers: Vec::new(),
            chat: Chat::default(),
            notices: Notices::default(),
            focus: Focus::Text,
            prompt: None,
            help: None,
            show_members: true,
            view: View::default(),
            size: Rect::new(0, 0, 80, 24),
            areas: Areas::default(),
            highlight,
            palette,
            clipboard: String::new(),
            last_search: String::new(),
            saved,
            modified: false,
            pending_save: None,
            unechoed_direct: None,
            quit_armed: false,
            quitting: false,
            seeding,
            indent_known: false,
            now,
            last_presence: None,
            ack_progress: now,
            effects: Vec::new(),
        };
        app.relayout();
        app
    }

    /// The effects queued since the last call, in order.
    pub fn take_effects(&mut self) -> Vec<Effect> {
        std::mem::take(&mut self.effects)
    }

    /// Joined read-only: the server refuses my edits, so none are made.
    pub fn read_only(&self) -> bool {
        self.replica.read_only()
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
        if self.help.is_some() {
            KeyContext::Help
        } else if self.focus == Focus::Text {
            KeyContext::Text
        } else {
            KeyContext::Input
        }
    }

    /// Applies one action.
    pub fn update(&mut self, action: Action) {
        match action {
            Action::Command(c) => {
                if c != Command::Quit {
                    self.quit_armed = false;
                }
                self.command(c);
            }
            Action::Type(c) => self.type_char(c),
            Action::Paste(s) => self.paste(&s),
            Action::Click {
                column,
                row,
                extend,
            } => self.click(column, row, extend),
            Action::Scroll(n) => self.scroll(n),
            Action::Resize { width, height } => {
                self.size = Rect::new(0, 0, width, height);
                self.relayout();
                self.follow_cursor();
            }
            Action::Tick(now) => {
                self.now = now;
                self.notices.expire(now);
                self.resend_stalled();
            }
            Action::Frame => self.frame(),
            Action::Sync => self.sync(),
            Action::Transport(ev) => self.transport(ev),
            Action::Saved(result) => self.saved_file(result),
        }
    }

    fn notice(&mut self, text: impl Into<String>) {
        self.notices.push(text, Level::Info, self.now);
    }

    fn warn(&mut self, text: impl Into<String>) {
        self.notices.push(text, Level::Warn, self.now);
    }

    // ----- layout and view -------------------------------------------------

    fn relayout(&mut self) {
        let open = Open {
            chat: self.chat.open,
            members: self.show_members,
            prompt: self.prompt.is_some(),
            gutter: layout::gutter_width(self.editor.rope().len_lines()),
        };
        self.areas = layout::areas(self.size, open);
    }

    fn text_height(&self) -> usize {
        usize::from(self.areas.text.height.max(1))
    }

    /// Scrolls so the caret is visible.
    fn follow_cursor(&mut self) {
        let (line, col) = self.editor.line_col();
        let h = self.text_height();
        let w = usize::from(self.areas.text.width.max(1));
        if line < self.view.top {
            self.view.top = line;
        } else if line >= self.view.top + h {
            self.view.top = line + 1 - h;
        }
        if col < self.view.left {
            self.view.left = col.saturating_sub(w / 4);
        } else if col >= self.view.left + w {
            self.view.left = col + 1 - w + (w / 4).min(8);
        }
    }

    fn scroll(&mut self, lines: isize) {
        let last = self.editor.rope().len_lines().saturating_sub(1);
        self.view.top = self.view.top.saturating_add_signed(lines).min(last);
    }

    fn click(&mut self, column: u16, row: u16, extend: bool) {
        let at = Position::new(column, row);
        if let Some(chat) = self.areas.chat
            && chat.contains(at)
        {
            self.focus = Focus::Chat;
            return;
        }
        let text = self.areas.text;
        let in_text = at.y >= text.y
            && at.y < text.y + text.height
            && at.x >= self.areas.gutter.x
            && at.x < text.x + text.width;
        if !in_text {
            return;
        }
        self.focus = Focus::Text;
        let line = self.view.top + usize::from(at.y - text.y);
        let rope = self.editor.rope();
        let pos = if line >= rope.len_lines() {
            rope.len_chars()
        } else {
            let col = self.view.left + usize::from(at.x.saturating_sub(text.x));
            text::pos_at_col(rope, line, col, self.editor.tab_width)
        };
        self.editor.set_cursor(pos, extend);
        self.replica.undo_checkpoint();
        self.follow_cursor();
    }

    // ----- commands --------------------------------------------------------

    fn command(&mut self, c: Command) {
        use Command::*;
        // Anywhere.
        match c {
            Help => {
                self.help = if self.help.is_some() { None } else { Some(0) };
                return;
            }
            HelpUp => {
                self.help = self.help.map(|h| h.saturating_sub(5));
                return;
            }
            HelpDown => {
                self.help = self.help.map(|h| h + 5);
                return;
            }
            Quit => return self.quit(),
            Save => return self.save(),
            Chat => {
                let open = !(self.chat.open && self.focus == Focus::Chat);
                self.chat.set_open(open);
                self.focus = if open { Focus::Chat } else { Focus::Text };
                self.relayout();
                self.follow_cursor();
                return;
            }
            Members => {
                self.show_members = !self.show_members;
                self.relayout();
                self.follow_cursor();
                return;
            }
            Cancel => {
                if self.help.is_some() {
                    self.help = None;
                } else if self.prompt.is_some() {
                    self.close_prompt();
                } else if self.focus == Focus::Chat {
                    self.focus = Focus::Text;
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
        }
    }

    fn text_command(&mut self, c: Command) {
        use Command::*;
        let page = self.text_height().saturating_sub(1).max(1);
        let page_i = isize::try_from(page).unwrap_or(isize::MAX);
        let e = &mut self.editor;
        let moved = match c {
            MoveLeft | SelectLeft => {
                e.move_left(c == SelectLeft);
                true
            }
            MoveRight | SelectRight => {
                e.move_right(c == SelectRight);
                true
            }
            MoveUp | SelectUp => {
                e.move_up(c == SelectUp);
                true
            }
            MoveDown | SelectDown => {
                e.move_down(c == SelectDown);
                true
            }
            WordLeft | SelectWordLeft => {
                e.move_word_left(c == SelectWordLeft);
                true
            }
            WordRight | SelectWordRight => {
                e.move_word_right(c == SelectWordRight);
                true
            }
            LineStart | SelectLineStart => {
                e.move_line_start(c == SelectLineStart);
                true
            }
            LineEnd | SelectLineEnd => {
                e.move_line_end(c == SelectLineEnd);
                true
            }
            PageUp | SelectPageUp => {
                e.move_vertical(-page_i, c == SelectPageUp);
                self.view.top = self.view.top.saturating_sub(page);
                true
            }
            PageDown | SelectPageDown => {
                e.move_vertical(page_i, c == SelectPageDown);
                let last = e.rope().len_lines().saturating_sub(1);
                self.view.top = (self.view.top + page).min(last);
                true
            }
            DocStart => {
                e.move_doc_start(false);
                true
            }
            DocEnd => {
                e.move_doc_end(false);
                true
            }
            SelectAll => {
                e.select_all();
                true
            }
            _ => false,
        };
        if moved {
            self.replica.undo_checkpoint();
            self.follow_cursor();
            return;
        }
        match c {
            Backspace => {
                let ch = self.editor.backspace();
                self.edit(ch);
            }
            Delete => {
                let ch = self.editor.delete_forward();
                self.edit(ch);
            }
            Newline => {
                let ch = self.editor.newline();
                self.edit(ch);
            }
            Tab => {
                let ch = self.editor.tab();
                self.edit(ch);
            }
            Copy => {
                let text = self.editor.copy_text();
                self.copy(text);
            }
            Cut => {
                let (text, ch) = self.editor.cut();
                if self.read_only() {
                    return self.warn("Read-only: you can copy but not cut.");
                }
                self.copy(text);
                self.edit(ch);
            }
            Paste => {
                let text = self.clipboard.clone();
                let ch = self.editor.paste(&text);
                self.edit(ch);
            }
            Undo => self.undo(true),
            Redo => self.undo(false),
            Find => self.open_prompt(PromptKind::Find),
            GotoLine => self.open_prompt(PromptKind::GotoLine),
            FindNext => self.find(true, None),
            FindPrev => self.find(false, None),
            _ => {}
        }
    }

    fn copy(&mut self, text: String) {
        if text.is_empty() {
            return;
        }
        self.effects.push(Effect::Clipboard(text.clone()));
        self.clipboard = text;
    }

    fn type_char(&mut self, c: char) {
        match self.focus {
            Focus::Text => {
                let ch = self.editor.insert_char(c);
                self.edit(ch);
            }
            Focus::Prompt => {
                if let Some(p) = &mut self.prompt {
                    p.input.insert(c.encode_utf8(&mut [0; 4]));
                }
                self.incremental_find();
            }
            Focus::Chat => self.chat.input.insert(c.encode_utf8(&mut [0; 4])),
        }
    }

    fn paste(&mut self, text: &str) {
        match self.focus {
            Focus::Text => {
                let ch = self.editor.paste(text);
                self.edit(ch);
            }
            Focus::Prompt => {
                if let Some(p) = &mut self.prompt {
                    p.input.insert(text);
                }
                self.incremental_find();
            }
            Focus::Chat => self.chat.input.insert(text),
        }
    }

    // ----- text changes ----------------------------------------------------

    /// My edit: into the replica at once (local-first), then its delta into
    /// the rope; the update is sent with the next frame.
    fn edit(&mut self, change: Option<Change>) {
        let Some(change) = change else { return };
        if self.read_only() {
            return self.warn(READ_ONLY_NOTICE);
        }
        let e = &change.edit;
        if let Err(err) = self.replica.edit_local(e.pos, e.del, &e.ins) {
            return self.warn(format!("Edit not applied: {err}."));
        }
        self.pull_changes(true);
        self.editor.set_selection(change.after);
        self.follow_cursor();
    }

    fn undo(&mut self, undo: bool) {
        if self.read_only() {
            return self.warn(READ_ONLY_NOTICE);
        }
        let msg = if undo {
            self.replica.undo()
        } else {
            self.replica.redo()
        };
        if let Some(m) = msg {
            self.effects.push(Effect::Send(m));
        }
        let changes = self.replica.take_changes();
        if changes.is_empty() {
            let what = if undo { "undo" } else { "redo" };
            return self.notice(format!("Nothing to {what}."));
        }
        let mut caret = None;
        for delta in &changes {
            self.apply_delta(delta, false);
            caret = delta_end(delta).or(caret);
        }
        if let Some(c) = caret {
            self.editor.set_cursor(c, false);
        }
        self.after_text_change();
        self.follow_cursor();
    }

    /// Mirrors the replica's pending deltas into the rope.
    fn pull_changes(&mut self, mine: bool) {
        let changes = self.replica.take_changes();
        if changes.is_empty() {
            return;
        }
        for delta in &changes {
            self.apply_delta(delta, mine);
        }
        self.after_text_change();
    }

    fn apply_delta(&mut self, delta: &[collab_doc::TextChange], mine: bool) {
        let Some(span) = changed_span(delta) else {
            return;
        };
        let rope = self.editor.rope();
        let len = rope.len_chars();
        // From the line before (a break inserted after a `\r` joins it).
        let first_line = rope.char_to_line(span.start.saturating_sub(1).min(len));
        let old_last = rope.char_to_line(span.old_end.min(len));
        // Keep the view on the same text when others edit above it.
        let top_char = (!mine).then(|| {
            let top = self.view.top.min(rope.len_lines().saturating_sub(1));
            map_pos(delta, rope.line_to_char(top), false)
        });
        self.editor.apply_delta(delta, mine);
        let rope = self.editor.rope();
        let new_last = rope.char_to_line(span.new_end.min(rope.len_chars()));
        if let Some(c) = top_char {
            self.view.top = rope.char_to_line(c.min(rope.len_chars()));
        }
        self.highlight.edited(first_line, old_last, new_last);
    }

    fn after_text_change(&mut self) {
        if !self.indent_known && self.editor.rope().len_chars() > 0 {
            self.indent_known = true;
            self.editor.detect_indent();
        }
        let rope = self.editor.rope();
        self.modified = rope.len_chars() != self.saved.len_chars() || *rope != self.saved;
        self.refresh_peers();
        self.relayout();
    }

    /// Resolves every member's stable cursors against the text now.
    fn refresh_peers(&mut self) {
        let my_id = self.me.as_ref().map(|m| m.id);
        let rope = self.editor.rope();
        let len = rope.len_chars();
        self.peers = self
            .replica
            .members()
            .iter()
            .map(|m| {
                let me = Some(m.id) == my_id;
                let (head, anchor) = if me {
                    let s = self.editor.selection();
                    (Some(s.head), Some(s.anchor))
                } else {
                    self.replica.member_cursor(m.id).unwrap_or((None, None))
                };
                let head = head.map(|h| h.min(len));
                let anchor = anchor.map(|a| a.min(len));
                Peer {
                    id: m.id,
                    name: m.name.clone(),
                    color: parse_hex(&m.color),
                    read_only: m.read_only,
                    me,
                    head,
                    anchor,
                    line: head.map(|h| rope.char_to_line(h)),
                }
            })
            .collect();
    }

    // ----- prompts: find, go to line, save as ------------------------------

    fn open_prompt(&mut self, kind: PromptKind) {
        let text = match kind {
            PromptKind::Find => self.last_search.clone(),
            _ => String::new(),
        };
        self.prompt = Some(Prompt {
            kind,
            input: LineInput::with_text(&text),
            origin: self.editor.selection().range().start,
            no_match: false,
        });
        self.focus = Focus::Prompt;
        self.relayout();
        self.follow_cursor();
    }

    fn close_prompt(&mut self) {
        self.prompt = None;
        self.focus = Focus::Text;
        self.relayout();
        self.follow_cursor();
    }

    fn prompt_command(&mut self, c: Command) {
        use Command::*;
        let Some(p) = &mut self.prompt else {
            self.focus = Focus::Text;
            return;
        };
        let kind = p.kind;
        let input = &mut p.input;
        match c {
            MoveLeft => input.left(),
            MoveRight => input.right(),
            LineStart => input.home(),
            LineEnd => input.end(),
            Backspace => {
                input.backspace();
                self.incremental_find();
            }
            Delete => {
                input.delete();
                self.incremental_find();
            }
            Paste => {
                let clip = self.clipboard.clone();
                input.insert(&clip);
                self.incremental_find();
            }
            FindNext | FindPrev if kind == PromptKind::Find => {
                let needle = input.text.clone();
                self.find(c == FindNext, Some(needle));
            }
            Submit => self.submit_prompt(),
            _ => {}
        }
    }

    fn submit_prompt(&mut self) {
        let Some(p) = self.prompt.clone() else { return };
        let text = p.input.text.trim().to_owned();
        match p.kind {
            PromptKind::Find => self.find(true, Some(p.input.text)),
            PromptKind::GotoLine => {
                let line = text
                    .split(':')
                    .next()
                    .and_then(|n| n.trim().parse::<usize>().ok());
                match line {
                    Some(n) if n > 0 => {
                        self.close_prompt();
                        let lines = self.editor.rope().len_lines();
                        if n > lines {
                            self.notice(format!("The file has {lines} lines: at the last one."));
                        }
                        self.editor.goto_line(n - 1);
                        self.replica.undo_checkpoint();
                        self.center_cursor();
                    }
                    _ => self.warn("Type a line number, from 1."),
                }
            }
            PromptKind::SaveAs => {
                if text.is_empty() {
                    return self.warn("Type a file name to save to.");
                }
                self.close_prompt();
                self.config.file = Some(PathBuf::from(text));
                self.save();
            }
        }
    }

    fn center_cursor(&mut self) {
        let (line, _) = self.editor.line_col();
        self.view.top = line.saturating_sub(self.text_height() / 2);
        self.follow_cursor();
    }

    /// As the find prompt's text changes, select the first match from where
    /// the search started.
    fn incremental_find(&mut self) {
        let Some(p) = &mut self.prompt else { return };
        if p.kind != PromptKind::Find {
            return;
        }
        p.no_match = false;
        let needle = p.input.text.clone();
        let origin = p.origin;
        if needle.is_empty() {
            return;
        }
        match find_next(self.editor.rope(), &needle, origin) {
            Some(r) => {
                self.editor.set_selection(Selection::new(r.start, r.end));
                self.follow_cursor();
            }
            None => p.no_match = true,
        }
        self.last_search = needle;
    }

    fn find(&mut self, forward: bool, needle: Option<String>) {
        let needle = needle.unwrap_or_else(|| self.last_search.clone());
        if needle.is_empty() {
            return self.open_prompt(PromptKind::Find);
        }
        let sel = self.editor.selection().range();
        let rope = self.editor.rope();
        let found = if forward {
            find_next(rope, &needle, sel.end)
        } else {
            find_prev(rope, &needle, sel.start)
        };
        match found {
            Some(r) => {
                self.editor.set_selection(Selection::new(r.start, r.end));
                self.replica.undo_checkpoint();
                self.follow_cursor();
            }
            None => self.warn(format!("Not found: {needle}")),
        }
        self.last_search = needle;
    }

    // ----- chat --------------------------------------------------------------

    fn chat_command(&mut self, c: Command) {
        use Command::*;
        let input = &mut self.chat.input;
        match c {
            MoveLeft => input.left(),
            MoveRight => input.right(),
            LineStart => input.home(),
            LineEnd => input.end(),
            Backspace => input.backspace(),
            Delete => input.delete(),
            Paste => {
                let clip = self.clipboard.clone();
                input.insert(&clip);
            }
            Submit => self.send_chat(),
            _ => {}
        }
    }

    fn send_chat(&mut self) {
        if self.chat.input.text.trim().is_empty() {
            return;
        }
        if self.conn != Conn::Live {
            return self.warn("Offline: the message was not sent; it is still in the box.");
        }
        match parse_outgoing(&self.chat.input.text) {
            Ok(msg) => {
                let typed = self.chat.input.take();
                if matches!(msg, ClientMsg::Direct { .. }) {
                    self.unechoed_direct = Some(typed);
                }
                self.effects.push(Effect::Send(msg));
            }
            Err(why) => self.warn(why),
        }
    }

    // ----- saving and quitting -----------------------------------------------

    fn save(&mut self) {
        let Some(path) = self.config.file.clone() else {
            return self.open_prompt(PromptKind::SaveAs);
        };
        let text = self.editor.rope().clone();
        self.pending_save = Some(text.clone());
        self.effects.push(Effect::Save { path, text });
    }

    fn saved_file(&mut self, result: Result<PathBuf, String>) {
        match result {
            Ok(path) => {
                if let Some(text) = self.pending_save.take() {
                    self.saved = text;
                }
                self.after_text_change();
                self.notice(format!("Saved {}", path.display()));
            }
            Err(e) => {
                self.pending_save = None;
                self.warn(format!("Not saved: {e}"));
            }
        }
    }

    fn quit(&mut self) {
        if self.modified && !self.quit_armed {
            self.quit_armed = true;
            return self.warn("Unsaved changes: Ctrl-S saves, Ctrl-Q again quits without saving.");
        }
        self.quitting = true;
        // Edits typed in this same frame go out before the leave.
        if let Some(m) = self.replica.flush() {
            self.effects.push(Effect::Send(m));
        }
        self.effects.push(Effect::Send(ClientMsg::Leave));
        self.effects.push(Effect::Quit);
    }

    // ----- frames: batched edits, presence, highlighting ---------------------

    fn frame(&mut self) {
        let sel = self.editor.selection();
        if let Some(me) = self.peers.iter_mut().find(|p| p.me) {
            me.head = Some(sel.head);
            me.anchor = Some(sel.anchor);
            me.line = Some(self.editor.rope().char_to_line(sel.head));
        }
        let h = self.text_height();
        self.highlight.prepare(self.editor.rope(), self.view.top, h);
    }

    /// After a frame: my batched edits and my caret go out.
    fn sync(&mut self) {
        if let Some(m) = self.replica.flush() {
            self.effects.push(Effect::Send(m));
        }
        let sel = self.editor.selection();
        if self.conn == Conn::Live {
            let due = match self.last_presence {
                None => true,
                Some((last, at)) => last != sel && self.now.duration_since(at) >= PRESENCE_EVERY,
            };
            if due {
                let anchor = (!sel.is_empty()).then_some(sel.anchor);
                self.effects
                    .push(Effect::Send(self.replica.presence(sel.head, anchor)));
                self.last_presence = Some((sel, self.now));
            }
        }
    }

    /// Sends my unacked updates again when no ack came for
    /// [`RESEND_AFTER`] (as `collab_client::Client` does).
    fn resend_stalled(&mut self) {
        if self.replica.unacked_seqs().next().is_none() {
            // Nothing waits: the clock starts with the next update.
            self.ack_progress = self.now;
        } else if self.now.saturating_duration_since(self.ack_progress) >= RESEND_AFTER {
            if let Some(m) = self.replica.resend_unacked() {
                self.effects.push(Effect::Send(m));
            }
            self.ack_progress = self.now;
        }
    }

    /// FILE's text into an empty room, if the server takes that much.
    fn seed(&mut self) {
        let Some(text) = self.config.file_text.clone() else {
            return;
        };
        if !self.replica.doc().is_empty() || text.len_chars() == 0 {
            self.seeding = false;
            return;
        }
        let bytes = text.len_bytes();
        if let Some(limits) = self.replica.limits() {
            // JSON escaping can double the size; leave room for it.
            let frame_room = limits.max_frame_bytes.saturating_sub(64) / 2;
            if bytes > limits.max_doc_bytes || bytes > frame_room {
                self.seeding = false;
                let name = self.file_name().unwrap_or_default();
                return self.warn(format!(
                    "{name} ({bytes} bytes) is larger than this server accepts; the room stays empty."
                ));
            }
        }
        match self.replica.seed(&text.to_string()) {
            Some(m) => self.effects.push(Effect::Send(m)),
            None => self.seeding = false,
        }
    }

    // ----- the network ---------------------------------------------------------

    fn transport(&mut self, ev: TransportEvent) {
        match ev {
            TransportEvent::Connected => {
                self.conn = Conn::Joining;
                let token = self.config.token.clone();
                let join =
                    self.replica
                        .join_msg(&self.config.room, &self.config.user, token.as_deref());
                self.effects.push(Effect::Send(join));
            }
            TransportEvent::Message(msg) => {
                if matches!(msg, ServerMsg::Ack { .. } | ServerMsg::Welcome(_)) {
                    self.ack_progress = self.now;
                }
                for effect in self.replica.handle(msg) {
                    match effect {
                        ReplicaEffect::Send(m) => self.effects.push(Effect::Send(m)),
                        ReplicaEffect::Event(e) => self.client_event(e),
                    }
                }
                self.pull_changes(false);
            }
            TransportEvent::Disconnected { reason, retry_in } => {
                self.replica.on_disconnect();
                if self.conn == Conn::Live {
                    self.warn("Connection lost: editing goes on offline.");
                }
                self.conn = Conn::Reconnecting { reason, retry_in };
                self.last_presence = None;
                self.refresh_peers();
            }
            TransportEvent::Closed { error } => {
                let reason = match &error {
                    Some(e) => e.message.clone(),
                    None => "closed".to_owned(),
                };
                if self.replica.welcomes() == 0 && !self.quitting {
                    self.fatal = Some(match &error {
                        Some(e) => e.message.clone(),
                        None => format!(
                            "The connection to {} closed before joining: check the server and try again.",
                            self.config.server
                        ),
                    });
                } else if error.is_some() {
                    self.warn(format!("Disconnected for good: {reason}"));
                }
                self.conn = Conn::Closed { reason };
            }
        }
    }

    fn client_event(&mut self, e: ClientEvent) {
        let me = self.me.as_ref().map(|m| m.name.clone());
        match e {
            ClientEvent::Welcome {
                you,
                resumed,
                first,
                ..
            } => {
                self.conn = Conn::Live;
                if you.read_only {
                    self.warn("You joined read-only: you can follow and chat, not edit.");
                }
                self.me = Some(you);
                if first {
                    // Without a file the room's text is the baseline; with
                    // one, the file on disk is (see `saved`).
                    if self.config.file.is_none() {
                        self.saved = Rope::from_str(&self.replica.text());
                    }
                } else if !resumed {
                    self.notice("Reconnected: edits merged.");
                } else {
                    self.notice("Reconnected.");
                }
                if first {
                    self.seed();
                }
                self.last_presence = None;
                self.refresh_peers();
            }
            ClientEvent::DocChanged | ClientEvent::Acked { .. } => {}
            ClientEvent::MemberJoined(m) => {
                self.notice(format!("{} joined", m.name));
                // They know nothing of my caret yet: send it again.
                self.last_presence = None;
                self.refresh_peers();
            }
            ClientEvent::MemberLeft { name, reason, .. } => {
                let text = match reason {
                    LeftReason::Left => format!("{name} left the room"),
                    LeftReason::Disconnected => format!("{name} lost the connection"),
                    LeftReason::Removed => format!("{name} was removed by the server"),
                };
                self.notice(text);
                self.refresh_peers();
            }
            ClientEvent::Chat { from, text, .. } => {
                let mine = Some(&from.name) == me.as_ref();
                self.chat.push(
                    ChatLine {
                        from: from.name,
                        to: None,
                        text,
                    },
                    mine,
                );
            }
            ClientEvent::Direct { from, to, text, .. } => {
                let mine = Some(&from.name) == me.as_ref();
                if mine {
                    self.unechoed_direct = None;
                }
                self.chat.push(
                    ChatLine {
                        from: from.name,
                        to: Some(to),
                        text,
                    },
                    mine,
                );
            }
            ClientEvent::Presence { .. } => self.refresh_peers(),
            ClientEvent::Seeded { applied } => {
                self.seeding = false;
                if applied && let Some(name) = self.file_name() {
                    self.notice(format!("The room starts from {name}."));
                }
            }
            ClientEvent::Error { code, message, .. } => {
                if self.replica.welcomes() == 0 && code.is_fatal() {
                    self.fatal = Some(message);
                } else if code == ErrorCode::NoSuchUser
                    && let Some(typed) = self.unechoed_direct.take()
                {
                    if self.chat.input.text.is_empty() {
                        self.chat.input = LineInput::with_text(&typed);
                        self.warn(format!("{message} Your message is back in the chat box."));
                    } else {
                        self.warn(format!("{message} It was: {typed}"));
                    }
                } else {
                    self.warn(message);
                }
            }
            ClientEvent::BadServerData { message } => self.warn(message),
            ClientEvent::Shutdown { message } => {
                self.warn(format!("Server stopping: {message}"));
            }
        }
    }
}

/// Where the caret goes after an undo: after the last inserted text, or
/// at the last deletion.
fn delta_end(delta: &[collab_doc::TextChange]) -> Option<usize> {
    use collab_doc::TextChange::*;
    let mut at = 0;
    let mut end = None;
    for step in delta {
        match step {
            Retain(n) => at += n,
            Insert(s) => {
                at += s.chars().count();
                end = Some(at);
            }
            Delete(_) => end = Some(at),
        }
    }
    end
}
