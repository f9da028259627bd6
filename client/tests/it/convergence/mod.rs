//! Randomized convergence through a real server: 3 to 5 members make random
//! inserts, deletes, replaces and undos (multi-byte text, emoji, ZWJ
//! sequences, CRLF) with random delays, drops and reconnects with offline
//! edits, and a newcomer joins in the middle. Some schedules add:
//!
//! - a forging member ([`forger`]): its updates under other members' (and
//!   the seed's) peer ids must be refused (`bad_update`) and never reach
//!   anyone's text, and nobody honest ever sees `bad_update`. It stops
//!   forging at a server restart: after one, the ids the old server gave
//!   out belong to nobody and are taken as history from anyone (see
//!   `refusals::after_a_restart_an_old_peer_id_extended_by_another_splits_nothing`);
//! - a tight rate limit, so honest members' updates are dropped
//!   (`rate_limited`) and resent by the replica's own logic;
//! - server restarts (memory only, same address): the room is gone, a
//!   newcomer seeds it from the file again while the members come back with
//!   their history; the file's text must never be doubled. Over three
//!   nodes a restart stops one node, or kills it (no shutdown, nothing
//!   drained or released): the room lives on in Redis and on the others.
//!
//! When everything has settled (acks and versions, never sleeps) every
//! member, every member's delta-fed mirror, a late newcomer and the server
//! hold the same text, and every edit acked is in it exactly once (the
//! markers of [`edits`]).
//!
//! Reproducible: each schedule's plan and edit scripts come from its seed
//! (the network interleaving is real and varies). A failure prints the
//! seed (and, when a member lacks another's version, every member's
//! version, errors and divergence; `COLLAB_LOG=<file>` writes the servers'
//! log there, each line naming its room `s<seed>`); replay it with `COLLAB_SEED=<seed> cargo test -p collab-client
//! --test it convergence::`. CI runs 1,000 schedules; the long run (10,000):
//! `COLLAB_SCHEDULES=10000 cargo test -p collab-client --release --test it
//! convergence:: -- --ignored --nocapture`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod edits;
mod forger;
mod workspace;

use crate::common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use collab_client::{Client, ClientError, ClientEvent};
use collab_protocol::{ErrorCode, LeftReason};
use common::{Down, Server};
use edits::Author;
use forger::{Forgeries, Forging};
use futures::StreamExt;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

/// How much the server lets each connection send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Limit {
    /// The defaults: nobody honest is ever dropped.
    Roomy,
    /// Low enough that a burst of typing is dropped and resent.
    Tight,
}

/// What one schedule does besides random editing.
#[derive(Debug)]
struct Plan {
    members: usize,
    forger: bool,
    limit: Limit,
    restarts: u32,
    /// The file the first member seeds the room from (and a newcomer again
    /// after each restart).
    file: Option<String>,
}

impl Plan {
    fn new(rng: &mut StdRng, seed: u64) -> Self {
        let restarts = match rng.random_range(0..10) {
            0..=5 => 0,
            6..=8 => 1,
            _ => 2,
        };
        Plan {
            members: rng.random_range(3..=5),
            forger: rng.random_bool(0.4),
            limit: if rng.random_bool(0.3) {
                Limit::Tight
            } else {
                Limit::Roomy
            },
            restarts,
            file: rng
                .random_bool(if restarts > 0 { 0.8 } else { 0.5 })
                .then(|| format!("seed text 😀\r\n{seed}\n")),
        }
    }

    fn config(&self) -> collab_server::Config {
        let mut config = collab_server::Config {
            // A small frame limit, so that pastes and offline sessions are
            // cut into parts.
            max_frame_bytes: 4096,
            shutdown_grace: Duration::from_millis(100),
            ..collab_server::Config::default()
        };
        if self.limit == Limit::Tight {
            config.messages_per_second = 100;
            config.burst = 4;
        }
        config
    }
}

/// What a schedule exercised, summed over the run to show it did.
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    forged: u64,
    refused: u64,
    forged_acked: u64,
    /// Forgeries the rate limit dropped (they were never judged).
    forged_dropped: u64,
    rate_limited: u64,
    restarts: u64,
    /// Restarts that killed a node (several nodes only).
    kills: u64,
    reseeds: u64,
    /// Seeds the server applied (more than one in a schedule: the file
    /// seeded again into a restarted, empty room).
    seeds_applied: u64,
}

