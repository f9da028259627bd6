//! Randomized convergence through the real server: 3 to 5 clients make
//! random inserts, deletes, replaces and undos (multi-byte text, emoji, ZWJ
//! sequences, CRLF) with random delays, drops and reconnects with offline
//! edits. When everything has settled (acks and versions, never sleeps)
//! every client, every client's delta-fed mirror and the server hold the
//! same text.
//!
//! Reproducible: each schedule's edit script comes from its seed (the
//! network interleaving is real and varies). A failure prints the seed;
//! replay it with `COLLAB_SEED=<seed> cargo test -p collab-client --test
//! convergence`. CI runs 200 schedules; a long run:
//! `COLLAB_SCHEDULES=5000 cargo test -p collab-client --release --test
//! convergence -- --ignored`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::time::{Duration, Instant};

use collab_client::{Client, ClientError};
use common::Server;
use futures::StreamExt;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const PIECES: &[&str] = &[
    "a",
    "b",
    "xyz",
    "é",
    "ß",
    "日本",
    "😀",
    "👩‍👩‍👧",
    "\r\n",
    "\n",
    " ",
    "\t",
    "🇫🇷",
    "e\u{301}",
];

fn random_text(rng: &mut StdRng) -> String {
    if rng.random_ratio(1, 40) {
        // A paste: over the server's (small, see run_many) frame limit now
        // and then, so it goes out in parts.
        let n = rng.random_range(50..=400);
        return (0..n)
            .map(|_| PIECES[rng.random_range(0..PIECES.len())])
            .collect();
    }
    let n = rng.random_range(1..=3);
    (0..n)
        .map(|_| PIECES[rng.random_range(0..PIECES.len())])
        .collect()
}

/// One random local edit, chosen and applied under the client's lock so the
/// positions are valid for the text as it is.
fn random_edit(c: &Client, rng: &mut StdRng) {
    c.with_replica(|r| {
        let len = r.doc().len_chars();
        let choice = rng.random_range(0..10);
        let msg = if choice < 5 || len == 0 {
            let pos = rng.random_range(0..=len);
            r.edit(pos, 0, &random_text(rng)).unwrap()
        } else if choice < 8 {
            let pos = rng.random_range(0..len);
            let del = rng.random_range(1..=(len - pos).min(6));
            r.edit(pos, del, "").unwrap()
        } else if choice < 9 {
            let pos = rng.random_range(0..len);
            let del = rng.random_range(1..=(len - pos).min(3));
            r.edit(pos, del, &random_text(rng)).unwrap()
        } else {
            r.undo()
        };
        ((), msg.into_iter().collect())
    });
}

