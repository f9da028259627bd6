//! Randomized convergence of workspace rooms through a real server: 3 to 5
//! members, one of whom shares a folder, open, close and edit files while
//! they create, rename, move and delete files and folders (also the very
//! files others are typing in), dropping and reconnecting with offline
//! edits and tree operations. When everything has settled (acks, never
//! sleeps), every member and a late newcomer hold the same tree, every open
//! file holds the newcomer's text of it, and every edit is in its file
//! exactly once: renames, moves and deletes never lose text.
//!
//! Reproducible plans (each member's script comes from the schedule's
//! seed; the network interleaving is real). A failure prints the seed;
//! replay it with `COLLAB_SEED=<seed> cargo test -p collab-client --test it
//! convergence::workspace`. `COLLAB_WS_SCHEDULES` sets how many run (8 by
//! default). The sharer never drops: see `script`.

use std::collections::BTreeSet;
use std::time::Duration;

use collab_client::{ClientError, ClientEvent, WorkspaceClient, WsEvent};
use collab_doc::tree::{Kind, NodeId};
use collab_protocol::ErrorCode;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use crate::common::Server;
use crate::workspace::{FOLDER, join, share};

/// One edit: `marker` typed into file `file`.
type Typed = (NodeId, String);

/// A marker goes only where it cuts no other marker: at the start, the
/// end, or right after another marker's `]`.
fn marker_spot(text: &str, rng: &mut StdRng) -> usize {
    let mut spots = vec![0, text.chars().count()];
    spots.extend(
        text.chars()
            .enumerate()
            .filter(|(_, c)| *c == ']')
            .map(|(i, _)| i + 1),
    );
    spots[rng.random_range(0..spots.len())]
}

/// A random file or folder among those shown (`Some(kind)`: of that kind).
fn pick(c: &WorkspaceClient, rng: &mut StdRng, kind: Option<Kind>) -> Option<NodeId> {
    let entries: Vec<NodeId> = c
        .state()
        .entries()
        .into_iter()
        .filter(|e| kind.is_none_or(|k| e.kind == k))
        .map(|e| e.id)
        .collect();
    (!entries.is_empty()).then(|| entries[rng.random_range(0..entries.len())])
}

/// One member's random script; returns what it typed.
async fn script(
    c: &WorkspaceClient,
    me: usize,
    seed: u64,
    steps: usize,
) -> Result<Vec<Typed>, ClientError> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut typed = Vec::new();
    let mut online = true;
    for step in 0..steps {
        let open: Vec<NodeId> = c.state().open_files().map(|(id, _)| id).collect();
        match rng.random_range(0..100) {
            0..=39 if !open.is_empty() => {
                let id = open[rng.random_range(0..open.len())];
                let text = c.state().file(id).map(|r| r.text()).unwrap_or_default();
                let at = marker_spot(&text, &mut rng);
                let marker = format!("[m{me}.{step}]");
                if c.run(|w| w.edit(id, at, 0, &marker)).is_ok() {
                    typed.push((id, marker));
                }
            }
            0..=49 => {
                if let Some(id) = pick(c, &mut rng, Some(Kind::File)) {
                    c.run(|w| Ok::<_, ()>(w.open(id))).ok();
                }
            }
            50..=54 => {
                // Closing drops unsent edits: only a file with none.
                if let Some(&id) = open.get(rng.random_range(0..open.len().max(1))) {
                    let idle = c.state().file(id).is_some_and(|r| r.unsent_edits() == 0);
                    if idle {
                        c.run(|w| Ok::<_, ()>(w.close(id))).ok();
                    }
                }
            }
            55..=64 => {
                if let Some(id) = pick(c, &mut rng, None) {
                    let name = format!("r{me}.{step}");
                    let _ = c.run(|w| w.rename(id, &name));
                }
            }
            65..=71 => {
                if let Some(id) = pick(c, &mut rng, None) {
                    let to = if rng.random_bool(0.3) {
                        None
                    } else {
                        pick(c, &mut rng, Some(Kind::Dir))
                    };
                    let _ = c.run(|w| w.move_to(id, to));
                }
            }
            72..=77 => {
                // Often a file someone has open (the seeder has them all).
                if let Some(id) = pick(c, &mut rng, None) {
                    let _ = c.act(|w| w.delete(id));
                }
            }
            78..=84 => {
                let parent = pick(c, &mut rng, Some(Kind::Dir)).filter(|_| rng.random_bool(0.6));
                let kind = if rng.random_bool(0.7) {
                    Kind::File
                } else {
                    Kind::Dir
                };
                let name = format!("c{me}.{step}");
                let _ = c.act(|w| w.create(parent, &name, kind));
            }
            // The sharer stays: a memory-only server drops a room nobody
            // is in, and bringing a workspace back into an emptied room is
            // not done yet (docs/workspace.md, status).
            85..=89 if me == 0 => tokio::task::yield_now().await,
            85..=89 if online => {
                online = false;
                c.disconnect();
            }
            85..=89 => {
                online = true;
                c.reconnect();
            }
            90..=94 => tokio::task::yield_now().await,
            _ => {
                let ms = rng.random_range(0..3);
                tokio::time::sleep(Duration::from_millis(ms)).await;
            }
        }
    }
    if !online {
        c.reconnect();
    }
    Ok(typed)
}

