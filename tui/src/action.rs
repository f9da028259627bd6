//! Every state change of the editor, named. The event loop turns keys,
//! mouse, paste, network events and clock ticks into [`Action`]s and
//! hands them to [`crate::app::App::update`]; nothing else mutates the
//! app, so a test can replay any session as a list of actions.

use std::time::Instant;

use collab_client::TransportEvent;
use collab_client::workspace::WorkspaceTransportEvent;

use crate::autostart::Local;
use crate::disk_moves::{DiskMove, Outcome};
use crate::file_watch::Found;
use crate::keymap::Command;
use crate::save::{SaveError, Saved};

/// A change to the app.
#[derive(Debug, Clone)]
pub enum Action {
    /// A named command from the keymap (movement, editing, panels...).
    Command(Command),
    /// A character typed into whatever has focus (text, prompt, chat).
    Type(char),
    /// A bracketed paste: one edit, whatever its size.
    Paste(String),
    /// Mouse button pressed at a screen cell; `extend` while dragging.
    Click { column: u16, row: u16, extend: bool },
    /// Mouse wheel: lines to scroll the view (negative: up).
    Scroll(isize),
    /// The terminal has this many columns and rows.
    Resize { width: u16, height: u16 },
    /// The time is now this (read once per turn of the event loop, not
    /// only on its timer): notices fade, and the session's clock resends
    /// updates whose ack is overdue.
    Clock(Instant),
    /// About to draw a frame: refresh the highlight cache for what is
    /// visible.
    Frame,
    /// The frame is on screen: send the edits made since the last one as
    /// one update, and my caret. (After drawing, so a keystroke shows
    /// without waiting for the document's export, which costs milliseconds
    /// on a big document.)
    Sync,
    /// The room's text shown first is on screen: load its document
    /// (`collab_client::Replica::settle`).
    Settle,
    /// Something from the connection.
    Transport(TransportEvent),
    /// Something from a workspace connection (protocol 2).
    WsTransport(WorkspaceTransportEvent),
    /// The local server was found or started again after the connection
    /// to it dropped.
    LocalServer(Result<Local, String>),
    /// FILE changed on disk (another program or editor wrote it).
    FileOnDisk(Found),
    /// A save finished.
    Saved(Result<Saved, SaveError>),
    /// The room's renames and deletes were carried to disk (or not: each
    /// says).
    MovedOnDisk(Vec<(DiskMove, Outcome)>),
    /// The process was asked to stop (SIGTERM, SIGHUP): quit at once,
    /// without asking, the leave and my last edits going out as with
    /// Ctrl-Q.
    Terminate,
}
