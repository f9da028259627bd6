//! Carrying out the app's [`Order`]s: the one place where what
//! [`App::update`] queued (messages for the server, a file to write, the
//! clipboard, starting the local server, reconnecting, quitting) meets the
//! outside world. Joining ([`crate::net::join`]) and the event loop
//! ([`crate::run`]) both go through [`Outside::carry_out`], so an order
//! cannot be carried out one way before the terminal is taken and another
//! way after.
//!
//! A save is written on tokio's blocking pool (the atomic write ends in an
//! fsync, milliseconds to seconds), and its result comes back as
//! `Action::Saved`. While it is being written the event loop draws and
//! talks to the server but reads no keys ([`Outside::saving`]), so
//! commands apply to the app in the order they were typed, as if the save
//! had been instant: a Ctrl-Q typed after a Ctrl-S sees the file saved.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::action::Action;
use crate::app::{App, Order};
use crate::autostart::ensure_local_server;
use crate::net::Net;
use crate::save::{SaveError, save};
use crate::terminal::osc52;

/// Whether the program goes on after the orders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Quit,
}

/// What the orders act on: the connection, and the channel on which work
/// started in the background reports back as actions.
pub struct Outside {
    pub net: Net,
    done_tx: mpsc::UnboundedSender<Action>,
    /// Actions from background work (a local server checked or started
    /// again), for the event loop to apply.
    pub done: mpsc::UnboundedReceiver<Action>,
    /// The saves being written (each after the one before), and the task
    /// of the last.
    saves: usize,
    last_save: Option<JoinHandle<()>>,
}

impl Outside {
    pub fn new(net: Net) -> Self {
        let (done_tx, done) = mpsc::unbounded_channel();
        Self {
            net,
            done_tx,
            done,
            saves: 0,
            last_save: None,
        }
    }

    /// Carries out the app's orders, in the order given.
    pub fn carry_out(&mut self, app: &mut App) -> Flow {
        let mut flow = Flow::Continue;
        for e in app.take_orders() {
            match e {
                Order::Send(m) => self.net.send(m),
                Order::SendWs(m) => self.net.send_ws(m),
                Order::StartLocalServer(addr) => {
                    // Off the loop: starting waits up to seconds.
                    let tx = self.done_tx.clone();
                    tokio::task::spawn_blocking(move || {
                        let _ = tx.send(Action::LocalServer(ensure_local_server(addr)));
                    });
                }
                // Connects now, skipping what is left of the backoff.
                Order::Reconnect => self.net.resume(),
                Order::Save {
                    path,
                    text,
                    expect,
                    folders_under,
                } => self.on_disk_in_turn(
                    move || {
                        let written = make_folders(&path, folders_under.as_deref())
                            .and_then(|()| save(&path, &text, expect));
                        Action::Saved(written)
                    },
                    |e| Action::Saved(Err(SaveError::Io(format!("the save stopped: {e}")))),
                ),
                Order::MoveOnDisk { moves, root } => self.on_disk_in_turn(
                    move || {
                        let done = moves
                            .into_iter()
                            .map(|m| {
                                let outcome = crate::disk_moves::apply(&m, &root);
                                (m, outcome)
                            })
                            .collect();
                        Action::MovedOnDisk(done)
                    },
                    |_| Action::MovedOnDisk(Vec::new()),
                ),
                Order::Clipboard(text) => osc52(&text),
                Order::Quit => flow = Flow::Quit,
            }
        }
        flow
    }

    /// Runs `work` (a save, or the room's renames and deletes carried to
    /// disk) on the blocking pool once the disk work before it has ended,
    /// so writes and moves reach the disk in the order the app gave them,
    /// and sends the app its result (`lost` when the work itself was lost).
    fn on_disk_in_turn(
        &mut self,
        work: impl FnOnce() -> Action + Send + 'static,
        lost: impl FnOnce(tokio::task::JoinError) -> Action + Send + 'static,
    ) {
        let tx = self.done_tx.clone();
        let before = self.last_save.take();
        self.saves += 1;
        self.last_save = Some(tokio::spawn(async move {
            if let Some(before) = before {
                let _ = before.await;
            }
            let action = tokio::task::spawn_blocking(work).await.unwrap_or_else(lost);
            let _ = tx.send(action);
        }));
    }

    /// A save is being written: its result has not been applied yet.
    pub fn saving(&self) -> bool {
        self.saves > 0
    }

    /// Applies an action from [`Self::done`] to the app.
    pub fn apply(&mut self, app: &mut App, action: Action) {
        if matches!(action, Action::Saved(_) | Action::MovedOnDisk(_)) {
            self.saves = self.saves.saturating_sub(1);
        }
        app.update(action);
    }

    /// Waits, at most `within`, for the saves still being written, so
    /// quitting never cuts one short.
    pub async fn finish_saving(&mut self, within: Duration) {
        if let Some(last) = self.last_save.take() {
            let _ = tokio::time::timeout(within, last).await;
        }
    }
}

/// A workspace file's folders, between the workspace's folder `root` and
/// `path`, created before its save (the tree's names are safe, so `path`
/// is under `root`; one that is not gets nothing created).
fn make_folders(path: &std::path::Path, root: Option<&std::path::Path>) -> Result<(), SaveError> {
    let (Some(root), Some(parent)) = (root, path.parent()) else {
        return Ok(());
    };
    if !parent.starts_with(root) {
        return Ok(());
    }
    std::fs::create_dir_all(parent)
        .map_err(|e| SaveError::Io(format!("cannot create {}: {e}", parent.display())))
}
