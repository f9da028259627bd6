//! Real editing traces (testdata/editing-traces, CC BY 4.0, see FORMAT.md)
//! replayed by live clients through the real server.
//!
//! Timing: `cargo test -p collab-client --release --test it traces:: -- --nocapture`
//! prints how long each trace took.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::io::Read;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use collab_client::Client;
use collab_protocol::ClientMsg;
use common::Server;
use serde::Deserialize;

#[derive(Deserialize)]
struct Patch(usize, usize, String);

#[derive(Deserialize)]
struct Txn {
    #[serde(default)]
    parents: Vec<usize>,
    #[serde(default)]
    agent: usize,
    patches: Vec<Patch>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Trace {
    end_content: String,
    txns: Vec<Txn>,
}

fn load(name: &str) -> Trace {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata/editing-traces")
        .join(name);
    let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut json = String::new();
    flate2::read::GzDecoder::new(file)
        .read_to_string(&mut json)
        .unwrap();
    serde_json::from_str(&json).unwrap()
}

fn big_timeouts(server: &Server, room: &str, user: &str) -> collab_client::ClientBuilder {
    Client::builder(&server.url, room, user)
        .options(Server::options())
        .timeout(Duration::from_secs(300))
}

/// The whole automerge-paper trace (259,778 single-char edits) typed by
/// alice, every edit a local operation, sent as one update per `BATCH`
/// edits with a bounded window of unacked updates; bob follows live.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn automerge_paper_typed_through_the_server() {
    const BATCH: usize = 1000;
    const WINDOW: usize = 8;
    let trace = load("automerge-paper.json.gz");
    let server = Server::start().await;
    let alice = big_timeouts(&server, "paper", "alice")
        .join()
        .await
        .unwrap();
    let bob = big_timeouts(&server, "paper", "bob").join().await.unwrap();
    let started = Instant::now();
    let mut edits = 0usize;
    for chunk in trace.txns.chunks(BATCH) {
        alice.with_replica(|r| {
            for txn in chunk {
                for Patch(pos, del, ins) in &txn.patches {
                    r.edit_local(*pos, *del, ins).unwrap();
                    edits += 1;
                }
            }
            let _ = r.take_changes();
            ((), r.flush().into_iter().collect())
        });
        alice
            .wait_for(|s| s.replica().unacked_seqs().count() <= WINDOW)
            .await
            .unwrap();
    }
    let typed = started.elapsed();
    alice.wait_synced().await.unwrap();
    bob.wait_includes(&alice.version()).await.unwrap();
    let total = started.elapsed();
    assert_eq!(edits, 259_778);
    assert!(alice.text() == trace.end_content, "alice's text differs");
    assert!(bob.text() == trace.end_content, "bob's text differs");
    assert!(
        alice.state().errors().is_empty(),
        "{:?}",
        alice.state().errors()
    );
    println!(
        "automerge-paper: {edits} edits typed in {typed:?}, at bob after {total:?} ({} chars)",
        trace.end_content.chars().count()
    );
    assert!(server.room_text("paper").await == trace.end_content);
    server.stop().await;
}