impl std::ops::AddAssign for Tally {
    fn add_assign(&mut self, o: Tally) {
        self.forged += o.forged;
        self.refused += o.refused;
        self.forged_acked += o.forged_acked;
        self.forged_dropped += o.forged_dropped;
        self.rate_limited += o.rate_limited;
        self.restarts += o.restarts;
        self.kills += o.kills;
        self.reseeds += o.reseeds;
        self.seeds_applied += o.seeds_applied;
    }
}

fn member(url: &str, room: &str, name: &str) -> collab_client::ClientBuilder {
    Client::builder(url, room, name)
        .options(Server::options())
        .timeout(Duration::from_secs(20))
        // A resend the rate limit dropped again waits for the next ack or
        // this stall timer (2 s by default): short, to keep schedules short.
        .resend_after(Duration::from_millis(200))
        .mirror(true)
}

/// A member's random script: edits, drops, offline edits, presence.
/// With `forge`, it forges now and then under the peer id of one of them,
/// until `restarted`.
///
/// Not after a restart: the new server owns no peer id given out before,
/// and takes new changes under them from anyone as history, by decision
/// (docs/protocol.md, "Peer ids"; pinned by
/// `refusals::after_a_restart_an_old_peer_id_extended_by_another_splits_nothing`).
async fn script(
    c: &Client,
    author: &mut Author,
    seed: u64,
    forge: Option<Forging<'_>>,
) -> Result<(), ClientError> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut online = true;
    let mut forge = forge;
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
            3 => {
                let ms = rng.random_range(0..3);
                tokio::time::sleep(Duration::from_millis(ms)).await;
            }
            4 => {
                let len = c.state().replica().doc().len_chars();
                let at = rng.random_range(0..=len);
                c.presence(at, rng.random_bool(0.5).then_some(len - at));
            }
            5..=8
                if online
                    && forge
                        .as_ref()
                        .is_some_and(|f| !f.stop.load(Ordering::SeqCst)) =>
            {
                if let Some(f) = forge.as_mut() {
                    f.forge(c, &mut rng);
                }
            }
            _ => author.edit(c, &mut rng),
        }
    }
    if !online {
        c.reconnect();
    }
    Ok(())
}

/// How many changes of the document's history insert exactly `file`: a
/// seed applied twice (not merged) would make two.
fn seed_copies(c: &Client, file: &str) -> usize {
    use loro::json::{JsonOpContent, TextOp};
    let snapshot = c.state().replica().doc().snapshot().unwrap();
    let doc = loro::LoroDoc::new();
    doc.import(&snapshot).unwrap();
    let json = doc
        .export_json_updates(&loro::VersionVector::default(), &doc.oplog_vv())
        .unwrap();
    json.changes
        .iter()
        .flat_map(|ch| &ch.ops)
        .filter(|op| matches!(&op.content, JsonOpContent::Text(TextOp::Insert { text, .. }) if text == file))
        .count()
}

/// Each client's version (peer: counter), member id, welcomes, errors
/// and whether it believes it diverged: what a failed settle prints, so
/// that the missing changes can be told apart from a refusal.
fn describe(clients: &[Client], names: &[String]) -> String {
    let mut out = String::new();
    for (c, name) in clients.iter().zip(names) {
        let st = c.state();
        let r = st.replica();
        let vv = loro::VersionVector::decode(&r.doc().version()).unwrap_or_default();
        let mut vv: Vec<(u64, i32)> = vv.iter().map(|(p, n)| (*p, *n)).collect();
        vv.sort_unstable();
        let errors: Vec<String> = st
            .errors()
            .iter()
            .map(|(code, seq)| format!("{code}/{seq:?}"))
            .collect();
        out.push_str(&format!(
            "  {name}: id {:?} peer {} welcomes {} diverged {} synced {} errors {errors:?}\n    version {vv:?}\n",
            r.you().map(|m| m.id),
            r.doc().peer_id(),
            r.welcomes(),
            r.diverged(),
            r.is_synced(),
        ));
    }
    out
}

