//! Bounded fuzzing of update import through a real server: arbitrary bytes,
//! and real Loro updates cut, bit-flipped or spliced, sent as `update`
//! data. Every one gets exactly one answer carrying its seq (`ack`, or a
//! non-fatal error), the connection and the server live on, and what the
//! server relays always imports into another member's replica. Seeded:
//! the same cases on every run; `FUZZ_UPDATES` raises the count (300).
#![allow(clippy::unwrap_used)]

use crate::common;

use std::time::Duration;

use collab_doc::SharedDoc;
use collab_protocol::{Base64Bytes, ClientMsg, ServerMsg};
use common::{Server, replica, test_config};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

/// One fuzzed payload: random bytes, or a real update damaged.
fn payload(rng: &mut StdRng, real: &[Vec<u8>]) -> Vec<u8> {
    let pick = |rng: &mut StdRng| real[rng.random_range(0..real.len())].clone();
    match rng.random_range(0..6) {
        0 => (0..rng.random_range(0..600))
            .map(|_| rng.random())
            .collect(),
        1 => {
            let mut u = pick(rng);
            u.truncate(rng.random_range(0..=u.len()));
            u
        }
        2 => {
            let mut u = pick(rng);
            for _ in 0..rng.random_range(1..4) {
                let i = rng.random_range(0..u.len());
                u[i] ^= 1 << rng.random_range(0..8);
            }
            u
        }
        3 => {
            let mut u = pick(rng);
            let at = rng.random_range(0..=u.len());
            let junk: Vec<u8> = (0..rng.random_range(1..32)).map(|_| rng.random()).collect();
            u.splice(at..at, junk);
            u
        }
        4 => {
            let mut u = pick(rng);
            u.extend(pick(rng));
            u
        }
        // An intact one (resent or new): acked.
        _ => pick(rng),
    }
}

fn cases() -> u64 {
    std::env::var("FUZZ_UPDATES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(300)
}

#[tokio::test]
async fn arbitrary_update_data_always_gets_an_answer_and_never_a_crash() {
    fuzz(Check::Answers).await;
}

/// Found by this fuzzing, left to the update-admission work: an update
/// refused with `bad_update` for missing dependencies has had its other
/// parts merged, and Loro keeps the rest pending and applies it when the
/// dependency arrives; neither is relayed, so the other members' replicas
/// miss changes the room has, and a later relayed update fails to import
/// there (`MissingDependencies`).
#[tokio::test]
async fn what_the_server_relays_always_imports_into_a_member() {
    fuzz(Check::Relayed).await;
}

/// What a fuzzing run checks besides one answer per update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    /// The connection and the server live on; a newcomer loads the room.
    Answers,
    /// And every relayed update imports into a member's replica, which
    /// then holds the room's text.
    Relayed,
}

async fn fuzz(check: Check) {
    let cases = cases();
    let server = Server::start(collab_server::Config {
        messages_per_second: 100_000,
        burst: 100_000,
        ..test_config()
    })
    .await;
    let (mut alice, wa) = server.join("fuzz", "alice").await;
    let (mut bob, wb) = server.join("fuzz", "bob").await;
    alice.recv().await;
    let mut rng = StdRng::seed_from_u64(14);

    // Real updates to damage: alice's own edits (new to the room) and a
    // stranger's (another peer, another history).
    let mut doc = replica(&wa);
    let mut stranger = SharedDoc::new();
    let mut real = Vec::new();
    for i in 0..8 {
        doc.splice(0, 0, &format!("edit {i}; ")).unwrap();
        real.push(doc.take_local_update().unwrap());
        stranger.splice(0, 0, &format!("other {i}\n")).unwrap();
        real.push(stranger.take_local_update().unwrap());
    }

    let mut bob_doc = replica(&wb);
    for seq in 0..cases {
        let data = payload(&mut rng, &real);
        alice
            .send(&ClientMsg::Update {
                seq,
                data: Base64Bytes(data.clone()),
            })
            .await;
        let answer = alice
            .next()
            .await
            .unwrap_or_else(|| panic!("case {seq}: the connection closed on {} bytes", data.len()));
        match answer {
            ServerMsg::Ack { seq: s } => assert_eq!(s, seq),
            ServerMsg::Error { code, seq: s, .. } => {
                assert_eq!(s, Some(seq), "case {seq}: {code}");
                assert!(!code.is_fatal(), "case {seq}: {code}");
            }
            other => panic!("case {seq}: {other:?}"),
        }
    }
    // Whatever was relayed imports into bob's replica, in order.
    for (i, m) in bob
        .collect_until_quiet(Duration::from_millis(300))
        .await
        .into_iter()
        .enumerate()
    {
        match m {
            ServerMsg::Update { data, .. } => {
                let imported = bob_doc.import(data.as_slice());
                if check == Check::Relayed {
                    imported.unwrap_or_else(|e| panic!("relayed update {i}: {e}"));
                }
            }
            other => panic!("bob got {other:?}"),
        }
    }
    // The room's document is whole: a newcomer loads it (and it is what
    // bob holds).
    let (_carol, wc) = server.join("fuzz", "carol").await;
    let room_text = replica(&wc).text();
    if check == Check::Relayed {
        assert_eq!(room_text, bob_doc.text());
    }
    alice.ping_chat("alive").await;
    server.stop().await;
}

/// The defect the fuzzing found, reduced: an update refused for a missing
/// dependency is kept pending by the room's Loro document and merged when
/// the dependency arrives, but never relayed; its resend is then "nothing
/// new" (acked, not relayed), so the others never get it.
#[tokio::test]
async fn an_update_refused_for_a_missing_dependency_leaves_no_trace() {
    let server = Server::start(test_config()).await;
    let (mut alice, wa) = server.join("r", "alice").await;
    let (mut bob, wb) = server.join("r", "bob").await;
    alice.recv().await;
    let mut doc = replica(&wa);
    let mut updates = Vec::new();
    for text in ["one ", "two "] {
        doc.splice(0, 0, text).unwrap();
        updates.push(Base64Bytes(doc.take_local_update().unwrap()));
    }
    let send = |seq: u64, i: usize| ClientMsg::Update {
        seq,
        data: updates[i].clone(),
    };
    alice.send(&send(1, 1)).await; // "two" before "one": refused
    assert!(matches!(
        alice.recv().await,
        ServerMsg::Error { seq: Some(1), .. }
    ));
    alice.send(&send(2, 0)).await;
    assert_eq!(alice.recv().await, ServerMsg::Ack { seq: 2 });
    alice.send(&send(3, 1)).await; // now in order: must reach bob
    assert_eq!(alice.recv().await, ServerMsg::Ack { seq: 3 });
    let mut bob_doc = replica(&wb);
    for m in bob.collect_until_quiet(Duration::from_millis(200)).await {
        if let ServerMsg::Update { data, .. } = m {
            bob_doc.import(data.as_slice()).unwrap();
        }
    }
    assert_eq!(bob_doc.text(), doc.text());
    server.stop().await;
}
