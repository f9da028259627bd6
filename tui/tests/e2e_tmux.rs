//! End to end: a real server (collab-tui's own `serve` subcommand on a
//! loopback port it chose and reported) and two real collab-tui processes in tmux, driven by
//! send-keys and read by capture-pane, as two people would use them.
//!
//! Every wait polls the screen for something observable, with a deadline;
//! nothing sleeps to synchronise. The tmux server is private (`-L`) and
//! killed at the end, with the collab server, even when an assertion fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use unicode_width::UnicodeWidthStr;

#[path = "support/mod.rs"]
mod support;
use support::files_under;

const BIN: &str = env!("CARGO_BIN_EXE_collab-tui");
const DEADLINE: Duration = Duration::from_secs(20);

/// The tests here share two cores with their own servers, editors and
/// tmux; they run one at a time so that no deadline is spent waiting for
/// another test's processes.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

struct Session {
    socket: String,
    addr: SocketAddr,
    /// The test's own server; `None` when the editors start one.
    server: Option<Child>,
    dir: PathBuf,
    _turn: MutexGuard<'static, ()>,
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .stderr(Stdio::null())
            .status();
        if let Some(server) = &mut self.server {
            let _ = server.kill();
            let _ = server.wait();
        }
        // A server an editor started outlives it: stop it by its pid.
        for pid in local_server_pids(self.addr) {
            kill9(pid);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Session {
    /// A private tmux server, a scratch directory holding `files`, and a
    /// collab server (keeping nothing) on a loopback port it chose.
    fn new(files: &[(&str, &str)]) -> Session {
        Session::with(files, Keeps::Nothing)
    }

    /// As [`Session::new`], with the server an editor would start: rooms on
    /// disk under the session's data directory, and its address the local
    /// one of the editors started with [`Session::start_local`], so when it
    /// dies they start the next there. The first is started here, on a port
    /// it chose, since every editor must know the address before any server
    /// runs; an editor's own start is what follows a death (carol's, after
    /// a crash, at her editor's start).
    fn local(files: &[(&str, &str)]) -> Session {
        Session::with(files, Keeps::Rooms)
    }

    fn with(files: &[(&str, &str)], keeps: Keeps) -> Session {
        let turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let unique = format!("collab-e2e-{}-{nanos}", std::process::id());
        let dir = std::env::temp_dir().join(&unique);
        std::fs::create_dir_all(&dir).unwrap();
        for (name, text) in files {
            std::fs::write(dir.join(name), text).unwrap();
        }
        let data = match keeps {
            Keeps::Nothing => None,
            Keeps::Rooms => Some(dir.join("data/collab/local")),
        };
        let (server, addr) = start_server("127.0.0.1:0", data.as_deref());
        Session {
            socket: unique,
            addr,
            server: Some(server),
            dir,
            _turn: turn,
        }
    }

    /// The pid of the server this session started.
    fn server_pid(&self) -> u32 {
        self.server.as_ref().unwrap().id()
    }

    /// Stops the server (as a crash would: no goodbye to anyone).
    fn kill_server(&mut self) {
        let mut server = self.server.take().unwrap();
        server.kill().unwrap();
        server.wait().unwrap();
    }

    /// A new, empty server on the same address.
    fn restart_server(&mut self) {
        let (server, addr) = start_server(&self.addr.to_string(), None);
        assert_eq!(addr, self.addr);
        self.server = Some(server);
    }

    /// `name` runs collab-tui with no server named, as the README says:
    /// it uses (or starts) the local server, here on the session's address
    /// with its rooms under the session's directory.
    fn start_local(&self, name: &str, file: &str) {
        let cmd = format!(
            "cd '{dir}' && env -u COLLAB_SERVER COLLAB_LOCAL_ADDR={addr} XDG_DATA_HOME='{dir}/data' '{BIN}' --room e2e --user {name} {file}; echo EXITED $?; sleep 600",
            dir = self.dir.display(),
            addr = self.addr,
        );
        self.tmux(&[
            "new-session",
            "-d",
            "-s",
            name,
            "-x",
            "100",
            "-y",
            "30",
            &cmd,
        ]);
    }

    fn tmux(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.socket])
            .args(args)
            .output()
            .expect("tmux runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `name` runs collab-tui in a 100x30 tmux session of that name.
    fn start(&self, name: &str, file: &str) {
        self.start_sized(name, file, 100, 30);
    }

    /// `name` runs collab-tui in a `width`x`height` tmux session.
    fn start_sized(&self, name: &str, file: &str, width: u16, height: u16) {
        let (width, height) = (width.to_string(), height.to_string());
        let cmd = format!(
            "cd '{}' && '{BIN}' --server ws://{} --room e2e --user {name} {file}; echo EXITED $?; sleep 600",
            self.dir.display(),
            self.addr,
        );
        self.tmux(&[
            "new-session",
            "-d",
            "-s",
            name,
            "-x",
            &width,
            "-y",
            &height,
            &cmd,
        ]);
    }

    /// The pid of the collab-tui running in `pane` (the pane's shell's
    /// child).
    fn editor_pid(&self, pane: &str) -> u32 {
        let shell = self.tmux(&["display-message", "-p", "-t", pane, "#{pane_pid}"]);
        let out = Command::new("pgrep")
            .args(["-P", shell.trim(), "collab-tui"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find_map(|l| l.trim().parse().ok())
            .expect("collab-tui runs in the pane")
    }

    fn screen(&self, pane: &str) -> String {
        self.tmux(&["capture-pane", "-p", "-t", pane])
    }

    fn keys(&self, pane: &str, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", pane];
        args.extend_from_slice(keys);
        self.tmux(&args);
    }

    fn type_text(&self, pane: &str, text: &str) {
        self.tmux(&["send-keys", "-t", pane, "-l", text]);
    }

    /// Polls `pane` until `ok` holds, or fails with the screen.
    fn wait_for(&self, pane: &str, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let until = Instant::now() + DEADLINE;
        loop {
            let s = self.screen(pane);
            if ok(&s) {
                return s;
            }
            assert!(
                Instant::now() < until,
                "timed out waiting for {what} in {pane}'s pane:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Fails the test when tmux is missing: a test that passes without testing
/// anything would hide it (CI installs tmux: .ci/run).
fn require_tmux() {
    let found = Command::new("tmux")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "tmux was not found on PATH: these tests drive collab-tui in tmux (apt-get install tmux)"
    );
}

/// What a session's server keeps.
#[derive(Clone, Copy)]
enum Keeps {
    /// Nothing (`--memory`).
    Nothing,
    /// Rooms on disk, as an editor's local server does.
    Rooms,
}

/// The pids of the servers editors started on `addr` (the session's own
/// port, so no one else's).
fn local_server_pids(addr: SocketAddr) -> Vec<u32> {
    let Ok(out) = Command::new("pgrep")
        .args(["-f", &format!("serve --bind {addr} --idle-shutdown")])
        .output()
    else {
        return Vec::new();
    };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// The pid of the server listening on `addr`: the one of
/// [`local_server_pids`] that is not a loser of a race on its way out.
fn local_server_pid(addr: SocketAddr) -> Option<u32> {
    let until = Instant::now() + DEADLINE;
    loop {
        let pids = local_server_pids(addr);
        if pids.len() == 1 && TcpStream::connect(addr).is_ok() {
            return pids.first().copied();
        }
        if Instant::now() > until {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn signal(pids: &[u32], sig: &str) {
    for pid in pids {
        let _ = Command::new("kill").args([sig, &pid.to_string()]).status();
    }
}

fn kill9(pid: u32) {
    let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
}

/// `collab-tui serve` on `bind`, keeping rooms in `data` (else nothing),
/// and the address it reports listening on (its stdout's one line, printed
/// once it listens).
fn start_server(bind: &str, data: Option<&Path>) -> (Child, SocketAddr) {
    let mut cmd = Command::new(BIN);
    cmd.args(["serve", "--bind", bind, "--idle-shutdown", "300"]);
    match data {
        Some(dir) => cmd.arg("--data-dir").arg(dir),
        None => cmd.arg("--memory"),
    };
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(DEADLINE).unwrap_or_default();
    let addr = line
        .trim()
        .strip_prefix("collab-server listening on ws://")
        .and_then(|a| a.strip_suffix("/ws"))
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("the server did not start on {bind}: {line:?}"));
    (child, addr)
}

fn count(haystack: &str, needle: &str) -> usize {
    haystack.matches(needle).count()
}

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap()
}

#[test]
fn two_people_edit_one_file_in_tmux() {
    require_tmux();
    let s = Session::new(&[("alice.txt", "hello from alice\nsecond line\n")]);
    let dir = s.dir.clone();

    // Alice opens her file in a new room; Bob joins and sees it.
    s.start("alice", "alice.txt");
    s.wait_for("alice", "alice's file", |t| {
        t.contains("hello from alice") && t.contains("connected")
    });
    s.start("bob", "bob.txt");
    s.wait_for("bob", "alice's file on bob's screen", |t| {
        t.contains("hello from alice") && t.contains("second line")
    });

    // Both members panels list both.
    s.wait_for("alice", "both names", |t| {
        t.contains("alice (you)") && t.contains("● bob")
    });
    s.wait_for("bob", "both names", |t| {
        t.contains("bob (you)") && t.contains("● alice")
    });

    // What one types appears on the other's screen.
    s.keys("alice", &["End"]);
    s.type_text("alice", " +typed");
    s.wait_for("bob", "alice's typing", |t| {
        t.contains("hello from alice +typed")
    });

    // Both type at once, on different lines, then both save.
    s.keys("bob", &["C-End"]);
    let mut tokens = Vec::new();
    for i in 0..6 {
        let a = format!("a{i}-alice");
        let b = format!("b{i}-bob");
        s.keys("alice", &["Enter"]);
        s.type_text("alice", &a);
        s.type_text("bob", &b);
        s.keys("bob", &["Enter"]);
        tokens.push(a);
        tokens.push(b);
    }
    // A last word from each: edits from one client arrive in order, so
    // seeing the other's last word means having all of their edits.
    s.type_text("alice", "END-alice");
    s.type_text("bob", "END-bob");
    let all_there = |t: &str| {
        tokens.iter().all(|k| count(t, k) == 1)
            && count(t, "END-alice") == 1
            && count(t, "END-bob") == 1
    };
    s.wait_for("alice", "every token once", all_there);
    s.wait_for("bob", "every token once", all_there);
    s.keys("alice", &["C-s"]);
    s.keys("bob", &["C-s"]);
    s.wait_for("alice", "saved", |t| t.contains("Saved "));
    s.wait_for("bob", "saved", |t| t.contains("Saved "));
    let a = read(&dir, "alice.txt");
    let b = read(&dir, "bob.txt");
    assert_eq!(a, b, "the two saved files differ");
    for k in &tokens {
        assert_eq!(count(&a, k), 1, "{k} is not in the file exactly once:\n{a}");
    }
    assert_eq!(count(&a, "+typed"), 1, "{a}");
    assert!(a.starts_with("hello from alice +typed"), "{a}");

    // Bob quits; Alice is told.
    s.keys("bob", &["C-q"]);
    s.wait_for("alice", "bob leaving", |t| t.contains("bob left the room"));
    let bob = s.wait_for("bob", "bob's exit", |t| t.contains("EXITED"));
    assert!(bob.contains("EXITED 0"), "{bob}");
    // The terminal was given back: no alternate-screen leftovers.
    assert!(!bob.contains("Members"), "{bob}");
}

#[test]
fn offline_edits_merge_when_the_server_comes_back() {
    require_tmux();
    let mut s = Session::new(&[("notes.txt", "shared notes\n")]);
    s.start("alice", "notes.txt");
    s.wait_for("alice", "alice connected", |t| {
        t.contains("shared notes") && t.contains("connected")
    });
    s.start("bob", "bob.txt");
    s.wait_for("bob", "the room's text on bob's screen", |t| {
        t.contains("shared notes") && t.contains("connected")
    });
    s.wait_for("alice", "bob in the members", |t| t.contains("● bob"));

    // The server dies with no goodbye. Both are told, and both go on
    // typing: their own keys show at once, with no server to answer.
    s.kill_server();
    s.wait_for("alice", "alice offline", |t| t.contains("offline"));
    s.wait_for("bob", "bob offline", |t| t.contains("offline"));
    s.keys("alice", &["C-End"]);
    s.type_text("alice", "alice-offline");
    s.keys("bob", &["C-Home"]);
    s.type_text("bob", "bob-offline ");
    s.wait_for("alice", "alice's offline edit", |t| {
        t.contains("alice-offline") && t.contains("offline, ")
    });
    s.wait_for("bob", "bob's offline edit", |t| {
        t.contains("bob-offline shared notes") && t.contains("offline, ")
    });

    // A new, empty server on the same address: both reconnect on their
    // own and their offline edits merge, the text they shared before
    // appearing once (it is the same history, not a second copy).
    s.restart_server();
    let merged = |t: &str| {
        count(t, "shared notes") == 1
            && t.contains("bob-offline shared notes")
            && t.contains("alice-offline")
            && t.contains("connected")
            && !t.contains("offline,")
    };
    s.wait_for("alice", "the merge on alice's screen", merged);
    s.wait_for("bob", "the merge on bob's screen", merged);
    s.keys("alice", &["C-s"]);
    s.keys("bob", &["C-s"]);
    s.wait_for("alice", "saved", |t| t.contains("Saved "));
    s.wait_for("bob", "saved", |t| t.contains("Saved "));
    let a = read(&s.dir, "notes.txt");
    assert_eq!(a, read(&s.dir, "bob.txt"), "the two saved files differ");
    assert_eq!(a, "bob-offline shared notes\nalice-offline", "{a:?}");
}

#[test]
fn chat_and_a_direct_message_in_tmux() {
    require_tmux();
    let s = Session::new(&[("notes.txt", "agenda\n")]);
    s.start("alice", "notes.txt");
    s.wait_for("alice", "alice connected", |t| t.contains("connected"));
    s.start("bob", "bob.txt");
    s.start("carol", "carol.txt");
    s.wait_for("alice", "everyone in the members", |t| {
        t.contains("● bob") && t.contains("● carol")
    });
    for who in ["bob", "carol"] {
        s.wait_for(who, "the room's text", |t| {
            t.contains("agenda") && t.contains("connected")
        });
    }

    // Alice talks to the room, then to bob alone, then to the room again.
    s.keys("alice", &["F2"]);
    s.wait_for("alice", "the chat prompt", |t| t.contains("Enter sends"));
    for line in ["hello room", "/msg bob just for you", "after the secret"] {
        s.type_text("alice", line);
        s.keys("alice", &["Enter"]);
    }
    s.wait_for("alice", "alice's own lines", |t| {
        t.contains("alice: hello room")
            && t.contains("alice → bob: just for you")
            && t.contains("alice: after the secret")
    });

    // Bob's status bar counts what he has not read; F2 shows it.
    s.wait_for("bob", "3 unread", |t| t.contains(" chat 3 "));
    s.keys("bob", &["F2"]);
    s.wait_for("bob", "the messages in bob's chat", |t| {
        t.contains("alice: hello room")
            && t.contains("alice → bob: just for you")
            && t.contains("alice: after the secret")
    });

    // Carol gets the room's lines, in order, and not bob's: seeing the line
    // alice sent after the secret means the secret would have come first.
    s.wait_for("carol", "2 unread", |t| t.contains(" chat 2 "));
    s.keys("carol", &["F2"]);
    let carol = s.wait_for("carol", "the room's lines in carol's chat", |t| {
        t.contains("alice: hello room") && t.contains("alice: after the secret")
    });
    assert!(!carol.contains("just for you"), "{carol}");

    // Bob answers alice alone; the reply shows in alice's open chat.
    s.type_text("bob", "/msg alice got it");
    s.keys("bob", &["Enter"]);
    s.wait_for("alice", "bob's reply", |t| {
        t.contains("bob → alice: got it")
    });
}

#[test]
fn wide_characters_and_a_resize_in_tmux() {
    require_tmux();
    let s = Session::new(&[("u.txt", "")]);
    s.start("alice", "u.txt");
    s.wait_for("alice", "alice connected", |t| t.contains("connected"));

    // Characters two columns wide: the status bar's column is the screen
    // column (as in vim's virtual column), and moving by one key steps over
    // a whole character.
    s.type_text("alice", "héllo 世界 ok");
    s.wait_for("alice", "the typed line", |t| {
        t.contains("héllo 世界 ok") && t.contains(" 1:14 ")
    });
    s.keys(
        "alice",
        &[
            "Home", "Right", "Right", "Right", "Right", "Right", "Right", "Right",
        ],
    );
    s.type_text("alice", "|");
    s.wait_for("alice", "a bar between the wide characters", |t| {
        t.contains("héllo 世|界 ok") && t.contains(" 1:10 ")
    });

    // An emoji with a skin tone keeps its tone when the row changes after
    // it (tmux 3.3 drops it when a character follows a cursor move).
    s.keys("alice", &["End", "Enter"]);
    s.type_text("alice", "a👍🏽b");
    s.wait_for("alice", "the thumbs-up", |t| t.contains("a👍🏽b"));
    s.type_text("alice", "c");
    s.keys("alice", &["Left", "Left"]);
    s.wait_for("alice", "the thumbs-up with its tone after an edit", |t| {
        t.contains("a👍🏽bc") && t.contains(" 2:4 ")
    });
    s.keys(
        "alice",
        &["BSpace", "C-End", "BSpace", "BSpace", "BSpace", "BSpace"],
    );
    s.wait_for("alice", "the line removed", |t| !t.contains("👍"));

    // The terminal shrinks: the editor redraws to the new size, the status
    // bar on the last row.
    s.tmux(&["resize-window", "-t", "alice", "-x", "50", "-y", "12"]);
    let small = s.wait_for("alice", "a 50x12 layout", |t| {
        let lines: Vec<&str> = t.lines().collect();
        lines.len() == 12 && lines[11].contains("alice") && t.contains("héllo 世|界 ok")
    });
    assert!(
        small.lines().all(|l| l.width() <= 50),
        "a line wider than the terminal:\n{small}"
    );
    // The notice names the file as given, which fits in 50 columns where
    // its absolute path would not.
    s.keys("alice", &["C-s"]);
    s.wait_for("alice", "saved", |t| {
        t.contains("Saved u.txt: 1 line, 17 bytes")
    });
    assert_eq!(read(&s.dir, "u.txt"), "héllo 世|界 ok");
}

#[test]
fn dragging_the_window_smaller_never_crashes_the_editor() {
    require_tmux();
    let text: String = (1..=120)
        .map(|i| format!("line {i} of the file\n"))
        .collect();
    let s = Session::new(&[("long.txt", &text)]);
    s.start_sized("alice", "long.txt", 200, 60);
    s.wait_for("alice", "alice connected", |t| {
        t.contains("line 50 of the file") && t.contains("connected")
    });
    s.keys("alice", &["F2"]);
    s.keys("alice", &["Escape"]);
    // As a window corner is dragged: 200x60 to 80x24 in 13 steps, 20 ms
    // apart (the pace of the drag, not a wait for anything), four times.
    for _ in 0..4 {
        for i in 0..=13u16 {
            let (w, h) = (200 - i * 120 / 13, 60 - i * 36 / 13);
            s.tmux(&[
                "resize-window",
                "-t",
                "alice",
                "-x",
                &w.to_string(),
                "-y",
                &h.to_string(),
            ]);
            std::thread::sleep(Duration::from_millis(20));
        }
        let small = s.wait_for("alice", "the 80x24 layout", |t| {
            let lines: Vec<&str> = t.lines().collect();
            lines.len() == 24 && lines[23].contains("alice") && lines[23].contains("connected")
        });
        assert!(!small.contains("EXITED"), "{small}");
        assert!(!small.contains("panicked"), "{small}");
        s.tmux(&["resize-window", "-t", "alice", "-x", "200", "-y", "60"]);
        s.wait_for("alice", "the 200x60 layout", |t| t.lines().count() == 60);
    }
    // Still editing.
    s.type_text("alice", "still here");
    s.wait_for("alice", "typing after the drags", |t| {
        t.contains("still here")
    });
}

#[test]
fn a_dead_local_server_is_started_again_and_the_text_comes_back_once() {
    require_tmux();
    let text: String = (1..=81).map(|i| format!("bg line {i}\n")).collect();
    let mut s = Session::local(&[("bg.txt", &text)]);
    // alice and bob use the local server.
    s.start_local("alice", "bg.txt");
    s.wait_for("alice", "alice connected", |t| {
        t.contains("bg line 1") && t.contains("connected")
    });
    s.start_local("bob", "bg.txt");
    s.wait_for("bob", "bob connected", |t| {
        t.contains("bg line 1") && t.contains("connected")
    });
    let first = s.server_pid();

    // The server is killed. Both go on typing; an editor notices, starts a
    // new server, and both reconnect by themselves.
    s.kill_server();
    s.keys("alice", &["C-Home"]);
    s.type_text("alice", "alice-after ");
    s.keys("bob", &["C-End"]);
    s.type_text("bob", "bob-after");
    let back = |t: &str| t.contains("connected") && !t.contains("offline");
    s.wait_for("alice", "alice connected again", |t| {
        back(t) && t.contains("alice-after bg line 1")
    });
    s.wait_for("bob", "bob connected again", |t| {
        back(t) && t.contains("bob-after")
    });
    let second = local_server_pid(s.addr).expect("a server runs again");
    assert_ne!(first, second);

    // carol opens the same file: the room kept its text, so her file does
    // not seed it a second time.
    s.start_local("carol", "bg.txt");
    s.wait_for("carol", "carol connected", |t| {
        t.contains("alice-after bg line 1") && t.contains("connected")
    });
    s.keys("carol", &["C-End"]);
    s.wait_for("carol", "both edits at carol's", |t| {
        t.contains("bob-after")
    });
    s.keys("carol", &["C-s"]);
    s.wait_for("carol", "a question or a save", |t| {
        t.contains("Saved ") || t.contains("Ctrl-S again")
    });
    s.keys("carol", &["C-s"]);
    s.wait_for("carol", "saved", |t| t.contains("Saved "));
    let saved = read(&s.dir, "bg.txt");
    for i in 1..=81 {
        let line = format!("bg line {i}\n");
        assert_eq!(
            count(&saved, &line),
            1,
            "{line:?} is not there once:\n{saved}"
        );
    }
    assert_eq!(count(&saved, "alice-after"), 1, "{saved}");
    assert_eq!(count(&saved, "bob-after"), 1, "{saved}");
}

/// Issue 12, item 2: the server an editor starts keeps its rooms on disk,
/// so its crash loses nothing acked (at most a flush window). alice types
/// into the room of the autostarted server; once bob has her edit and the
/// store's file was written after that, every editor and the server are
/// killed (nobody is left to bring the text back). carol's editor starts a
/// new server, which loads the room from disk: her file does not seed it,
/// and she has alice's edit.
#[test]
fn the_autostarted_server_keeps_the_room_on_disk_across_a_crash() {
    require_tmux();
    let mut s = Session::local(&[("kept.txt", "kept line\n")]);
    s.start_local("alice", "kept.txt");
    s.wait_for("alice", "alice connected", |t| {
        t.contains("kept line") && t.contains("connected")
    });
    s.start_local("bob", "kept.txt");
    s.wait_for("bob", "bob connected", |t| {
        t.contains("kept line") && t.contains("connected")
    });
    let store = s.dir.join("data/collab/local/rooms.redb");
    let modified = || std::fs::metadata(&store).and_then(|m| m.modified()).ok();
    s.keys("alice", &["C-Home"]);
    s.type_text("alice", "on-disk ");
    s.wait_for("bob", "alice's edit at bob's", |t| {
        t.contains("on-disk kept line")
    });
    // The server has the edit, and commits every change within a flush
    // window (100 ms) of its arrival, but may have done so before tmux
    // showed it to bob, or may be committing the seed just now: no single
    // write can be told to be the edit's. The server offers no event for
    // "nothing pending", so wait until the file has been left alone for
    // five windows (it exists: the seed was written when alice joined).
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut last = (modified(), Instant::now());
    loop {
        let now = modified();
        if now.is_some() && now == last.0 && last.1.elapsed() >= Duration::from_millis(500) {
            break;
        }
        if now != last.0 {
            last = (now, Instant::now());
        }
        assert!(
            Instant::now() < deadline,
            "{} still written to 10 s after the edit",
            store.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Editors first, so that none starts a new server and brings its text.
    for who in ["alice", "bob"] {
        kill9(s.editor_pid(who));
    }
    let server = s.server_pid();
    s.kill_server();

    s.start_local("carol", "kept.txt");
    s.wait_for("carol", "the room from disk", |t| {
        t.contains("on-disk kept line") && t.contains("connected")
    });
    assert_ne!(local_server_pid(s.addr), Some(server));
}

#[test]
fn a_file_seeded_again_into_an_emptied_room_does_not_double_it() {
    require_tmux();
    // A server that keeps nothing dies; alice and bob hold the history of
    // bg.txt's seed. carol's editor seeds the new, empty room from the same
    // file before they reconnect: the same content must merge as one.
    let text: String = (1..=81).map(|i| format!("bg line {i}\n")).collect();
    let mut s = Session::new(&[("bg.txt", &text)]);
    s.start("alice", "bg.txt");
    s.wait_for("alice", "alice connected", |t| {
        t.contains("bg line 1") && t.contains("connected")
    });
    s.start("bob", "bg.txt");
    s.wait_for("bob", "bob connected", |t| t.contains("connected"));
    s.kill_server();
    s.wait_for("alice", "alice offline", |t| t.contains("offline"));
    s.wait_for("bob", "bob offline", |t| t.contains("offline"));
    // alice and bob are held still (SIGSTOP) until carol has seeded.
    let held: Vec<u32> = ["alice", "bob"].iter().map(|w| s.editor_pid(w)).collect();
    signal(&held, "-STOP");
    s.restart_server();
    s.start("carol", "bg.txt");
    let seeded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        s.wait_for("carol", "carol's seed", |t| {
            t.contains("The room starts from bg.txt") && t.contains("connected")
        })
    }));
    // Never leave them stopped, even when the wait failed.
    signal(&held, "-CONT");
    seeded.unwrap();
    for who in ["alice", "bob"] {
        s.wait_for(who, "back online", |t| {
            t.contains("connected") && !t.contains("offline")
        });
    }
    // A mark from alice after her return: carol has her history then.
    s.keys("alice", &["C-Home"]);
    s.type_text("alice", "A ");
    s.wait_for("carol", "alice's mark", |t| t.contains("A bg line 1"));
    s.keys("carol", &["C-s"]);
    s.wait_for("carol", "saved", |t| t.contains("Saved "));
    let saved = read(&s.dir, "bg.txt");
    assert_eq!(
        saved,
        format!("A {text}"),
        "the file's text is not there once"
    );
}

#[test]
fn after_one_saves_the_shared_file_the_other_is_not_modified() {
    require_tmux();
    // Two people on one machine, one file.
    let s = Session::new(&[("plan.txt", "the plan\n")]);
    s.start("alice", "plan.txt");
    s.wait_for("alice", "alice connected", |t| {
        t.contains("the plan") && t.contains("connected")
    });
    s.start("bob", "plan.txt");
    s.wait_for("bob", "bob connected", |t| {
        t.contains("the plan") && t.contains("connected")
    });
    s.keys("alice", &["C-End"]);
    s.type_text("alice", "step one");
    s.wait_for("bob", "bob's [+] after alice's edit", |t| {
        t.contains("step one") && t.contains("plan.txt [+]")
    });
    // alice saves: plan.txt now holds what bob's screen holds.
    s.keys("alice", &["C-s"]);
    s.wait_for("alice", "saved", |t| t.contains("Saved "));
    s.wait_for("bob", "bob's [+] gone", |t| {
        t.contains("plan.txt") && !t.contains("[+]")
    });
    // And bob's quit asks nothing.
    s.keys("bob", &["C-q"]);
    let bob = s.wait_for("bob", "bob's exit", |t| t.contains("EXITED"));
    assert!(bob.contains("EXITED 0"), "{bob}");
    assert_eq!(read(&s.dir, "plan.txt"), "the plan\nstep one");
}

#[test]
fn saving_asks_before_replacing_what_it_did_not_load() {
    require_tmux();
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let s = Session::new(&[("notes.txt", "mine\n"), ("other.txt", "keep me\n")]);
    s.start("alice", "notes.txt");
    s.wait_for("alice", "alice connected", |t| {
        t.contains("mine") && t.contains("connected")
    });
    s.keys("alice", &["C-End"]);
    s.type_text("alice", "typed");
    s.wait_for("alice", "the typing", |t| t.contains("typed"));

    // Another program writes notes.txt: Ctrl-S asks, and writes on the
    // second Ctrl-S only.
    std::fs::write(s.dir.join("notes.txt"), "from another program\n").unwrap();
    s.keys("alice", &["C-s"]);
    s.wait_for("alice", "the question", |t| {
        t.contains("Not saved to notes.txt: it changed on disk")
    });
    assert_eq!(read(&s.dir, "notes.txt"), "from another program\n");
    s.keys("alice", &["C-s"]);
    s.wait_for("alice", "saved", |t| t.contains("Saved notes.txt"));
    assert_eq!(read(&s.dir, "notes.txt"), "mine\ntyped");

    // Save As onto an existing file asks; Enter again replaces it.
    s.keys("alice", &["M-s"]);
    s.wait_for("alice", "the Save As prompt", |t| t.contains("Save as:"));
    s.type_text("alice", "other.txt");
    s.keys("alice", &["Enter"]);
    s.wait_for("alice", "the question", |t| {
        t.contains("Not saved to other.txt: it already exists")
    });
    assert_eq!(read(&s.dir, "other.txt"), "keep me\n");
    s.keys("alice", &["Enter"]);
    s.wait_for("alice", "saved as", |t| t.contains("Saved other.txt"));
    assert_eq!(read(&s.dir, "other.txt"), "mine\ntyped");

    // A path that cannot be written: named, and FILE stays other.txt.
    s.keys("alice", &["M-s"]);
    s.type_text("alice", "no/such/dir.txt");
    s.keys("alice", &["Enter"]);
    s.wait_for("alice", "the failure", |t| {
        t.contains("Not saved to no/such/dir.txt") && t.contains("Save as: no/such/dir.txt")
    });
    s.keys("alice", &["Escape"]);
    s.wait_for("alice", "FILE unchanged", |t| t.contains(" other.txt "));

    // Read-only: refused, the file and its mode untouched.
    let other = s.dir.join("other.txt");
    std::fs::set_permissions(&other, std::fs::Permissions::from_mode(0o444)).unwrap();
    s.type_text("alice", "!");
    s.keys("alice", &["C-s"]);
    s.wait_for("alice", "the refusal", |t| {
        t.contains("it is read-only (mode 444)")
    });
    assert_eq!(read(&s.dir, "other.txt"), "mine\ntyped");
    std::fs::set_permissions(&other, std::fs::Permissions::from_mode(0o644)).unwrap();

    // A hard link keeps its inode and sees the new text.
    let link = s.dir.join("link.txt");
    std::fs::hard_link(&other, &link).unwrap();
    let ino = std::fs::metadata(&other).unwrap().ino();
    s.keys("alice", &["C-s"]);
    s.wait_for("alice", "saved in place", |t| t.contains("in place"));
    assert_eq!(std::fs::metadata(&other).unwrap().ino(), ino);
    assert_eq!(read(&s.dir, "link.txt"), "mine\ntyped!");
}

#[test]
fn a_large_paste_without_bracketed_paste_in_tmux() {
    require_tmux();
    // 100 indented lines, about 5.7 KB: more than one read of the terminal.
    let text: String = (0..100)
        .map(|i| format!("    line {i:03} of the pasted block, indented by four\n"))
        .collect();
    let s = Session::new(&[("paste.txt", ""), ("clip.txt", &text)]);
    s.start("alice", "paste.txt");
    s.wait_for("alice", "alice connected", |t| t.contains("connected"));

    // `paste-buffer` without `-p` types the text as keys (each line break a
    // carriage return), as a terminal without bracketed paste does. All of
    // it shows without another key being pressed.
    let clip = s.dir.join("clip.txt");
    s.tmux(&["load-buffer", &clip.display().to_string()]);
    s.tmux(&["paste-buffer", "-t", "alice"]);
    s.wait_for("alice", "the last pasted line", |t| {
        t.contains("line 099 of the pasted block") && t.contains(" 101:1 ")
    });
    // One edit, not stair-stepped by Enter's indentation, and one undo
    // takes it all back.
    s.keys("alice", &["C-s"]);
    s.wait_for("alice", "saved", |t| t.contains("Saved "));
    assert_eq!(read(&s.dir, "paste.txt"), text);
    s.keys("alice", &["C-z"]);
    s.wait_for("alice", "the paste undone", |t| {
        !t.contains("pasted block") && t.contains(" 1:1 ")
    });
}

#[test]
fn a_crlf_file_keeps_its_line_endings_in_tmux() {
    require_tmux();
    let s = Session::new(&[("dos.txt", "first\r\n    second\r\nthird\r\n")]);
    s.start("alice", "dos.txt");
    s.wait_for("alice", "the CRLF file", |t| {
        t.contains("second") && t.contains("connected")
    });
    // Enter after `second` (the new line takes its indentation), then a
    // two-line paste typed as keys.
    s.keys("alice", &["Down", "End", "Enter"]);
    // (Typed before the Enter is handled, "new" would arrive in one burst
    // with it: a paste, which gets no indentation.)
    s.wait_for("alice", "the indented line", |t| t.contains(" 3:5 "));
    s.type_text("alice", "new");
    s.wait_for("alice", "the new line", |t| t.contains(" 3:8 "));
    s.tmux(&["set-buffer", "p1\np2\n"]);
    s.tmux(&["paste-buffer", "-t", "alice"]);
    s.wait_for("alice", "the pasted lines", |t| t.contains(" 5:1 "));
    s.keys("alice", &["C-s"]);
    s.wait_for("alice", "saved", |t| t.contains("Saved "));
    assert_eq!(
        read(&s.dir, "dos.txt"),
        "first\r\n    second\r\n    newp1\r\np2\r\n\r\nthird\r\n"
    );
}

#[test]
fn follow_mode_in_tmux() {
    require_tmux();
    let text: String = (1..=200).map(|i| format!("row {i:03}\n")).collect();
    let s = Session::new(&[("long.txt", &text)]);
    s.start("alice", "long.txt");
    s.wait_for("alice", "alice connected", |t| {
        t.contains("row 001") && t.contains("connected")
    });
    s.start("bob", "bob.txt");
    s.wait_for("bob", "the room's text", |t| {
        t.contains("row 001") && t.contains("connected")
    });
    s.wait_for("alice", "bob in the members", |t| t.contains("● bob"));

    // Alice follows bob (F5); bob goes to the end, then types there.
    s.keys("alice", &["F5"]);
    s.wait_for("alice", "following bob", |t| t.contains("following bob"));
    s.keys("bob", &["C-End"]);
    s.type_text("bob", "bob was here");
    // (The line bob types on may be under a notice: what shows is the
    // rows above it.)
    s.wait_for("alice", "bob's caret at the end", |t| {
        t.contains("row 199") && t.contains("bob was") && !t.contains("row 001")
    });
    // Alice moves: following stops and her own caret (line 2) shows.
    s.keys("alice", &["Down"]);
    s.wait_for("alice", "alice's own view", |t| {
        !t.contains("following") && t.contains("row 002") && t.contains(" 2:1 ")
    });
    // `/follow bob` from the chat box does the same.
    s.keys("alice", &["F2"]);
    s.type_text("alice", "/follow bob");
    s.keys("alice", &["Enter"]);
    s.wait_for("alice", "following bob again", |t| {
        t.contains("following bob") && t.contains("row 199") && !t.contains("row 002")
    });
}

#[test]
fn flags_scrolled_out_of_view_leave_nothing_behind_in_tmux() {
    require_tmux();
    // (The columns matter: after End, a narrow character lands on the
    // first column of a flag whose second column stays a space.)
    let line = "ab 🇫🇷x🇩🇪yy🇯🇵 👍🏽 z 中文 then a long tail of text that goes past the right edge of the pane for sure ok END\n";
    let s = Session::new(&[("f.txt", line)]);
    s.start("alice", "f.txt");
    s.wait_for("alice", "the flags", |t| {
        t.contains("🇫🇷x🇩🇪yy🇯🇵 👍🏽") && t.contains("connected")
    });
    // In 40 columns, End scrolls the line right: the flags and emoji leave
    // the view, and nothing of them stays behind.
    s.tmux(&["resize-window", "-t", "alice", "-x", "40", "-y", "6"]);
    s.wait_for("alice", "a 40x6 layout", |t| {
        t.lines().count() == 6 && !t.contains("Members") && t.contains("🇯🇵 👍🏽")
    });
    s.keys("alice", &["End"]);
    let shown = s.wait_for("alice", "the end of the line", |t| t.contains("ok END"));
    let first = shown.lines().next().unwrap();
    assert!(
        !first
            .chars()
            .any(|c| ('\u{1F1E6}'..='\u{1F1FF}').contains(&c)),
        "half a flag stayed: {first:?}"
    );
    assert!(!first.contains('👍'), "{first:?}");
    assert!(
        first.trim_end().ends_with("the pane for sure ok END"),
        "{first:?}"
    );
    // And back: all of them whole again.
    s.keys("alice", &["Home"]);
    s.wait_for("alice", "the flags again", |t| {
        t.contains("🇫🇷x🇩🇪yy🇯🇵 👍🏽 z 中文")
    });
}

#[test]
fn shift_f3_as_tmux_sends_it_finds_backwards() {
    require_tmux();
    let s = Session::new(&[("find.txt", "needle one\nhay\nneedle two\nneedle three\n")]);
    s.start("alice", "find.txt");
    s.wait_for("alice", "the file", |t| {
        t.contains("needle three") && t.contains("connected")
    });
    // Find "needle" from line 3: the match on line 3; F3 goes to line 4.
    s.keys("alice", &["Down", "Down", "C-f"]);
    s.type_text("alice", "needle");
    s.wait_for("alice", "the match on line 3", |t| t.contains(" 3:7 "));
    s.keys("alice", &["Escape"]);
    s.wait_for("alice", "the prompt closed", |t| {
        !t.contains("Find:") && t.contains(" 3:7 ")
    });
    s.keys("alice", &["F3"]);
    s.wait_for("alice", "the match on line 4", |t| t.contains(" 4:7 "));
    // tmux sends Shift-F3 as `CSI 1;2 R`: back to line 3, then line 1.
    s.keys("alice", &["S-F3"]);
    s.wait_for("alice", "the match on line 3 again", |t| {
        t.contains(" 3:7 ")
    });
    s.keys("alice", &["S-F3"]);
    s.wait_for("alice", "the match on line 1", |t| t.contains(" 1:7 "));
}

/// Issue 17 end to end: alice shares a folder of three files and a
/// subfolder; bob joins without a path and opens a file from the tree and
/// one from the picker; they edit different files and the same file; bob
/// follows alice across files; alice renames the file bob has open; both
/// save all, and the room's files are byte-identical in the two folders.
#[test]
fn a_shared_folder_in_tmux() {
    require_tmux();
    let s = Session::new(&[]);
    let dir = s.dir.clone();
    let proj = dir.join("proj");
    std::fs::create_dir_all(proj.join("sub")).unwrap();
    std::fs::write(proj.join("a.txt"), "alpha\n").unwrap();
    std::fs::write(proj.join("b.txt"), "bravo\n").unwrap();
    std::fs::write(proj.join("sub/c.txt"), "charlie\n").unwrap();

    s.start("alice", "proj");
    s.wait_for("alice", "the share", |t| {
        t.contains("Shared the folder: 3 files.") && t.contains("alpha")
    });
    s.start("bob", "");
    s.wait_for("bob", "the tree", |t| {
        t.contains("Files") && t.contains("sub/") && t.contains("c.txt")
    });
    // From the tree (a.txt, b.txt, sub/, c.txt): b.txt.
    s.keys("bob", &["Down", "Enter"]);
    s.wait_for("bob", "b.txt", |t| t.contains("bravo"));
    // From the picker: c.txt.
    s.keys("bob", &["C-p"]);
    s.type_text("bob", "c.txt");
    s.wait_for("bob", "the picker", |t| t.contains("Open file: c.txt"));
    s.keys("bob", &["Enter"]);
    s.wait_for("bob", "c.txt", |t| t.contains("charlie"));

    // Different files at once.
    s.type_text("alice", "A1 ");
    s.type_text("bob", "B1 ");
    s.wait_for("alice", "alice's edit", |t| t.contains("A1 alpha"));
    s.wait_for("bob", "bob's edit", |t| t.contains("B1 charlie"));

    // Bob follows alice: her file (a.txt) comes on his screen.
    s.wait_for("bob", "alice in the members", |t| t.contains("● alice"));
    s.keys("bob", &["F5"]);
    s.wait_for("bob", "a.txt, following", |t| {
        t.contains("A1 alpha") && t.contains("following alice")
    });
    s.type_text("bob", "B0 ");
    s.wait_for("alice", "bob's edit in a.txt", |t| {
        t.contains("B0 A1 alpha")
    });

    // The same file at once: alice goes to b.txt, bob follows her there.
    s.keys("bob", &["F5"]);
    s.wait_for("bob", "following again", |t| t.contains("following alice"));
    s.keys("alice", &["C-p"]);
    s.type_text("alice", "b.txt");
    s.keys("alice", &["Enter"]);
    s.wait_for("alice", "b.txt", |t| t.contains("bravo"));
    s.wait_for("bob", "bob follows to b.txt", |t| {
        t.contains("bravo") && !t.contains("alpha")
    });
    s.keys("alice", &["End"]);
    s.type_text("alice", " A2");
    s.type_text("bob", "B2 ");
    let both = |t: &str| t.contains("B2 bravo A2");
    s.wait_for("alice", "both edits in b.txt", both);
    s.wait_for("bob", "both edits in b.txt", both);

    // Across files: alice goes to c.txt, bob's screen goes with her.
    s.keys("bob", &["F5"]);
    s.wait_for("bob", "following again", |t| t.contains("following alice"));
    s.keys("alice", &["C-p"]);
    s.type_text("alice", "c.txt");
    s.keys("alice", &["Enter"]);
    s.wait_for("alice", "c.txt", |t| t.contains("B1 charlie"));
    s.wait_for("bob", "bob follows to c.txt", |t| {
        t.contains("B1 charlie") && t.contains("following alice")
    });

    // Alice renames sub/c.txt (the file bob has open) from the tree.
    s.keys("alice", &["F7", "Home", "Down", "Down", "Down", "r", "C-u"]);
    s.type_text("alice", "renamed.txt");
    s.keys("alice", &["Enter"]);
    s.wait_for("bob", "the rename", |t| t.contains("renamed.txt"));
    s.keys("bob", &["C-End"]);
    s.type_text("bob", "B3");
    s.wait_for("alice", "bob's edit in the renamed file", |t| {
        t.contains("B3")
    });

    // Both save all; bob is asked for a folder.
    s.keys("alice", &["M-a"]);
    s.wait_for("alice", "saved all", |t| t.contains("Saved all: 3 files."));
    s.keys("bob", &["M-a"]);
    s.wait_for("bob", "the folder question", |t| {
        t.contains("under folder:")
    });
    s.type_text("bob", "bobcopy");
    s.keys("bob", &["Enter"]);
    s.wait_for("bob", "saved all", |t| t.contains("Saved all: 3 files."));
    // The two folders are byte-identical: the same files, the same bytes
    // (alice's sub/c.txt was moved to its new name by her save all).
    let files = ["a.txt", "b.txt", "sub/renamed.txt"];
    assert_eq!(files_under(&proj), files);
    assert_eq!(files_under(&dir.join("bobcopy")), files);
    for path in files {
        let a = std::fs::read(proj.join(path)).unwrap();
        let b = std::fs::read(dir.join("bobcopy").join(path)).unwrap();
        assert_eq!(a, b, "{path} differs");
    }
    assert_eq!(read(&proj, "a.txt"), "B0 A1 alpha\n");
    assert_eq!(read(&proj, "b.txt"), "B2 bravo A2\n");
    assert_eq!(read(&proj, "sub/renamed.txt"), "B1 charlie\nB3");
}

/// A newcomer with no file joins a long room: its text is on screen (sent
/// ahead of the room's history), and once the history is loaded what the
/// newcomer types reaches the other member, and the other's typing reaches
/// the newcomer.
#[test]
fn a_newcomer_to_a_long_room_sees_its_text_and_edits_it_in_tmux() {
    require_tmux();
    let long: String = (0..3000)
        .map(|i| format!("line {i:04}: fn f{i}() -> usize {{ {i} }}\n"))
        .collect();
    let s = Session::new(&[("long.rs", long.as_str())]);
    s.start("alice", "long.rs");
    s.wait_for("alice", "alice's file", |t| {
        t.contains("line 0000") && t.contains("connected")
    });
    s.type_text("alice", "// alice ");
    s.wait_for("alice", "alice's typing", |t| {
        t.contains("// alice line 0000")
    });

    s.start("bob", "");
    s.wait_for("bob", "the room's text on bob's screen", |t| {
        t.contains("// alice line 0000") && t.contains("line 0010")
    });
    s.type_text("bob", "// bob ");
    s.wait_for("alice", "bob's typing", |t| {
        t.contains("// bob // alice line 0000")
    });
    s.keys("alice", &["C-End"]);
    s.type_text("alice", "the end");
    s.keys("bob", &["C-End"]);
    s.wait_for("bob", "alice's typing at the end", |t| {
        t.contains("the end")
    });
}
