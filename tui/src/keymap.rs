//! The one table from keys to named commands. The help overlay (F1) is
//! generated from [`KEYMAP`], so a binding that exists is a binding that
//! is documented, and nothing else in the crate looks at raw keys.

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use crate::action::Action;

/// Every command a key can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Command {
    MoveLeft,
    MoveRight,
    MoveUp,
    MoveDown,
    SelectLeft,
    SelectRight,
    SelectUp,
    SelectDown,
    WordLeft,
    WordRight,
    SelectWordLeft,
    SelectWordRight,
    LineStart,
    LineEnd,
    SelectLineStart,
    SelectLineEnd,
    PageUp,
    PageDown,
    SelectPageUp,
    SelectPageDown,
    DocStart,
    DocEnd,
    SelectAll,
    Backspace,
    Delete,
    /// Ctrl-W in a prompt or the chat box.
    DeleteWordBefore,
    /// Ctrl-U in a prompt or the chat box.
    DeleteToStart,
    Newline,
    Tab,
    Dedent,
    Copy,
    Cut,
    Paste,
    Undo,
    Redo,
    Find,
    FindNext,
    FindPrev,
    GotoLine,
    Save,
    SaveAs,
    Quit,
    Help,
    Chat,
    Members,
    Follow,
    JumpToMember,
    /// Enter in a prompt or the chat box.
    Submit,
    /// Esc: close the prompt, leave the chat box, close help.
    Cancel,
    HelpUp,
    HelpDown,
    HelpPageUp,
    HelpPageDown,
    /// Up in a prompt or the chat box.
    InputUp,
    /// Down in a prompt or the chat box.
    InputDown,
    /// Show the workspace's file tree and give it the keyboard; hide it.
    Tree,
    /// The next open file of a workspace.
    NextFile,
    /// The previous open file.
    PrevFile,
    /// Find a file of the workspace by name and open it.
    Picker,
    /// Save every modified open file of a workspace.
    SaveAll,
    /// A new file or folder in the tree.
    NewEntry,
    /// Rename the selected file or folder.
    RenameEntry,
    /// Delete the selected file or folder (asks first).
    DeleteEntry,
    /// Close the open file on screen (asks first over unsaved changes).
    CloseFile,
}

impl Command {
    /// What the command does, for the help overlay.
    pub fn describe(self) -> &'static str {
        use Command::*;
        match self {
            MoveLeft => "move left",
            MoveRight => "move right",
            MoveUp => "move up",
            MoveDown => "move down",
            SelectLeft => "select left",
            SelectRight => "select right",
            SelectUp => "select up",
            SelectDown => "select down",
            WordLeft => "previous word",
            WordRight => "next word",
            SelectWordLeft => "select to previous word",
            SelectWordRight => "select to next word",
            LineStart => "line start (indent, then column 1)",
            LineEnd => "line end",
            SelectLineStart => "select to line start",
            SelectLineEnd => "select to line end",
            PageUp => "page up (chat: older messages)",
            PageDown => "page down (chat: newer messages)",
            SelectPageUp => "select a page up",
            SelectPageDown => "select a page down",
            DocStart => "start of file",
            DocEnd => "end of file",
            SelectAll => "select all",
            Backspace => "delete before caret",
            Delete => "delete after caret",
            DeleteWordBefore => "delete the word before the caret",
            DeleteToStart => "delete to the start",
            Newline => "new line, same indent",
            Tab => "indent (the selected lines, if any)",
            Dedent => "dedent the line or the selected lines",
            Copy => "copy (also to the terminal via OSC 52)",
            Cut => "cut",
            Paste => "paste",
            Undo => {
                "undo my last step: a word, a deletion, a paste; a 2 s pause or a move ends a step"
            }
            Redo => "redo my edit",
            Find => "find (Enter/Down next, Up previous)",
            FindNext => "find next",
            FindPrev => "find previous",
            GotoLine => "go to line",
            Save => "save (asks first over a file you did not load)",
            SaveAs => "save as: to another file",
            Quit => "quit (twice with unsaved changes or unsent edits)",
            Help => "this help",
            Chat => "chat: open/close (/msg NAME text)",
            Members => "show/hide members",
            Follow => "follow the next member (/follow NAME); Esc stops",
            JumpToMember => "jump to the next member's caret",
            Submit => "confirm / send",
            Cancel => "close prompt, chat or help; stop following",
            HelpUp => "scroll help up a line",
            HelpDown => "scroll help down a line",
            HelpPageUp => "scroll help up a page",
            HelpPageDown => "scroll help down a page",
            InputUp => "previous match, or older chat (empty box)",
            InputDown => "next match, or newer chat (empty box)",
            Tree => "files of the room: show the tree (again: hide it)",
            NextFile => "next open file",
            PrevFile => "previous open file",
            Picker => "open a file of the room by name (fuzzy)",
            SaveAll => "save every modified open file (a shared folder)",
            NewEntry => "new file here (name/ makes a folder)",
            RenameEntry => "rename the selected file or folder",
            DeleteEntry => "delete the selected file or folder (asks first)",
            CloseFile => "close this file's buffer (asks first if unsaved)",
        }
    }
}

