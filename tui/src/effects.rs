//! Carrying out the app's [`Effect`]s: the one place where what
//! [`App::update`] queued (messages for the server, a file to write, the
//! clipboard, starting the local server, reconnecting, quitting) meets the
//! outside world. Joining ([`crate::net::join`]) and the event loop
//! ([`crate::run`]) both go through [`Outside::carry_out`], so an effect
//! cannot be carried out one way before the terminal is taken and another
//! way after.

use tokio::sync::mpsc;

use crate::action::Action;
use crate::app::{App, Effect};
use crate::autostart::ensure_local_server;
use crate::net::Net;
use crate::save::save;
use crate::terminal::osc52;

/// How many rounds of effects one call carries out at most: a save's
/// result is an action, which may queue more effects.
const ROUNDS: usize = 4;

/// Whether the program goes on after the effects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Quit,
}

/// What the effects act on: the connection, and the channel on which work
/// started in the background reports back as actions.
pub struct Outside {
    pub net: Net,
    done_tx: mpsc::UnboundedSender<Action>,
    /// Actions from background work (a local server checked or started
    /// again), for the event loop to apply.
    pub done: mpsc::UnboundedReceiver<Action>,
}

impl Outside {
    pub fn new(net: Net) -> Self {
        let (done_tx, done) = mpsc::unbounded_channel();
        Self { net, done_tx, done }
    }

    /// Carries out the app's effects, in order.
    pub fn carry_out(&self, app: &mut App) -> Flow {
        let mut flow = Flow::Continue;
        for _ in 0..ROUNDS {
            let effects = app.take_effects();
            if effects.is_empty() {
                break;
            }
            for e in effects {
                match e {
                    Effect::Send(m) => {
                        self.net.send(m);
                    }
                    Effect::StartLocalServer(addr) => {
                        // Off the loop: starting waits up to seconds.
                        let tx = self.done_tx.clone();
                        tokio::task::spawn_blocking(move || {
                            let _ = tx.send(Action::LocalServer(ensure_local_server(addr)));
                        });
                    }
                    Effect::Reconnect => self.net.resume(),
                    Effect::Save { path, text, expect } => {
                        app.update(Action::Saved(save(&path, &text, expect)));
                    }
                    Effect::Clipboard(text) => osc52(&text),
                    Effect::Quit => flow = Flow::Quit,
                }
            }
        }
        flow
    }
}
