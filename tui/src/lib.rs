//! collab-tui: the terminal editor of collab.
//!
//! The crate is split so that everything but the terminal and the socket
//! is a plain function of its inputs:
//!
//! - `editor`: the pure editing core (rope, selection, commands);
//! - [`action`] and [`app`]: every state change is a named [`action::Action`]
//!   applied by [`app::App::update`];
//! - [`keymap`]: the one table from keys to commands (the help screen is
//!   generated from it);
//! - `layout` and [`theme`]: where each part of the screen goes and its
//!   colours, used by the app and by drawing alike;
//! - [`ui`]: `draw(&App, &mut Frame)`, a pure function of the state;
//! - `net`, `terminal`, [`outside`], `run`: the edges (socket, tty, the
//!   app's orders carried out, event loop).

pub mod action;
pub mod app;
pub(crate) mod autostart;
pub(crate) mod chat;
pub(crate) mod cli;
pub mod disk_moves;
pub(crate) mod editor;
pub mod file_watch;
pub mod highlight;
pub(crate) mod input;
pub mod keymap;
pub(crate) mod layout;
pub mod net;
pub(crate) mod notices;
pub mod outside;
pub mod picker;
pub(crate) mod row_backend;
pub mod run;
pub mod save;
pub mod share;
pub(crate) mod terminal;
pub mod theme;
mod tty_decode;
pub(crate) mod tty_input;
pub mod ui;