/// Where a schedule runs: one server, or three nodes sharing the room
/// through Redis behind a balancer (a member lands on any of them, and on
/// another one when it reconnects).
#[allow(clippy::large_enum_variant)] // one per schedule
enum Backend {
    One(Server, collab_server::Config),
    Nodes(common::Nodes),
}

impl Backend {
    async fn start(nodes: usize, config: collab_server::Config) -> Backend {
        match nodes {
            0 | 1 => Backend::One(Server::start_with(config.clone()).await, config),
            n => Backend::Nodes(common::Nodes::start(n, config).await),
        }
    }

    fn url(&self) -> String {
        match self {
            Backend::One(s, _) => s.url.clone(),
            Backend::Nodes(n) => n.url.clone(),
        }
    }

    /// One server restarts in memory (the room is gone); one node of
    /// several stops, or is killed, and starts again (the room lives on in
    /// Redis and on the other nodes, where its members reconnect).
    async fn restart(self, k: usize, how: Down) -> Backend {
        match self {
            Backend::One(s, config) => {
                let url = s.url.clone();
                s.stop().await;
                Backend::One(Server::start_on_with(&url, config.clone()).await, config)
            }
            Backend::Nodes(mut n) => {
                n.restart(k, how).await;
                Backend::Nodes(n)
            }
        }
    }

    async fn room_text(&self, room: &str) -> String {
        match self {
            Backend::One(s, _) => s.room_text(room).await,
            Backend::Nodes(n) => n.room_text(0, room).await,
        }
    }

    async fn stop(self) {
        match self {
            Backend::One(s, _) => s.stop().await,
            Backend::Nodes(n) => n.stop().await,
        }
    }
}