async fn run_schedule(server: &Server, seed: u64) -> Result<(), String> {
    let mut rng = StdRng::seed_from_u64(seed);
    let room = format!("s{seed}");
    let n = rng.random_range(3..=5);
    let mut clients = Vec::new();
    for i in 0..n {
        let mut b = Client::builder(&server.url, &room, &format!("u{i}"))
            .options(Server::options())
            .timeout(Duration::from_secs(20))
            .mirror(true);
        if i == 0 && rng.random_bool(0.5) {
            b = b.seed(format!("seed text 😀\r\n{seed}\n"));
        }
        clients.push(b.join().await.map_err(|e| format!("join u{i}: {e}"))?);
    }
    let steps: Vec<u64> = (0..n).map(|_| rng.random()).collect();
    // Every client runs its own random script concurrently.
    let scripts = clients.iter().zip(steps).map(|(c, s)| async move {
        let mut rng = StdRng::seed_from_u64(s);
        let mut online = true;
        for _ in 0..rng.random_range(4..=30) {
            match rng.random_range(0..20) {
                0 if online => {
                    online = false;
                    if rng.random_bool(0.5) {
                        c.go_offline().await?;
                    } else {
                        c.disconnect();
                    }
                }
                1 if !online => {
                    online = true;
                    c.reconnect();
                }
                2 => tokio::task::yield_now().await,
                4 => {
                    let len = c.state().replica().doc().len_chars();
                    let at = rng.random_range(0..=len);
                    c.presence(at, rng.random_bool(0.5).then_some(len - at));
                }
                3 => {
                    let ms = rng.random_range(0..3);
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                }
                _ => random_edit(c, &mut rng),
            }
        }
        if !online {
            c.reconnect();
        }
        Ok::<(), ClientError>(())
    });
    // Sometimes a newcomer joins in the middle of it all and edits too.
    let late_seed: Option<u64> = rng.random_bool(0.5).then(|| rng.random());
    let late = async {
        let Some(s) = late_seed else {
            return Ok(None);
        };
        let mut rng = StdRng::seed_from_u64(s);
        for _ in 0..rng.random_range(0..6) {
            tokio::task::yield_now().await;
        }
        let c = Client::builder(&server.url, &room, "late")
            .options(Server::options())
            .timeout(Duration::from_secs(20))
            .mirror(true)
            .join()
            .await?;
        for _ in 0..rng.random_range(1..6) {
            random_edit(&c, &mut rng);
        }
        Ok::<Option<Client>, ClientError>(Some(c))
    };
    let ((), late) = futures::future::try_join(
        async { futures::future::try_join_all(scripts).await.map(|_| ()) },
        late,
    )
    .await
    .map_err(|e| format!("script: {e}"))?;
    clients.extend(late);

    // Settle: every client welcomed with every edit acked, then every
    // client has every other's version.
    for (i, c) in clients.iter().enumerate() {
        c.wait_synced()
            .await
            .map_err(|e| format!("u{i} never synced: {e}"))?;
    }
    let versions: Vec<Vec<u8>> = clients.iter().map(Client::version).collect();
    for (i, c) in clients.iter().enumerate() {
        for v in &versions {
            c.wait_includes(v)
                .await
                .map_err(|e| format!("u{i} lacks a version: {e}"))?;
        }
    }
    let texts: Vec<String> = clients.iter().map(Client::text).collect();
    for (i, c) in clients.iter().enumerate() {
        let st = c.state();
        if let Some(e) = st.mirror_error() {
            return Err(format!("u{i}'s mirror broke: {e}"));
        }
        if st.mirror().as_deref() != Some(texts[i].as_str()) {
            return Err(format!(
                "u{i}'s delta mirror {:?} differs from its text {:?}",
                st.mirror(),
                texts[i]
            ));
        }
        if let Some((code, seq)) = st.errors().first() {
            return Err(format!("u{i} got error {code} (seq {seq:?})"));
        }
    }
    if texts.iter().any(|t| *t != texts[0]) {
        return Err(format!("clients differ: {texts:#?}"));
    }
    let on_server = server.room_text(&room).await;
    if on_server != texts[0] {
        return Err(format!("server has {on_server:?}, clients {:?}", texts[0]));
    }
    for c in clients {
        c.close().await.map_err(|e| format!("close: {e}"))?;
    }
    Ok(())
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

async fn run_many(default_schedules: u64) {
    // A small frame limit, so that pastes and offline sessions are cut
    // into parts.
    let server = Server::start_with(collab_server::Config {
        max_frame_bytes: 4096,
        ..collab_server::Config::default()
    })
    .await;
    let (first, count) = match env_u64("COLLAB_SEED") {
        Some(seed) => (seed, 1),
        None => {
            let base =
                env_u64("COLLAB_BASE_SEED").unwrap_or_else(|| u64::from(rand::random::<u32>()));
            let count = env_u64("COLLAB_SCHEDULES").unwrap_or(default_schedules);
            (base, count)
        }
    };
    println!(
        "convergence: {count} schedules, seeds {first}..{} (replay one with COLLAB_SEED=<seed>)",
        first + count
    );
    let started = Instant::now();
    let mut failures = Vec::new();
    let mut results = futures::stream::iter(first..first + count)
        .map(|seed| {
            let server = &server;
            async move {
                let r = tokio::time::timeout(Duration::from_secs(60), run_schedule(server, seed))
                    .await
                    .unwrap_or_else(|_| Err("schedule timed out".into()));
                (seed, r)
            }
        })
        .buffer_unordered(6);
    while let Some((seed, r)) = results.next().await {
        if let Err(e) = r {
            eprintln!("schedule COLLAB_SEED={seed} failed: {e}");
            failures.push(seed);
        }
    }
    drop(results);
    println!("convergence: {count} schedules in {:?}", started.elapsed());
    server.stop().await;
    assert!(
        failures.is_empty(),
        "failed schedules (replay with COLLAB_SEED=<seed>): {failures:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_schedules_converge() {
    run_many(200).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "long run: COLLAB_SCHEDULES=5000 cargo test -p collab-client --release --test it convergence:: -- --ignored"]
async fn random_schedules_converge_long() {
    run_many(5000).await;
}
