//! A damaged store file (truncated, flipped bytes, emptied) never makes
//! the server panic or exit: a room whose stored records do not decode is
//! refused to its joiners with a clear error, the others are served, and
//! the log names the file and what to do. Real files, the real binary.

use std::path::Path;
use std::process::Child;
use std::time::Duration;

use collab_protocol::{ClientMsg, ErrorCode, ServerMsg};
use collab_server::{Config, DB_FILE, Storage};

use crate::common::{self, Client, Server, edit, join_msg, replica, test_config};

const ROOMS: usize = 20;

fn marker(i: usize) -> String {
    format!("marker-{i:02}-qwertyuiopasdfgh")
}

fn text(i: usize) -> String {
    format!("room {i:02}: {} and some more text\n", marker(i))
}

/// A store of [`ROOMS`] rooms, each with its own text.
async fn make_store(dir: &Path) {
    let server = Server::start(Config {
        storage: Storage::Dir(dir.to_path_buf()),
        flush_interval: Duration::from_millis(5),
        ..test_config()
    })
    .await;
    for i in 0..ROOMS {
        let (mut c, w) = server.join(&format!("room{i:02}"), "alice").await;
        let mut doc = replica(&w);
        c.send(&ClientMsg::Update {
            seq: 1,
            data: edit(&mut doc, 0, &text(i)),
        })
        .await;
        c.recv_until(|m| matches!(m, ServerMsg::Ack { seq: 1 }))
            .await;
        c.close().await;
    }
    server.stop().await;
}

/// What a join to room `i` gets: its text, or the error's message.
async fn join_room(addr: std::net::SocketAddr, i: usize) -> Result<String, String> {
    let mut c = Client::connect(addr).await;
    c.send(&ClientMsg::Join(join_msg(&format!("room{i:02}"), "bob")))
        .await;
    match c.recv().await {
        ServerMsg::Welcome(w) => Ok(replica(&w).text()),
        ServerMsg::Error { code, message, .. } => {
            assert_eq!(code, ErrorCode::StorageFailed, "{message}");
            Err(message)
        }
        other => panic!("expected welcome or error, got {other:?}"),
    }
}

struct Outcome {
    served: Vec<usize>,
    refused: Vec<usize>,
    log: String,
}

/// Starts the binary on `dir`, joins every room, checks that each is
/// served exactly or refused, and that the server is still running.
async fn serve_damaged(dir: &Path) -> Outcome {
    let log_path = dir.join("server.log");
    let dir_arg = dir.to_str().unwrap();
    let (mut child, addr) =
        common::spawn_binary_logging(&["--data-dir", dir_arg], None, Some(&log_path)).await;
    let mut served = Vec::new();
    let mut refused = Vec::new();
    for i in 0..ROOMS {
        match join_room(addr, i).await {
            Ok(t) => {
                assert_eq!(t, text(i), "room {i} served with other text");
                served.push(i);
            }
            Err(message) => {
                assert!(message.contains("damaged"), "{message}");
                refused.push(i);
            }
        }
    }
    assert!(
        child.try_wait().unwrap().is_none(),
        "the server exited: {}",
        std::fs::read_to_string(&log_path).unwrap_or_default()
    );
    let status = stop(child).await;
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(status.success(), "{status}: {log}");
    Outcome {
        served,
        refused,
        log,
    }
}

async fn stop(mut child: Child) -> std::process::ExitStatus {
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = tokio::task::spawn_blocking(move || child.wait());
    tokio::time::timeout(common::WAIT, status)
        .await
        .unwrap()
        .unwrap()
        .unwrap()
}

/// The log names the file and says what to do.
fn assert_advice(log: &str, dir: &Path) {
    let file = dir.join(DB_FILE);
    let file = file.to_str().unwrap();
    assert!(
        log.lines()
            .any(|l| l.contains("ERROR") && l.contains(file) && l.contains("backup")),
        "no error naming {file} with advice:\n{log}"
    );
}

#[tokio::test]
async fn flipped_bytes_refuse_that_room_and_serve_the_others() {
    let dir = tempfile::tempdir().unwrap();
    make_store(dir.path()).await;
    let file = dir.path().join(DB_FILE);
    let mut bytes = std::fs::read(&file).unwrap();
    let m = marker(7);
    // Every copy (redb writes pages anew, old ones linger in the file).
    let found: Vec<usize> = bytes
        .windows(m.len())
        .enumerate()
        .filter(|(_, w)| *w == m.as_bytes())
        .map(|(at, _)| at)
        .collect();
    assert!(!found.is_empty(), "room 07's text is in the file");
    for at in found {
        for b in &mut bytes[at + 10..at + 14] {
            *b ^= 0x5a;
        }
    }
    std::fs::write(&file, &bytes).unwrap();
    let out = serve_damaged(dir.path()).await;
    assert_eq!(out.refused, vec![7], "served: {:?}", out.served);
    assert!(
        out.log.contains("room07"),
        "the log names the room:\n{}",
        out.log
    );
    assert_advice(&out.log, dir.path());
}

#[tokio::test]
async fn a_truncated_file_never_panics() {
    let dir = tempfile::tempdir().unwrap();
    make_store(dir.path()).await;
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(dir.path().join(DB_FILE))
        .unwrap();
    let len = file.metadata().unwrap().len();
    file.set_len(len / 2).unwrap();
    drop(file);
    let out = serve_damaged(dir.path()).await;
    assert!(
        !out.refused.is_empty(),
        "half the file gone, nothing refused"
    );
    assert_advice(&out.log, dir.path());
}

#[tokio::test]
async fn an_emptied_file_is_not_a_fresh_store() {
    let dir = tempfile::tempdir().unwrap();
    make_store(dir.path()).await;
    std::fs::File::create(dir.path().join(DB_FILE)).unwrap();
    let out = serve_damaged(dir.path()).await;
    assert!(out.served.is_empty(), "served empty: {:?}", out.served);
    assert_advice(&out.log, dir.path());
}
