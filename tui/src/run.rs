//! The program: parse the command line, join the room while the terminal
//! is still a plain terminal (so any refusal is one readable sentence on
//! stderr), then take over the screen and run the one event loop.
//!
//! The loop `select!`s over terminal events, connection events, a clock
//! tick, window size changes (SIGWINCH) and SIGTERM/SIGHUP. Whatever arrives becomes actions for the app;
//! connection events that are already waiting are drained together, so a
//! burst of remote updates costs one frame, not one frame each.

use std::io::BufReader;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use collab_protocol::{RoomId, UserName};
use collab_server::Storage;
use crossterm::event::{Event, KeyEventKind, MouseButton, MouseEventKind};
use ropey::Rope;
use tokio::signal::unix::{SignalKind, signal};

use crate::action::Action;
use crate::app::{App, Focus, FolderStart, OnDisk, Startup};
use crate::autostart::{ensure_local_server, local_addr};
use crate::cli::{Cli, Sub};
use crate::file_watch::FileWatch;
use crate::keymap::{KeyContext, action_for};
use crate::net::{self, Net};
use crate::outside::{Flow, Outside};
use crate::save::Stamp;
use crate::share;
use crate::terminal::TerminalGuard;
use crate::theme::ColorMode;
use crate::tty_input::{PASTE_GAP, ends_in_paste, paste_run, spawn_reader};
use crate::ui;

/// How often the clock ticks (notices fade, presence goes out).
const TICK: Duration = Duration::from_millis(100);
/// Terminal events handled in one frame at most.
const BURST_MAX: usize = 64 * 1024;
/// How often FILE is looked at on disk (one stat).
const WATCH_EVERY: Duration = Duration::from_secs(1);
/// How long to wait for the first welcome.
const JOIN_WITHIN: Duration = Duration::from_secs(10);
/// How long quitting waits for a save still being written.
const SAVE_WITHIN: Duration = Duration::from_secs(30);

/// The binary's `main`.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // Only while the process has one thread can the local offset be read
    // soundly (the `time` crate refuses later); chat times use it.
    let utc_offset = time::UtcOffset::current_local_offset().map_or(0, |o| o.whole_seconds());
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("collab-tui: cannot start the async runtime ({e}).");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        Some(Sub::Serve {
            bind,
            idle_shutdown,
            data_dir,
            memory,
        }) => match serve_storage(data_dir, memory) {
            Ok(storage) => {
                runtime.block_on(serve(bind, Duration::from_secs(idle_shutdown), storage))
            }
            Err(e) => Err(e),
        },
        None => runtime.block_on(edit(cli, utc_offset)),
    };
    // Do not wait for blocking tasks (stdin readers) at exit.
    runtime.shutdown_timeout(Duration::from_millis(100));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("collab-tui: {msg}");
            ExitCode::FAILURE
        }
    }
}

/// Where `serve` keeps rooms: `--memory`, `--data-dir`, else `local/` in
/// the platform's data directory (see [`crate::autostart`]).
fn serve_storage(data_dir: Option<PathBuf>, memory: bool) -> Result<Storage, String> {
    if memory {
        return Ok(Storage::Memory);
    }
    match data_dir.or_else(|| Storage::default_dir().map(|d| d.join("local"))) {
        Some(dir) => Ok(Storage::Dir(dir)),
        None => Err(
            "this platform has no data directory for the local server's rooms: pass --server to use a collab-server."
                .into(),
        ),
    }
}