/// The concurrent friendsforever trace replayed by two live clients at
/// once. Each agent's transaction must apply to that agent's view at its
/// parents: an agent's updates are held back (produced, not sent) and sent
/// through the server exactly when a transaction of the other agent lists
/// them among its parents; the other waits until it has them, and has
/// nothing newer. Both must end at `endContent`, and so must the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn friendsforever_replayed_by_two_clients() {
    let trace = load("friendsforever.json.gz");
    let n = trace.txns.len();
    // Per txn: its agent's index among the agent's txns, and how many txns
    // of each agent its version holds (every agent's history is a chain, so
    // a count names a version).
    let mut own_index = vec![0usize; n];
    let mut counts = [0usize; 2];
    let mut after: Vec<[usize; 2]> = Vec::with_capacity(n);
    let mut need: Vec<[usize; 2]> = Vec::with_capacity(n);
    for (i, t) in trace.txns.iter().enumerate() {
        assert!(t.agent < 2);
        let mut v = [0usize; 2];
        for &p in &t.parents {
            assert!(p < i, "parents come first");
            for (x, c) in v.iter_mut().enumerate() {
                *c = (*c).max(after[p][x]);
            }
        }
        assert_eq!(
            v[t.agent], counts[t.agent],
            "txn {i}: an agent sees all of its own earlier txns"
        );
        need.push(v);
        own_index[i] = counts[t.agent];
        counts[t.agent] += 1;
        v[t.agent] += 1;
        after.push(v);
    }
    // An agent flushes right after each of its txns that the other agent
    // will need exactly up to.
    let mut flush_after: [Vec<bool>; 2] = [vec![false; counts[0]], vec![false; counts[1]]];
    for (i, t) in trace.txns.iter().enumerate() {
        let other = 1 - t.agent;
        let k = need[i][other];
        if k > 0 {
            flush_after[other][k - 1] = true;
        }
    }
    for f in &mut flush_after {
        if let Some(last) = f.last_mut() {
            *last = true;
        }
    }

    // The pacing below is ours, not the rate limit's concern.
    let server = Server::start_with(collab_server::Config {
        messages_per_second: 1_000_000,
        burst: 1_000_000,
        ..collab_server::Config::default()
    })
    .await;
    let agents = [
        big_timeouts(&server, "friends", "agent0")
            .mirror(true)
            .join()
            .await
            .unwrap(),
        big_timeouts(&server, "friends", "agent1")
            .mirror(true)
            .join()
            .await
            .unwrap(),
    ];
    let started = Instant::now();
    // Held updates per agent: (own txns covered, the update, version after).
    let mut held: [Vec<(usize, ClientMsg, Vec<u8>)>; 2] = [Vec::new(), Vec::new()];
    let mut delivered = [0usize; 2]; // txns of the other agent each one has
    let mut sent_msgs = 0usize;
    for (i, t) in trace.txns.iter().enumerate() {
        let a = t.agent;
        let b = 1 - a;
        let k = need[i][b];
        if delivered[a] < k {
            // Send b's held updates up to exactly k, then wait until a has
            // them. a cannot have more: nothing later of b was sent.
            let upto = held[b]
                .iter()
                .position(|(c, _, _)| *c == k)
                .expect("a flush point");
            let mut version = Vec::new();
            for (_, msg, v) in held[b].drain(..=upto) {
                assert!(agents[b].send_raw(msg));
                sent_msgs += 1;
                version = v;
            }
            agents[a].wait_includes(&version).await.unwrap();
            delivered[a] = k;
        }
        let idx = own_index[i];
        let flush = flush_after[a][idx];
        let out = agents[a].with_replica(|r| {
            for Patch(pos, del, ins) in &t.patches {
                r.edit_local(*pos, *del, ins)
                    .unwrap_or_else(|e| panic!("txn {i} (agent {a}): {e}"));
            }
            let out = if flush {
                let msg = r.flush().expect("live, with edits");
                Some((idx + 1, msg, r.doc().version()))
            } else {
                None
            };
            (out, Vec::new())
        });
        held[a].extend(out);
    }
    for (agent, h) in agents.iter().zip(&mut held) {
        for (_, msg, _) in h.drain(..) {
            assert!(agent.send_raw(msg));
            sent_msgs += 1;
        }
    }
    for c in &agents {
        c.wait_synced().await.unwrap();
    }
    let v0 = agents[0].version();
    let v1 = agents[1].version();
    agents[0].wait_includes(&v1).await.unwrap();
    agents[1].wait_includes(&v0).await.unwrap();
    println!(
        "friendsforever: {n} txns, {sent_msgs} updates through the server in {:?}",
        started.elapsed()
    );
    for (i, c) in agents.iter().enumerate() {
        let st = c.state();
        assert!(st.text() == trace.end_content, "agent {i}'s text differs");
        assert!(
            st.mirror().as_deref() == Some(trace.end_content.as_str()),
            "agent {i}'s delta mirror differs"
        );
        assert!(st.errors().is_empty(), "{:?}", st.errors());
    }
    assert!(server.room_text("friends").await == trace.end_content);
    server.stop().await;
}

/// The same trace into a bare `Replica` (no network), as a baseline for
/// the figure above: what the local-first path costs per keystroke.
#[test]
fn automerge_paper_into_a_bare_replica() {
    let trace = load("automerge-paper.json.gz");
    let mut r = collab_client::Replica::new();
    let started = Instant::now();
    for txn in &trace.txns {
        for Patch(pos, del, ins) in &txn.patches {
            r.edit_local(*pos, *del, ins).unwrap();
        }
    }
    let elapsed = started.elapsed();
    let changes = r.take_changes().len();
    assert!(r.text() == trace.end_content);
    assert_eq!(changes, 259_778, "one delta per edit for the editor");
    println!(
        "automerge-paper into a bare Replica: {:?} ({:.1} µs/edit)",
        elapsed,
        elapsed.as_secs_f64() * 1e6 / 259_778.0
    );
}
