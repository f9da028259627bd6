//! End to end: a real server (collab-tui's own `serve` subcommand on a free
//! loopback port) and two real collab-tui processes in tmux, driven by
//! send-keys and read by capture-pane, as two people would use them.
//!
//! Every wait polls the screen for something observable, with a deadline;
//! nothing sleeps to synchronise. The tmux server is private (`-L`) and
//! killed at the end, with the collab server, even when an assertion fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use unicode_width::UnicodeWidthStr;

const BIN: &str = env!("CARGO_BIN_EXE_collab-tui");
const DEADLINE: Duration = Duration::from_secs(20);

/// The tests here share two cores with their own servers, editors and
/// tmux; they run one at a time so that no deadline is spent waiting for
/// another test's processes.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

struct Session {
    socket: String,
    addr: SocketAddr,
    server: Child,
    dir: PathBuf,
    _turn: MutexGuard<'static, ()>,
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .stderr(Stdio::null())
            .status();
        let _ = self.server.kill();
        let _ = self.server.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Session {
    /// A private tmux server, a scratch directory holding `files`, and a
    /// collab server on a free loopback port.
    fn new(files: &[(&str, &str)]) -> Session {
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
        let addr = free_addr();
        Session {
            socket: unique,
            addr,
            server: start_server(addr),
            dir,
            _turn: turn,
        }
    }

    /// Stops the server (as a crash would: no goodbye to anyone).
    fn kill_server(&mut self) {
        self.server.kill().unwrap();
        self.server.wait().unwrap();
    }

    /// A new, empty server on the same address.
    fn restart_server(&mut self) {
        self.server = start_server(self.addr);
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
            "100",
            "-y",
            "30",
            &cmd,
        ]);
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

fn tmux_available() -> bool {
    Command::new("tmux")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn free_addr() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

fn start_server(addr: SocketAddr) -> Child {
    let child = Command::new(BIN)
        .args([
            "serve",
            "--bind",
            &addr.to_string(),
            "--idle-shutdown",
            "300",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let until = Instant::now() + DEADLINE;
    while TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < until, "the server did not start on {addr}");
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

fn count(haystack: &str, needle: &str) -> usize {
    haystack.matches(needle).count()
}

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap()
}

#[test]
fn two_people_edit_one_file_in_tmux() {
    if !tmux_available() {
        eprintln!("SKIPPED: tmux was not found on PATH (apt-get install tmux to run this test)");
        return;
    }
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
    if !tmux_available() {
        eprintln!("SKIPPED: tmux was not found on PATH (apt-get install tmux to run this test)");
        return;
    }
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
    if !tmux_available() {
        eprintln!("SKIPPED: tmux was not found on PATH (apt-get install tmux to run this test)");
        return;
    }
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
    if !tmux_available() {
        eprintln!("SKIPPED: tmux was not found on PATH (apt-get install tmux to run this test)");
        return;
    }
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
fn a_large_paste_without_bracketed_paste_in_tmux() {
    if !tmux_available() {
        eprintln!("SKIPPED: tmux was not found on PATH (apt-get install tmux to run this test)");
        return;
    }
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
    if !tmux_available() {
        eprintln!("SKIPPED: tmux was not found on PATH (apt-get install tmux to run this test)");
        return;
    }
    let s = Session::new(&[("dos.txt", "first\r\n    second\r\nthird\r\n")]);
    s.start("alice", "dos.txt");
    s.wait_for("alice", "the CRLF file", |t| {
        t.contains("second") && t.contains("connected")
    });
    // Enter after `second` (the new line takes its indentation), then a
    // two-line paste typed as keys.
    s.keys("alice", &["Down", "End", "Enter"]);
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
    if !tmux_available() {
        eprintln!("SKIPPED: tmux was not found on PATH (apt-get install tmux to run this test)");
        return;
    }
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
    if !tmux_available() {
        eprintln!("SKIPPED: tmux was not found on PATH (apt-get install tmux to run this test)");
        return;
    }
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