/// Where a binding applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Everywhere.
    Global,
    /// In the text.
    Text,
    /// In a prompt or the chat box (besides typing).
    Input,
    /// While the help overlay is open.
    Help,
    /// In a workspace's file tree.
    Tree,
}

impl Scope {
    pub fn title(self) -> &'static str {
        match self {
            Scope::Global => "Anywhere",
            Scope::Text => "Editing",
            Scope::Input => "Prompts and chat box",
            Scope::Help => "Help",
            Scope::Tree => "File tree (a shared folder)",
        }
    }
}

/// One key of the table.
#[derive(Debug, Clone, Copy)]
pub struct Binding {
    pub scope: Scope,
    pub code: KeyCode,
    pub mods: KeyModifiers,
    pub command: Command,
}

const fn b(scope: Scope, code: KeyCode, mods: KeyModifiers, command: Command) -> Binding {
    Binding {
        scope,
        code,
        mods,
        command,
    }
}

const N: KeyModifiers = KeyModifiers::NONE;
const C: KeyModifiers = KeyModifiers::CONTROL;
const S: KeyModifiers = KeyModifiers::SHIFT;
const A: KeyModifiers = KeyModifiers::ALT;
const CS: KeyModifiers = KeyModifiers::CONTROL.union(KeyModifiers::SHIFT);

use Command as K;
use KeyCode::*;
use Scope::{Global as G, Help as H, Input as I, Text as T, Tree as R};

/// Every key binding. Order is the order of the help overlay.
pub const KEYMAP: &[Binding] = &[
    b(G, F(1), N, K::Help),
    b(G, Char('q'), C, K::Quit),
    b(G, Char('s'), C, K::Save),
    b(G, Char('s'), A, K::SaveAs),
    b(G, Char('a'), A, K::SaveAll),
    b(G, F(2), N, K::Chat),
    b(G, Char('t'), C, K::Chat),
    b(G, F(4), N, K::Members),
    b(G, F(5), N, K::Follow),
    b(G, F(6), N, K::JumpToMember),
    b(G, F(7), N, K::Tree),
    b(G, Char('p'), C, K::Picker),
    b(G, F(8), N, K::NextFile),
    b(G, F(8), S, K::PrevFile),
    b(G, Esc, N, K::Cancel),
    b(T, Left, N, K::MoveLeft),
    b(T, Right, N, K::MoveRight),
    b(T, Up, N, K::MoveUp),
    b(T, Down, N, K::MoveDown),
    b(T, Left, S, K::SelectLeft),
    b(T, Right, S, K::SelectRight),
    b(T, Up, S, K::SelectUp),
    b(T, Down, S, K::SelectDown),
    b(T, Left, C, K::WordLeft),
    b(T, Right, C, K::WordRight),
    b(T, Left, CS, K::SelectWordLeft),
    b(T, Right, CS, K::SelectWordRight),
    b(T, Home, N, K::LineStart),
    b(T, End, N, K::LineEnd),
    b(T, Home, S, K::SelectLineStart),
    b(T, End, S, K::SelectLineEnd),
    b(T, PageUp, N, K::PageUp),
    b(T, PageDown, N, K::PageDown),
    b(T, PageUp, S, K::SelectPageUp),
    b(T, PageDown, S, K::SelectPageDown),
    b(T, Home, C, K::DocStart),
    b(T, End, C, K::DocEnd),
    b(T, Char('a'), C, K::SelectAll),
    b(T, Backspace, N, K::Backspace),
    b(T, Delete, N, K::Delete),
    b(T, Enter, N, K::Newline),
    b(T, Char('j'), C, K::Newline),
    b(T, Tab, N, K::Tab),
    b(T, BackTab, N, K::Dedent),
    b(T, Char('c'), C, K::Copy),
    b(T, Char('x'), C, K::Cut),
    b(T, Char('v'), C, K::Paste),
    b(T, Char('z'), C, K::Undo),
    b(T, Char('y'), C, K::Redo),
    b(T, Char('f'), C, K::Find),
    b(T, F(3), N, K::FindNext),
    b(T, F(3), S, K::FindPrev),
    b(T, Char('g'), C, K::GotoLine),
    b(T, Char('w'), C, K::CloseFile),
    b(I, Enter, N, K::Submit),
    b(I, Char('j'), C, K::Submit),
    b(I, Down, N, K::InputDown),
    b(I, Up, N, K::InputUp),
    b(I, PageUp, N, K::PageUp),
    b(I, PageDown, N, K::PageDown),
    b(I, Left, N, K::MoveLeft),
    b(I, Right, N, K::MoveRight),
    b(I, Home, N, K::LineStart),
    b(I, End, N, K::LineEnd),
    b(I, Char('a'), C, K::LineStart),
    b(I, Char('e'), C, K::LineEnd),
    b(I, Left, C, K::WordLeft),
    b(I, Right, C, K::WordRight),
    b(I, Char('w'), C, K::DeleteWordBefore),
    b(I, Char('u'), C, K::DeleteToStart),
    b(I, Backspace, N, K::Backspace),
    b(I, Delete, N, K::Delete),
    b(I, Char('v'), C, K::Paste),
    b(R, Up, N, K::MoveUp),
    b(R, Down, N, K::MoveDown),
    b(R, PageUp, N, K::PageUp),
    b(R, PageDown, N, K::PageDown),
    b(R, Home, N, K::DocStart),
    b(R, End, N, K::DocEnd),
    b(R, Enter, N, K::Submit),
    b(R, Char('n'), N, K::NewEntry),
    b(R, Char('r'), N, K::RenameEntry),
    b(R, Delete, N, K::DeleteEntry),
    b(H, Up, N, K::HelpUp),
    b(H, Down, N, K::HelpDown),
    b(H, PageUp, N, K::HelpPageUp),
    b(H, PageDown, N, K::HelpPageDown),
];