/// The hidden `serve` subcommand: a loopback-only server that stops when
/// it has had no connection for `idle`.
async fn serve(bind: SocketAddr, idle: Duration, storage: Storage) -> Result<(), String> {
    if !bind.ip().is_loopback() {
        return Err(format!(
            "serve listens on loopback only; {bind} is not a loopback address. Use collab-server for a shared server."
        ));
    }
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .map_err(|e| format!("cannot listen on {bind}: {e}."))?;
    let config = collab_server::Config {
        idle_shutdown: Some(idle),
        // One machine's own server: room for big files.
        max_frame_bytes: 64 << 20,
        max_doc_bytes: 64 << 20,
        storage,
        ..collab_server::Config::default()
    };
    let mut term = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
    // Outlive the terminal that started us: ignore SIGHUP.
    let mut hup = signal(SignalKind::hangup()).map_err(|e| e.to_string())?;
    let shutdown = async move {
        loop {
            tokio::select! {
                _ = term.recv() => break,
                _ = tokio::signal::ctrl_c() => break,
                _ = hup.recv() => {}
            }
        }
    };
    // The line collab-server prints, once listening: whoever started
    // `serve` (a test, a script) reads the address here.
    let ready = |addr| {
        println!(
            "collab-server listening on ws://{addr}{}",
            collab_protocol::WS_PATH
        );
    };
    collab_server::run_with_ready(listener, config, shutdown, ready)
        .await
        .map_err(|e| format!("the server stopped: {e}."))
}

/// FILE's text and its stamp (taken before reading, so a write during the
/// read shows as a change at the next save), or `None` when it does not
/// exist.
fn read_file(path: &Path) -> Result<Option<(Rope, Stamp)>, String> {
    match std::fs::File::open(path) {
        Ok(f) => {
            let meta = f
                .metadata()
                .map_err(|e| format!("cannot read {}: {e}.", path.display()))?;
            if meta.is_dir() {
                return Err(format!("{} is a directory: name a file.", path.display()));
            }
            let stamp = Stamp::of(&meta);
            Rope::from_reader(BufReader::new(f))
                .map(|t| Some((t, stamp)))
                .map_err(|e| {
                    if e.kind() == std::io::ErrorKind::InvalidData {
                        format!(
                            "{} is not UTF-8 text; collab edits UTF-8 text only.",
                            path.display()
                        )
                    } else {
                        format!("cannot read {}: {e}.", path.display())
                    }
                })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot open {}: {e}.", path.display())),
    }
}

async fn edit(mut cli: Cli, utc_offset: i32) -> Result<(), String> {
    let room = cli.room.unwrap_or_default();
    RoomId::parse(&room).map_err(|e| format!("the room name {room:?} is not valid: {e}."))?;
    let user = cli
        .user
        .ok_or("no user name: pass --user NAME (or set $USER).")?;
    UserName::parse(&user).map_err(|e| {
        format!("the user name {user:?} is not valid: {e}; pass another with --user.")
    })?;
    // DIR, or no path at all: a workspace session (protocol 2).
    let folder = match cli.file.take() {
        Some(p) if p.is_dir() => {
            let mut start = FolderStart {
                share: Some(
                    share::scan(&p, &share::ShareLimits::default()).map_err(|e| format!("{e}."))?,
                ),
                dir: Some(p),
                ..FolderStart::default()
            };
            start.stamp_share();
            Some(start)
        }
        Some(p) => {
            cli.file = Some(p);
            None
        }
        None => Some(FolderStart::default()),
    };
    let (file_text, file_stamp) = match &cli.file {
        Some(p) => read_file(p)?.unzip(),
        None => (None, None),
    };
    // An empty $COLLAB_SERVER or $COLLAB_TOKEN (`COLLAB_SERVER= collab-tui`)
    // counts as unset.
    let (server, token) = (set(cli.server), set(cli.token));
    let cli_ca = cli.ca.filter(|p| !p.as_os_str().is_empty());
    let (server, local_server) = match server {
        Some(s) => (s, None),
        None => {
            let addr = local_addr()?;
            tokio::task::spawn_blocking(move || ensure_local_server(addr))
                .await
                .map_err(|e| e.to_string())??;
            (format!("ws://{addr}"), Some(addr))
        }
    };
    let file_on_disk = match (&cli.file, &file_text) {
        (Some(_), None) => OnDisk::New,
        (Some(p), Some(_)) if !writable(p) => OnDisk::ReadOnly,
        _ => OnDisk::Writable,
    };
    let config = Startup {
        room,
        user,
        server: server.clone(),
        token,
        file: cli.file,
        file_text,
        file_stamp,
        local_server,
        file_on_disk,
        colors: ColorMode::from_env(),
        utc_offset,
    };
    let (mut app, net) = match folder {
        None => (
            App::new(config, Instant::now()),
            Net::open(&server, cli_ca)?,
        ),
        Some(start) => (
            App::new_folder(config, start, Instant::now()),
            Net::open_workspace(&server, cli_ca)?,
        ),
    };
    let mut out = Outside::new(net);
    net::join(&mut app, &mut out, JOIN_WITHIN).await?;

    let result = {
        let mut guard =
            TerminalGuard::enter().map_err(|e| format!("cannot set up the terminal: {e}."))?;
        event_loop(&mut app, &mut out, &mut guard).await
    };
    out.finish_saving(SAVE_WITHIN).await;
    out.net.close(Duration::from_secs(1)).await;
    result
}

/// Whether the file can be opened for writing (permissions, a read-only
/// mount): tried, not guessed from the mode bits. Nothing is written.
fn writable(path: &Path) -> bool {
    std::fs::OpenOptions::new().append(true).open(path).is_ok()
}

/// An option's value, with an empty one (from an empty environment
/// variable: `COLLAB_SERVER= collab-tui ...`) counting as unset.
fn set(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.trim().is_empty())
}

