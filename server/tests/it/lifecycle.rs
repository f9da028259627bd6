//! Shutdown, the real binary, idle shutdown, connection limits, paths.
#![allow(clippy::unwrap_used)]

use crate::common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use collab_protocol::{ClientMsg, ErrorCode, ServerMsg};
use common::{Client, Server, WAIT, test_config};
use tokio::time::timeout;

#[tokio::test]
async fn shutdown_tells_every_client_then_closes_and_run_returns() {
    let mut server = Server::start(test_config()).await;
    let (mut alice, _) = server.join("abc", "alice").await;
    let (mut bob, _) = server.join("xyz", "bob").await;
    let mut lurker = server.client().await; // not joined yet
    server.trigger_shutdown();
    for c in [&mut alice, &mut bob, &mut lurker] {
        let seen = c.expect_closed().await;
        assert!(
            matches!(seen.last(), Some(ServerMsg::Shutdown { message }) if !message.is_empty()),
            "{seen:?}"
        );
    }
    timeout(WAIT, server.handle)
        .await
        .expect("run returns")
        .unwrap()
        .unwrap();
}

// Paused time: the idle timer runs on tokio's clock, so the test moves the
// clock past the idle period instead of sleeping through it.
#[tokio::test(start_paused = true)]
async fn idle_shutdown_returns_once_nobody_is_connected() {
    let config = collab_server::Config {
        idle_shutdown: Some(Duration::from_millis(300)),
        ..test_config()
    };
    let server = Server::start(config).await;
    let (alice, _) = server.join("abc", "alice").await;
    // Connected for longer than the idle period: still running.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(!server.handle.is_finished());
    alice.close().await;
    timeout(WAIT, server.handle)
        .await
        .expect("run returns when idle")
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn connections_over_the_limit_get_server_full() {
    let config = collab_server::Config {
        max_connections: 2,
        ..test_config()
    };
    let server = Server::start(config).await;
    let (mut alice, _) = server.join("abc", "alice").await;
    let (bob, _) = server.join("abc", "bob").await;
    let mut third = server.client().await;
    let seen = third.expect_closed().await;
    assert!(
        matches!(
            &seen[..],
            [ServerMsg::Error {
                code: ErrorCode::ServerFull,
                ..
            }]
        ),
        "{seen:?}"
    );
    // A slot frees when someone leaves.
    bob.close().await;
    alice
        .recv_until(|m| matches!(m, ServerMsg::Left { .. }))
        .await;
    let (_carol, w) = server.join("abc", "carol").await;
    assert_eq!(w.members.len(), 2);
    server.stop().await;
}

#[tokio::test]
async fn other_paths_get_404() {
    let server = Server::start(test_config()).await;
    let err = tokio_tungstenite::connect_async(format!("ws://{}/nope", server.addr))
        .await
        .unwrap_err();
    match err {
        tokio_tungstenite::tungstenite::Error::Http(resp) => {
            assert_eq!(resp.status(), 404);
        }
        other => panic!("expected HTTP 404, got {other:?}"),
    }
    // The server is fine.
    let (_a, _) = server.join("abc", "alice").await;
    server.stop().await;
}

#[tokio::test]
async fn a_connection_that_never_joins_is_closed() {
    let config = collab_server::Config {
        join_timeout: Duration::from_millis(200),
        ..test_config()
    };
    let server = Server::start(config).await;
    let mut c = Client::connect(server.addr).await;
    let seen = c.expect_closed().await;
    assert!(
        matches!(
            &seen[..],
            [ServerMsg::Error {
                code: ErrorCode::NotJoined,
                ..
            }]
        ),
        "{seen:?}"
    );
    server.stop().await;
}

#[test]
fn help_explains_every_flag_and_its_variable() {
    let out = Command::new(env!("CARGO_BIN_EXE_collab-server"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for flag in [
        "--bind",
        "--max-connections",
        "--max-rooms",
        "--max-users-per-room",
        "--max-frame-bytes",
        "--max-doc-bytes",
        "--rate",
        "--burst",
        "--outbound-queue",
        "--ping-interval",
        "--idle-shutdown",
        "--log-format",
        "--handshake-timeout",
        "--max-half-open",
        "--max-half-open-per-ip",
        "--cap-loopback-per-ip",
        "COLLAB_BIND",
        "COLLAB_PING_INTERVAL",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}:\n{help}");
    }
}

#[tokio::test]
async fn the_binary_prints_its_address_and_exits_0_on_sigterm() {
    let (mut child, addr) = common::spawn_binary(&["--log-format", "json", "--memory"]).await;

    // It raised its open-files soft limit to the hard one, so a shell's
    // usual 1024 does not cap --max-connections.
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", child.id())).unwrap();
    let open_files: Vec<&str> = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap()
        .split_whitespace()
        .skip(3)
        .take(2)
        .collect();
    assert_eq!(open_files[0], open_files[1], "soft != hard: {limits}");

    let mut alice = Client::connect(addr).await;
    alice.join("abc", "alice").await;
    alice.send(&ClientMsg::Chat { text: "hi".into() }).await;
    alice.recv().await;

    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let seen = alice.expect_closed().await;
    assert!(
        matches!(seen.last(), Some(ServerMsg::Shutdown { .. })),
        "{seen:?}"
    );
    let status = tokio::task::spawn_blocking(move || child.wait());
    let status = timeout(WAIT, status).await.unwrap().unwrap().unwrap();
    assert_eq!(status.code(), Some(0));
}

/// The address line means "up": a SIGTERM the moment it is read is a
/// graceful shutdown (exit 0), not death by the default signal action. The
/// handlers used to be installed only when the shutdown future was first
/// polled, after the line and after opening the store.
#[tokio::test]
async fn sigterm_right_after_the_address_line_is_graceful() {
    let dir = tempfile::tempdir().unwrap();
    for _ in 0..5 {
        let mut child = Command::new(env!("CARGO_BIN_EXE_collab-server"))
            .args(["--bind", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let pid = child.id().to_string();
        let status = tokio::task::spawn_blocking(move || {
            let mut line = String::new();
            BufReader::new(stdout).read_line(&mut line).unwrap();
            assert!(line.starts_with("collab-server listening on"), "{line}");
            let kill = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
            assert!(kill.success());
            child.wait().unwrap()
        });
        let status = timeout(WAIT, status).await.unwrap().unwrap();
        assert_eq!(status.code(), Some(0), "{status}");
    }
}

async fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = String::new();
    timeout(WAIT, s.read_to_string(&mut out))
        .await
        .unwrap()
        .unwrap();
    out
}

#[tokio::test]
async fn plain_http_gets_an_answer() {
    let server = Server::start(test_config()).await;
    let other = http_get(server.addr, "/").await;
    assert!(other.starts_with("HTTP/1.1 404"), "{other}");
    assert!(other.contains("/ws"), "{other}");
    let no_upgrade = http_get(server.addr, "/ws").await;
    assert!(no_upgrade.starts_with("HTTP/1.1 426"), "{no_upgrade}");
    server.stop().await;
}