/// What has the keyboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyContext {
    Text,
    Input,
    Help,
    Tree,
}

/// The action for a key in a context, if any.
pub fn action_for(ctx: KeyContext, key: KeyEvent) -> Option<Action> {
    if key.kind == KeyEventKind::Release {
        return None;
    }
    // Shift is part of the character for printable keys ('A'), not a
    // modifier to match on.
    let mods = match key.code {
        Char(_) => key.modifiers - KeyModifiers::SHIFT,
        BackTab => key.modifiers - KeyModifiers::SHIFT,
        _ => key.modifiers,
    };
    let scope = match ctx {
        KeyContext::Text => T,
        KeyContext::Input => I,
        KeyContext::Help => H,
        KeyContext::Tree => R,
    };
    let found = KEYMAP
        .iter()
        .filter(|b| b.scope == scope)
        .chain(KEYMAP.iter().filter(|b| b.scope == G))
        .find(|b| b.code == key.code && b.mods == mods)
        .map(|b| Action::Command(b.command));
    if found.is_some() {
        return found;
    }
    match (ctx, key.code) {
        // Any other key closes the help.
        (KeyContext::Help, _) => Some(Action::Command(K::Cancel)),
        (_, Char(c)) if !mods.intersects(KeyModifiers::CONTROL | KeyModifiers::ALT) => {
            Some(Action::Type(c))
        }
        // AltGr arrives as Ctrl+Alt on some terminals: it types.
        (_, Char(c)) if mods.contains(KeyModifiers::CONTROL | KeyModifiers::ALT) => {
            Some(Action::Type(c))
        }
        _ => None,
    }
}

/// A key as the help shows it: `Ctrl+Shift+Left`.
pub fn key_label(code: KeyCode, mods: KeyModifiers) -> String {
    let mut s = String::new();
    if mods.contains(KeyModifiers::CONTROL) {
        s.push_str("Ctrl+");
    }
    if mods.contains(KeyModifiers::ALT) {
        s.push_str("Alt+");
    }
    if mods.contains(KeyModifiers::SHIFT) {
        s.push_str("Shift+");
    }
    match code {
        Char(c) => s.extend(c.to_uppercase()),
        F(n) => s.push_str(&format!("F{n}")),
        PageUp => s.push_str("PgUp"),
        PageDown => s.push_str("PgDn"),
        Backspace => s.push_str("Backspace"),
        BackTab => s.push_str("Shift+Tab"),
        other => s.push_str(&format!("{other:?}")),
    }
    s
}