async fn run_schedule(seed: u64, nodes: usize) -> Result<Tally, String> {
    let mut rng = StdRng::seed_from_u64(seed);
    let plan = Plan::new(&mut rng, seed);
    let config = plan.config();
    let server = Backend::start(nodes, config.clone()).await;
    let url = server.url();
    let room = format!("s{seed}");
    let mut clients = Vec::new();
    for i in 0..plan.members {
        let mut b = member(&url, &room, &format!("u{i}"));
        if i == 0
            && let Some(file) = &plan.file
        {
            b = b.seed(file.clone());
        }
        clients.push(b.join().await.map_err(|e| format!("join u{i}: {e}"))?);
    }
    let forger = match plan.forger {
        true => Some(
            member(&url, &room, "mallory")
                .join()
                .await
                .map_err(|e| format!("join mallory: {e}"))?,
        ),
        false => None,
    };
    let mut authors: Vec<Author> = (0..plan.members)
        .map(|i| Author::new(&format!("u{i}")))
        .collect();
    let steps: Vec<u64> = (0..plan.members).map(|_| rng.random()).collect();
    // Every member runs its own random script concurrently.
    let scripts = clients
        .iter()
        .zip(authors.iter_mut())
        .zip(steps)
        .map(|((c, a), s)| script(c, a, s, None));
    let mut forgeries = Forgeries::default();
    let restarted = AtomicBool::new(false);
    // Set when a node was killed (several nodes only).
    let killed = AtomicBool::new(false);
    let mut forger_author = Author::new("m");
    let forger_seed: u64 = rng.random();
    let forging = async {
        match &forger {
            Some(f) => {
                script(
                    f,
                    &mut forger_author,
                    forger_seed,
                    Some(Forging {
                        victims: &clients,
                        file: plan.file.as_deref(),
                        forgeries: &mut forgeries,
                        stop: &restarted,
                    }),
                )
                .await
            }
            None => Ok(()),
        }
    };
    // Sometimes a newcomer joins in the middle of it all and edits too.
    let late_seed: Option<u64> = rng.random_bool(0.5).then(|| rng.random());
    let mut late_author = Author::new("late");
    let late = async {
        let Some(s) = late_seed else {
            return Ok(None);
        };
        let mut rng = StdRng::seed_from_u64(s);
        for _ in 0..rng.random_range(0..6) {
            tokio::task::yield_now().await;
        }
        let c = join_after_a_kill(&url, &room, "late", &killed).await?;
        for _ in 0..rng.random_range(1..6) {
            late_author.edit(&c, &mut rng);
        }
        Ok::<Option<Client>, ClientError>(Some(c))
    };
    // Restarts: the room is lost; a newcomer seeds it from the file again
    // (sometimes before the members are back, sometimes after).
    let chaos_seed: u64 = rng.random();
    // Over several nodes, half the restarts kill the node (SIGKILL-like:
    // its members' connections drop, nothing of it runs any more). Drawn
    // apart, so the rest of a seed's schedule is what it was.
    let mut downs = StdRng::seed_from_u64(chaos_seed.rotate_left(17));
    let downs: Vec<Down> = (0..plan.restarts)
        .map(|_| match nodes > 1 && downs.random_bool(0.5) {
            true => Down::Kill,
            false => Down::Stop,
        })
        .collect();
    let chaos = async {
        let mut rng = StdRng::seed_from_u64(chaos_seed);
        let mut server = server;
        let mut reseeders = Vec::new();
        for (k, &how) in downs.iter().enumerate() {
            for _ in 0..rng.random_range(0..30) {
                match rng.random_range(0..4) {
                    0 => tokio::time::sleep(Duration::from_millis(1)).await,
                    _ => tokio::task::yield_now().await,
                }
            }
            restarted.store(true, Ordering::SeqCst);
            killed.fetch_or(how == Down::Kill, Ordering::SeqCst);
            server = server.restart(k, how).await;
            if let Some(file) = &plan.file {
                if rng.random_bool(0.3) {
                    let ms = rng.random_range(0..20);
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                }
                let c = member(&url, &room, &format!("r{k}"))
                    .seed(file.clone())
                    .join()
                    .await?;
                reseeders.push(c);
            }
        }
        Ok::<_, ClientError>((server, reseeders))
    };
    let ((), (), late, (server, reseeders)) = futures::future::try_join4(
        async { futures::future::try_join_all(scripts).await.map(|_| ()) },
        forging,
        late,
        chaos,
    )
    .await
    .map_err(|e| format!("script: {e}"))?;
    clients.extend(late);
    let reseeds = reseeders.len() as u64;
    clients.extend(reseeders);
    clients.extend(forger);
    let names: Vec<String> = (0..clients.len())
        .map(|i| match i {
            i if i < plan.members => format!("u{i}"),
            i if plan.forger && i == clients.len() - 1 => "mallory".into(),
            i => format!("newcomer {i}"),
        })
        .collect();

    // Settle: every client welcomed with every edit acked, then every
    // client has every other's version.
    for (c, name) in clients.iter().zip(&names) {
        c.wait_synced()
            .await
            .map_err(|e| format!("{name} never synced: {e}"))?;
    }
    let versions: Vec<Vec<u8>> = clients.iter().map(Client::version).collect();
    for (c, name) in clients.iter().zip(&names) {
        for (v, of) in versions.iter().zip(&names) {
            c.wait_includes(v).await.map_err(|e| {
                let texts: Vec<String> = clients.iter().map(Client::text).collect();
                let states = describe(&clients, &names);
                format!("{name} lacks {of}'s version: {e}\n  texts: {texts:#?}\n{states}")
            })?;
        }
    }
    if let Some(f) = clients.last().filter(|_| plan.forger) {
        forgeries
            .wait_answered(f)
            .await
            .map_err(|e| format!("mallory's forgeries unanswered: {e}"))?;
    }
    let texts: Vec<String> = clients.iter().map(Client::text).collect();
    let mut tally = Tally {
        restarts: u64::from(plan.restarts),
        kills: downs.iter().filter(|d| **d == Down::Kill).count() as u64,
        reseeds,
        ..Tally::default()
    };
    for (i, (c, name)) in clients.iter().zip(&names).enumerate() {
        let st = c.state();
        if let Some(e) = st.mirror_error() {
            return Err(format!("{name}'s mirror broke: {e}"));
        }
        if st.mirror().as_deref() != Some(texts[i].as_str()) {
            return Err(format!(
                "{name}'s delta mirror {:?} differs from its text {:?}",
                st.mirror(),
                texts[i]
            ));
        }
        let mallory = name == "mallory";
        let forged = |seq: &Option<u64>| seq.is_some_and(|s| forgeries.seqs.contains(&s));
        for (code, seq) in st.errors() {
            match code {
                ErrorCode::RateLimited if plan.limit == Limit::Tight => {
                    tally.rate_limited += 1;
                    tally.forged_dropped += u64::from(mallory && forged(&seq));
                }
                ErrorCode::BadUpdate if mallory && forged(&seq) => tally.refused += 1,
                _ => {
                    let said = st.events().find_map(|e| match e {
                        ClientEvent::Error {
                            message, seq: s, ..
                        } if *s == seq => Some(message.clone()),
                        _ => None,
                    });
                    return Err(format!("{name} got error {code} (seq {seq:?}): {said:?}"));
                }
            }
        }
        // A forgery under a member's id is refused even when the room has
        // every id it names (honest resends carry only their author's ids).
        // Under the seed's id, one made only of seed ids the room has is
        // acked and changes nothing: members back from a restart carry the
        // seed while the room may be seeded again (docs/protocol.md, "Peer
        // ids"). Forged text that got *in* fails below either way.
        for seq in st.acks().filter(|s| mallory && forgeries.seqs.contains(s)) {
            // On nodes sharing the room, a forgery made only of ids the
            // node has (a `reuse` of the victim's first ids with other
            // content) is let through as the no-op it is: members back from
            // another node bring what they saw there (docs/protocol.md,
            // "Peer ids").
            if !forgeries.under_seed.contains(&seq) && nodes < 2 {
                return Err(format!("mallory's forged update {seq} was acked"));
            }
            tally.forged_acked += 1;
        }
        // Nobody is removed: not for flooding (an honest client answering
        // each `rate_limited` with a resend at once did, and one resending
        // a cut update from its first part every stall did: about one
        // schedule in 5,000 under the tight limit), not as a slow consumer.
        let removed = |e: &&ClientEvent| {
            matches!(
                e,
                ClientEvent::MemberLeft {
                    reason: LeftReason::Removed,
                    ..
                }
            )
        };
        if let Some(e) = st.events().find(removed) {
            return Err(format!("{name} saw a member removed: {e:?}"));
        }
        tally.seeds_applied += st
            .events()
            .filter(|e| matches!(e, ClientEvent::Seeded { applied: true }))
            .count() as u64;
        if st.replica().diverged() {
            return Err(format!("{name} believes it diverged"));
        }
    }
    tally.forged = forgeries.seqs.len() as u64;
    if texts.iter().any(|t| *t != texts[0]) {
        return Err(format!("clients differ: {texts:#?}"));
    }
    if texts[0].contains("EVIL") {
        return Err(format!("forged text got in: {:?}", texts[0]));
    }
    let on_server = server.room_text(&room).await;
    if on_server != texts[0] {
        return Err(format!("server has {on_server:?}, clients {:?}", texts[0]));
    }
    for a in authors.iter().chain([&late_author, &forger_author]) {
        a.check(&texts[0])?;
    }
    if let Some(file) = &plan.file {
        let copies = seed_copies(&clients[0], file);
        if copies > 1 {
            return Err(format!("the file was seeded {copies} times: {plan:?}"));
        }
    }
    for c in clients {
        c.close().await.map_err(|e| format!("close: {e}"))?;
    }
    server.stop().await;
    Ok(tally)
}

