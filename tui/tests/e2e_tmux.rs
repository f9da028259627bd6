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
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const BIN: &str = env!("CARGO_BIN_EXE_collab-tui");
const DEADLINE: Duration = Duration::from_secs(20);

struct Session {
    socket: String,
    server: Child,
    dir: PathBuf,
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
    fn tmux(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.socket])
            .args(args)
            .output()
            .expect("tmux runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn start(&self, name: &str, addr: SocketAddr, file: &str) {
        let cmd = format!(
            "cd '{}' && '{BIN}' --server ws://{addr} --room e2e --user {name} {file}; echo EXITED $?; sleep 600",
            self.dir.display()
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
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let unique = format!("collab-e2e-{}-{nanos}", std::process::id());
    let dir = std::env::temp_dir().join(&unique);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("alice.txt"), "hello from alice\nsecond line\n").unwrap();
    let addr = free_addr();
    let s = Session {
        socket: unique,
        server: start_server(addr),
        dir: dir.clone(),
    };

    // Alice opens her file in a new room; Bob joins and sees it.
    s.start("alice", addr, "alice.txt");
    s.wait_for("alice", "alice's file", |t| {
        t.contains("hello from alice") && t.contains("connected")
    });
    s.start("bob", addr, "bob.txt");
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