/// The mouse, for the help: not keys, but what a person needs to know,
/// including that with the mouse captured the terminal's own selection
/// needs Shift.
pub const MOUSE: &[(&str, &str)] = &[
    ("Click", "place the caret, or go to the chat box"),
    ("Drag", "select"),
    ("Wheel", "scroll the text"),
    (
        "Shift+drag",
        "select as the terminal does, to copy elsewhere",
    ),
];

/// The rule of undo steps, for the help (see `app::undo_group`).
pub const UNDO_RULE: &str = "a word, a deletion or a paste; a move or a 2 s pause ends one";

/// The help's lines, generated from the table: a heading per scope, then
/// `key  what it does`; then the mouse.
pub fn help_lines() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for scope in [G, T, I, R, H] {
        out.push((scope.title().to_owned(), String::new()));
        for b in KEYMAP.iter().filter(|b| b.scope == scope) {
            out.push((key_label(b.code, b.mods), b.command.describe().to_owned()));
        }
    }
    out.push(("Mouse".to_owned(), String::new()));
    for (what, does) in MOUSE {
        out.push(((*what).to_owned(), (*does).to_owned()));
    }
    out.push(("Undo steps".to_owned(), String::new()));
    out.push((String::new(), UNDO_RULE.to_owned()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn key(code: KeyCode, mods: KeyModifiers) -> KeyEvent {
        KeyEvent::new(code, mods)
    }

    fn cmd(ctx: KeyContext, code: KeyCode, mods: KeyModifiers) -> Option<Command> {
        match action_for(ctx, key(code, mods)) {
            Some(Action::Command(c)) => Some(c),
            _ => None,
        }
    }

    #[test]
    fn no_key_is_bound_twice_in_a_scope() {
        let mut seen = HashSet::new();
        for b in KEYMAP {
            let scopes: &[Scope] = if b.scope == G {
                &[T, I, R, H]
            } else {
                &[b.scope]
            };
            for s in scopes {
                assert!(
                    seen.insert((*s, b.code, b.mods)),
                    "{:?} bound twice",
                    key_label(b.code, b.mods)
                );
            }
        }
    }

    #[test]
    fn keys_resolve_by_context() {
        use KeyContext::*;
        assert_eq!(cmd(Text, Char('s'), C), Some(K::Save));
        assert_eq!(cmd(Input, Char('s'), C), Some(K::Save));
        assert_eq!(cmd(Text, Left, S), Some(K::SelectLeft));
        assert_eq!(cmd(Input, Up, N), Some(K::InputUp));
        assert_eq!(cmd(Help, Char('x'), N), Some(K::Cancel));
        assert!(matches!(
            action_for(Text, key(Char('A'), S)),
            Some(Action::Type('A'))
        ));
        assert!(matches!(
            action_for(Input, key(Char('é'), N)),
            Some(Action::Type('é'))
        ));
        assert!(action_for(Text, key(Char('k'), C)).is_none());
        // A raw line feed (Ctrl-J, what some terminals send for Enter).
        assert_eq!(cmd(Text, Char('j'), C), Some(K::Newline));
        assert_eq!(cmd(Text, BackTab, S), Some(K::Dedent));
        // Shell line editing in prompts and the chat box.
        assert_eq!(cmd(Input, Char('w'), C), Some(K::DeleteWordBefore));
        assert_eq!(cmd(Input, Char('u'), C), Some(K::DeleteToStart));
        assert_eq!(cmd(Input, Char('a'), C), Some(K::LineStart));
        assert_eq!(cmd(Text, Char('a'), C), Some(K::SelectAll));
        assert_eq!(cmd(Input, Char('j'), C), Some(K::Submit));
    }

    #[test]
    fn help_lists_every_binding() {
        let lines = help_lines();
        assert_eq!(lines.len(), KEYMAP.len() + 5 + 1 + MOUSE.len() + 2);
        assert!(lines.contains(&("Shift+drag".into(), MOUSE[3].1.into())));
        assert!(lines.contains(&(
            "Ctrl+S".into(),
            "save (asks first over a file you did not load)".into()
        )));
        assert!(lines.contains(&("Alt+S".into(), "save as: to another file".into())));
        assert!(lines.contains(&("Shift+F3".into(), "find previous".into())));
    }
}