/// With `COLLAB_LOG=<file>`, the servers' warnings (and `RUST_LOG`'s
/// choice) go to that file, each naming its room (`s<seed>`): what a node
/// skipped or refused in a failed schedule.
fn log_to_file() {
    let Some(path) = std::env::var_os("COLLAB_LOG") else {
        return;
    };
    let file = std::fs::File::create(path).unwrap();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("collab_server=info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(std::sync::Mutex::new(file))
        .try_init();
}

/// A newcomer's join. When a node was killed, its claim may have been
/// made on that node with the welcome never sent: the name is then held by
/// its own ghost until the entry expires (the member ttl, 1 s here), and
/// the join is refused `name_taken`, as documented (docs/scale-out.md,
/// "When a node stops"); the user joins again after the ttl, as here
/// (bounded: three tries).
async fn join_after_a_kill(
    url: &str,
    room: &str,
    name: &str,
    killed: &AtomicBool,
) -> Result<Client, ClientError> {
    let mut tries = 0;
    loop {
        match member(url, room, name).join().await {
            Err(ClientError::Refused(e))
                if e.code == ErrorCode::NameTaken && killed.load(Ordering::SeqCst) && tries < 3 =>
            {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(1200)).await;
            }
            r => return r,
        }
    }
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

async fn run_many(default_schedules: u64) {
    run_many_on(default_schedules, 1).await;
}

async fn run_many_on(default_schedules: u64, nodes: usize) {
    let (first, count) = match env_u64("COLLAB_SEED") {
        Some(seed) => (seed, 1),
        None => {
            let base =
                env_u64("COLLAB_BASE_SEED").unwrap_or_else(|| u64::from(rand::random::<u32>()));
            let count = env_u64("COLLAB_SCHEDULES").unwrap_or(default_schedules);
            (base, count)
        }
    };
    log_to_file();
    println!(
        "convergence: {count} schedules, seeds {first}..{} (replay one with COLLAB_SEED=<seed>)",
        first + count
    );
    let started = Instant::now();
    let mut failures = Vec::new();
    let mut tally = Tally::default();
    let mut results = futures::stream::iter(first..first + count)
        .map(|seed| async move {
            let r = tokio::time::timeout(Duration::from_secs(60), run_schedule(seed, nodes))
                .await
                .unwrap_or_else(|_| Err("schedule timed out".into()));
            (seed, r)
        })
        .buffer_unordered(8);
    while let Some((seed, r)) = results.next().await {
        match r {
            Ok(t) => tally += t,
            Err(e) => {
                let plan = Plan::new(&mut StdRng::seed_from_u64(seed), seed);
                eprintln!("schedule COLLAB_SEED={seed} failed: {e}\n  {plan:?}");
                failures.push(seed);
            }
        }
    }
    drop(results);
    println!(
        "convergence: {count} schedules in {:?}: {tally:?}",
        started.elapsed()
    );
    assert!(
        failures.is_empty(),
        "failed schedules (replay with COLLAB_SEED=<seed>): {failures:?}"
    );
    if count >= 100 {
        // The run exercised what it claims to.
        assert!(tally.forged > 0 && tally.refused > 0, "{tally:?}");
        assert!(
            tally.rate_limited > 0 && tally.restarts > 0 && tally.reseeds > 0,
            "{tally:?}"
        );
        assert!(nodes < 2 || tally.kills > 0, "{tally:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_schedules_converge() {
    run_many(1000).await;
}

/// The same schedules with the room on three nodes sharing it through a
/// real redis-server (issue 18): members spread over the nodes and move
/// between them as they reconnect, a node stops, or is killed (half the
/// restarts: its runtime is shut down where it stands, as SIGKILL ends a
/// process, see `common::Nodes`), and comes back mid-run. Every acked edit
/// must survive either.
///
/// CI runs 30 schedules (a few seconds); a longer run:
/// `COLLAB_NODE_SCHEDULES=1000 cargo test -p collab-client --test it
/// convergence::random_schedules_converge_across_nodes -- --nocapture`.
/// None failed in 42,000 (21 release runs of 2,000, 10,567 kills;
/// 2026-12-06, docs/scale-out.md, "What is left") once a read of the log
/// made for a closed room instance was dropped; it was 1 in 16,000
/// before, 1 in 8,000 before a node read on for changes a member brought from
/// another node (and 3 in 2,000 once kills came in), 2 in 1,000 before a
/// node's stop released every name it held, and 3 in 100 before a member
/// back on its node kept its session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_schedules_converge_across_nodes() {
    let schedules = env_u64("COLLAB_NODE_SCHEDULES").unwrap_or(30);
    run_many_on(schedules, 3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "long run: COLLAB_SCHEDULES=10000 cargo test -p collab-client --release --test it convergence:: -- --ignored --nocapture"]
async fn random_schedules_converge_long() {
    run_many(10_000).await;
}