/// Turns a terminal event into an action.
fn to_action(app: &App, ev: Event) -> Option<Action> {
    match ev {
        Event::Key(k) if k.kind != KeyEventKind::Release => action_for(app.key_context(), k),
        Event::Paste(s) => Some(Action::Paste(s)),
        Event::Resize(width, height) => Some(Action::Resize { width, height }),
        Event::Mouse(m) => match m.kind {
            MouseEventKind::Down(MouseButton::Left) => Some(Action::Click {
                column: m.column,
                row: m.row,
                extend: m.modifiers.contains(crossterm::event::KeyModifiers::SHIFT),
            }),
            MouseEventKind::Drag(MouseButton::Left) => Some(Action::Click {
                column: m.column,
                row: m.row,
                extend: true,
            }),
            MouseEventKind::ScrollUp => Some(Action::Scroll(-3)),
            MouseEventKind::ScrollDown => Some(Action::Scroll(3)),
            _ => None,
        },
        _ => None,
    }
}

async fn event_loop(
    app: &mut App,
    out: &mut Outside,
    guard: &mut TerminalGuard,
) -> Result<(), String> {
    let size = guard
        .terminal
        .size()
        .map_err(|e| format!("cannot read the terminal size: {e}."))?;
    app.update(Action::Resize {
        width: size.width,
        height: size.height,
    });
    let mut keys = spawn_reader().map_err(|e| format!("cannot read the terminal: {e}."))?;
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut term = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
    let mut hup = signal(SignalKind::hangup()).map_err(|e| e.to_string())?;
    // The window's size changes (the terminal reader decodes keys only).
    let mut winch = signal(SignalKind::window_change()).map_err(|e| e.to_string())?;
    let mut watch = FileWatch::default();
    let mut last_watch = Instant::now();
    // Keys read while a save was being written, applied after its result.
    let mut held: Vec<Event> = Vec::new();
    loop {
        let now = Instant::now();
        app.update(Action::Clock(now));
        if now.duration_since(last_watch) >= WATCH_EVERY && !out.saving() {
            last_watch = now;
            if let Some(path) = app.config.file.clone()
                && let Some(found) = watch.check(&path, app.disk_stamp())
            {
                app.update(Action::FileOnDisk(found));
            }
        }
        app.update(Action::Frame);
        if out.carry_out(app) == Flow::Quit {
            return Ok(());
        }
        guard
            .terminal
            .draw(|f| {
                // The terminal may have changed size since its last resize
                // event was read: lay out for the size being drawn.
                let area = f.area();
                if area != app.size() {
                    app.update(Action::Resize {
                        width: area.width,
                        height: area.height,
                    });
                    app.update(Action::Frame);
                }
                ui::draw(app, f)
            })
            .map_err(|e| format!("cannot draw: {e}."))?;
        // The room's text is on screen: its document loads before any key
        // is read (and before `Sync`, which would load it anyway).
        if app.session.is_showing_text_first() {
            app.update(Action::Settle);
            continue;
        }
        app.update(Action::Sync);
        if out.carry_out(app) == Flow::Quit {
            return Ok(());
        }
        tokio::select! {
            batch = keys.recv(), if !out.saving() => match batch {
                Some(Ok(mut burst)) => {
                    // Whatever else the terminal already sent, in one frame.
                    while burst.len() < BURST_MAX {
                        let next = match keys.try_recv() {
                            Ok(batch) => Some(batch),
                            // A paste's rest may still be being parsed.
                            Err(_) if ends_in_paste(&burst) => {
                                tokio::time::timeout(PASTE_GAP, keys.recv()).await.ok().flatten()
                            }
                            Err(_) => None,
                        };
                        match next {
                            Some(Ok(batch)) => burst.extend(batch),
                            Some(Err(e)) => return Err(format!("cannot read the terminal: {e}.")),
                            None => break,
                        }
                    }
                    held.extend(burst);
                    if handle_burst(app, out, &mut held) == Flow::Quit {
                        return Ok(());
                    }
                }
                Some(Err(e)) => return Err(format!("cannot read the terminal: {e}.")),
                None => return Ok(()),
            },
            ev = out.net.recv() => {
                if let Some(ev) = ev {
                    app.update(ev);
                    while let Some(ev) = out.net.try_recv() {
                        app.update(ev);
                    }
                }
            }
            Some(action) = out.done.recv() => {
                out.apply(app, action);
                if !out.saving() && handle_burst(app, out, &mut held) == Flow::Quit {
                    return Ok(());
                }
            }
            _ = tick.tick() => {}
            _ = winch.recv() => {
                if let Ok((width, height)) = crossterm::terminal::size() {
                    app.update(Action::Resize { width, height });
                }
            }
            _ = term.recv() => app.update(Action::Terminate),
            _ = hup.recv() => app.update(Action::Terminate),
        }
    }
}

