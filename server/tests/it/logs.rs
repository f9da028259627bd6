//! What the real binary writes to its log: never a secret, at any level,
//! and at the default level mostly the server's own lines.

use std::path::Path;
use std::process::Child;

use collab_protocol::{ClientMsg, ServerMsg};
use tokio::time::timeout;

use crate::common::{self, Client, WAIT, edit, join_msg, replica};

/// SIGTERM, then the whole log once the process has exited.
async fn stop_and_read(mut child: Child, log: &Path) -> String {
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = tokio::task::spawn_blocking(move || child.wait());
    timeout(WAIT, status).await.unwrap().unwrap().unwrap();
    std::fs::read_to_string(log).unwrap()
}

#[tokio::test]
async fn no_token_or_session_reaches_the_log_even_at_trace() {
    const EDIT: &str = "edit-Zq8secretTOKEN";
    const VIEW: &str = "view-Kp3secretTOKEN";
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("server.log");
    let (child, addr) = common::spawn_binary_logging(
        &["--memory", "--token", EDIT, "--read-only-token", VIEW],
        Some("trace"),
        Some(&log),
    )
    .await;

    let mut alice = Client::connect(addr).await;
    let w = alice
        .join_with(collab_protocol::Join {
            token: Some(EDIT.into()),
            ..join_msg("r", "alice")
        })
        .await;
    let session = w.session.clone();
    let mut doc = replica(&w);
    alice
        .send(&ClientMsg::Update {
            seq: 1,
            data: edit(&mut doc, 0, "typed"),
        })
        .await;
    alice
        .recv_until(|m| matches!(m, ServerMsg::Ack { .. }))
        .await;
    let mut viewer = Client::connect(addr).await;
    let vw = viewer
        .join_with(collab_protocol::Join {
            token: Some(VIEW.into()),
            ..join_msg("r", "viewer")
        })
        .await;
    // alice resumes her session on a new connection (as after a drop the
    // server has not noticed yet): a takeover.
    let mut again = Client::connect(addr).await;
    let resumed = again
        .join_with(collab_protocol::Join {
            token: Some(EDIT.into()),
            session: Some(session.clone()),
            ..join_msg("r", "alice")
        })
        .await;
    assert!(resumed.resumed, "the session was taken over");
    again.ping_chat("back").await;
    again.close().await;
    viewer.close().await;
    let _ = alice.expect_closed().await;

    let text = stop_and_read(child, &log).await;
    // The log is real: debug lines from our own code and tungstenite
    // (whose trace lines printed whole messages)...
    assert!(text.lines().count() > 10, "{text}");
    assert!(text.contains("collab_server::connection"), "{text}");
    assert!(text.contains("tungstenite::protocol"), "{text}");
    // ...and holds none of the secrets.
    for secret in [
        EDIT,
        VIEW,
        session.as_str(),
        vw.session.as_str(),
        resumed.session.as_str(),
    ] {
        let at = text.find(secret);
        assert!(
            at.is_none(),
            "{secret} is in the log: {}",
            text.lines().find(|l| l.contains(secret)).unwrap_or("")
        );
    }
}

/// Issue 13: at the default level Loro's diagnostics were 92% of the log.
#[tokio::test]
async fn dependencies_log_less_than_the_server_at_the_default_level() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("server.log");
    let (child, addr) =
        common::spawn_binary_logging(&["--memory", "--log-format", "json"], None, Some(&log)).await;
    // Ordinary editing: two members, concurrent edits, a newcomer.
    let mut alice = Client::connect(addr).await;
    let w = alice.join("r", "alice").await;
    let mut bob = Client::connect(addr).await;
    let wb = bob.join("r", "bob").await;
    let mut a_doc = replica(&w);
    let mut b_doc = replica(&wb);
    for seq in 1..=20 {
        alice
            .send(&ClientMsg::Update {
                seq,
                data: edit(&mut a_doc, 0, "a"),
            })
            .await;
        bob.send(&ClientMsg::Update {
            seq,
            data: edit(&mut b_doc, 0, "b"),
        })
        .await;
    }
    for c in [&mut alice, &mut bob] {
        c.recv_until(|m| matches!(m, ServerMsg::Ack { seq: 20 }))
            .await;
    }
    let mut carol = Client::connect(addr).await;
    carol.join("r", "carol").await;
    for c in [alice, bob, carol] {
        c.close().await;
    }

    let text = stop_and_read(child, &log).await;
    let (mut own, mut deps) = (0, 0);
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("a JSON log line");
        let target = v["target"].as_str().unwrap_or("");
        if target.starts_with("collab_") {
            own += 1;
        } else {
            deps += 1;
        }
    }
    assert!(own > 0, "{text}");
    assert!(
        deps < own,
        "{deps} lines from dependencies, {own} own:\n{text}"
    );
}