async fn schedule(seed: u64) -> Result<(), String> {
    let mut rng = StdRng::seed_from_u64(seed);
    let server = Server::start().await;
    let url = server.url.clone();
    let n = rng.random_range(3..=5);
    let mut members = vec![share(&url, "ws", "m0", &FOLDER).await];
    for i in 1..n {
        members.push(join(&url, "ws", &format!("m{i}")).await);
    }
    let steps = rng.random_range(20..=60);
    let scripts = members
        .iter()
        .enumerate()
        .map(|(i, c)| script(c, i, seed ^ (i as u64 + 1).wrapping_mul(0x9e37_79b9), steps));
    let typed: Vec<Typed> = futures::future::try_join_all(scripts)
        .await
        .map_err(|e| format!("a script failed: {e}"))?
        .into_iter()
        .flatten()
        .collect();
    for c in &members {
        c.wait_for(|s| *s.link() == collab_client::Link::Live)
            .await
            .map_err(|e| e.to_string())?;
        c.wait_synced().await.map_err(|e| e.to_string())?;
    }
    // The newcomer: the room as the server has it.
    let late = join(&url, "ws", "late").await;
    let entries = late.state().entries();
    for c in &members {
        c.wait_for(|s| s.entries() == entries)
            .await
            .map_err(|e| format!("{}'s tree differs: {e}", c.user()))?;
    }
    // Every file typed in (shown or deleted) and every file open anywhere.
    let files: BTreeSet<NodeId> = typed
        .iter()
        .map(|(id, _)| *id)
        .chain(
            members
                .iter()
                .flat_map(|c| c.state().open_files().map(|(id, _)| id).collect::<Vec<_>>()),
        )
        .collect();
    for &id in &files {
        late.run(|w| Ok::<_, ()>(w.open(id))).ok();
    }
    late.wait_for(|s| files.iter().all(|id| s.is_loaded(*id)))
        .await
        .map_err(|e| e.to_string())?;
    for &id in &files {
        let want = late.state().file(id).map(|r| r.text()).unwrap_or_default();
        for (_, marker) in typed.iter().filter(|(f, _)| *f == id) {
            let times = want.matches(marker.as_str()).count();
            if times != 1 {
                return Err(format!("{marker} is {times} times in {id}: {want:?}"));
            }
        }
        for c in &members {
            if c.state().file(id).is_some() {
                c.wait_for(|s| s.file(id).is_none_or(|r| r.text() == want))
                    .await
                    .map_err(|e| format!("{}'s {id} differs: {e}", c.user()))?;
            }
        }
    }
    eprintln!(
        "schedule {seed}: {n} members, {} edits in {} files, {} shown",
        typed.len(),
        files.len(),
        entries.len()
    );
    // Nobody honest was refused anything.
    for c in &members {
        let st = c.state();
        let refused = st.events().find(|e| match e {
            WsEvent::TreeError { .. } => true,
            WsEvent::File {
                event: ClientEvent::Error { code, .. },
                ..
            } => *code != ErrorCode::RateLimited,
            _ => false,
        });
        if let Some(e) = refused {
            return Err(format!("{} was refused: {e:?}", c.user()));
        }
    }
    drop(members);
    drop(late);
    server.stop().await;
    Ok(())
}

#[tokio::test]
async fn random_workspace_schedules_converge() {
    let count: u64 = std::env::var("COLLAB_WS_SCHEDULES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(8);
    let (first, count) = match std::env::var("COLLAB_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        Some(seed) => (seed, 1),
        None => (rand::random::<u64>(), count),
    };
    for i in 0..count {
        let seed = first.wrapping_add(i);
        let run = tokio::time::timeout(Duration::from_secs(120), schedule(seed)).await;
        match run {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("workspace schedule {seed} failed: {e}"),
            Err(_) => panic!("workspace schedule {seed} did not settle in 120 s"),
        }
    }
}