/// Applies the terminal events that arrived together; a run of text keys
/// typed into the text is one paste. Stops after one that started a save:
/// the rest stays in `burst` until the save's result is applied.
fn handle_burst(app: &mut App, out: &mut Outside, burst: &mut Vec<Event>) -> Flow {
    let mut i = 0;
    while i < burst.len() && !out.saving() {
        let pasted = (app.key_context() == KeyContext::Text && app.focus == Focus::Text)
            .then(|| paste_run(&burst[i..]))
            .flatten();
        if let Some((text, n)) = pasted {
            app.update(Action::Paste(text));
            i += n;
        } else {
            if let Some(a) = to_action(app, burst[i].clone()) {
                app.update(a);
            }
            i += 1;
        }
        if out.carry_out(app) == Flow::Quit {
            return Flow::Quit;
        }
    }
    burst.drain(..i);
    Flow::Continue
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_values_count_as_unset() {
        assert_eq!(set(Some(String::new())), None);
        assert_eq!(set(Some(" ".into())), None);
        assert_eq!(set(None), None);
        assert_eq!(set(Some("ws://h:1".into())), Some("ws://h:1".into()));
        // What clap makes of an empty $COLLAB_SERVER: an empty value.
        let cli = Cli::try_parse_from(["collab-tui", "--room", "r", "--server", ""]);
        assert!(cli.is_ok_and(|c| set(c.server).is_none()));
    }
}
