//! Issue 17's targets through the editor's own code path: a newcomer's
//! `collab-tui --room R` (App, Outside, the real workspace connection)
//! joining a workspace of this repository's own source until its tree is
//! shown (listed and drawn on a TestBackend): at most 50 ms; and opening
//! a file of it from the tree until its text is drawn: at most 10 ms.
//! Alice shares the repository (`share::scan` of the workspace root, as
//! `collab-tui --room R DIR` does) into a server in this process with a
//! store, then leaves; eight newcomers join one after the other and
//! stay. The first join (the room loaded) is given alone, then medians of
//! 7: the join, an `open` of a file nobody has open (read from the store)
//! and of the file the newcomer before has open (in memory). `workspace_join`
//! is the same on raw sockets, without the editor. Run:
//! `cargo bench -p collab-bench --bench workspace_editor`
#![allow(clippy::unwrap_used)]

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use collab_doc::tree::Kind;
use collab_tui::action::Action;
use collab_tui::app::{App, FolderStart, Startup};
use collab_tui::keymap::Command;
use collab_tui::net::{self, Net};
use collab_tui::outside::Outside;
use collab_tui::share::{self, ShareLimits};
use common::{Server, TempDir, median};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use tokio::time::timeout_at;

/// Longer than anything here should take.
const WITHIN: Duration = Duration::from_secs(60);

struct Editor {
    app: App,
    out: Outside,
}

impl Editor {
    async fn join(url: &str, user: &str, start: FolderStart) -> Editor {
        let config = Startup::joining(url, "repo", user);
        let mut app = App::new_folder(config, start, Instant::now());
        app.update(Action::Resize {
            width: 120,
            height: 40,
        });
        let mut out = Outside::new(Net::open_workspace(url, None).unwrap());
        net::join(&mut app, &mut out, WITHIN).await.unwrap();
        Editor { app, out }
    }

    /// The event loop's turns until `done` holds.
    async fn until(&mut self, done: impl Fn(&App) -> bool) {
        let deadline = tokio::time::Instant::now() + WITHIN;
        loop {
            self.app.update(Action::Clock(Instant::now()));
            self.app.update(Action::Sync);
            let _ = self.out.carry_out(&mut self.app);
            if done(&self.app) {
                return;
            }
            let next = timeout_at(deadline, async {
                tokio::select! {
                    a = self.out.net.recv() => a,
                    Some(a) = self.out.done.recv() => Some(a),
                }
            })
            .await;
            match next {
                Ok(Some(a)) => self.out.apply(&mut self.app, a),
                _ => panic!("nothing within {WITHIN:?}"),
            }
        }
    }

    /// A frame drawn, as the event loop draws one.
    fn draw(&mut self) -> String {
        self.app.update(Action::Frame);
        let size = self.app.size();
        let mut term = Terminal::new(TestBackend::new(size.width, size.height)).unwrap();
        term.draw(|f| collab_tui::ui::draw(&self.app, f)).unwrap();
        format!("{}", term.backend())
    }

    /// Opens `path` from the tree panel; the time from Enter until its
    /// text is drawn, in ms.
    async fn open(&mut self, path: &str, chars: usize) -> f64 {
        if self.app.focus != collab_tui::app::Focus::Tree {
            self.app.update(Action::Command(Command::Tree));
        }
        let i = self
            .app
            .entries()
            .iter()
            .position(|e| e.path == path)
            .unwrap();
        self.app.update(Action::Command(Command::DocStart));
        for _ in 0..i {
            self.app.update(Action::Command(Command::MoveDown));
        }
        let t0 = Instant::now();
        self.app.update(Action::Command(Command::Submit));
        self.until(|a| a.editor.rope().len_chars() == chars).await;
        self.draw();
        ms(t0)
    }
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

async fn cost_of_joining_and_opening() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let root = root.canonicalize().unwrap();
    let share = share::scan(&root, &ShareLimits::default()).unwrap();
    let n_files = share.files.len();
    let bytes: usize = share.files.iter().map(|f| f.text.len()).sum();
    // Eight files of the middle size, spread over the tree.
    let mut rs: Vec<(&str, usize)> = share
        .files
        .iter()
        .filter(|f| f.path.ends_with(".rs"))
        .map(|f| (f.path.as_str(), f.text.chars().count()))
        .collect();
    rs.sort_by_key(|(p, _)| *p);
    let step = rs.len() / 8;
    let picks: Vec<(String, usize)> = (0..8)
        .map(|i| (rs[i * step].0.to_owned(), rs[i * step].1))
        .collect();

    let dir = TempDir::new("workspace-editor");
    let server = Server::start(collab_server::Config {
        storage: collab_server::Storage::Dir(dir.0.clone()),
        messages_per_second: 1_000_000,
        burst: 1_000_000,
        max_users_per_room: 64,
        ..collab_server::Config::default()
    })
    .await;
    let url = format!("ws://{}", server.addr);
    let mut start = FolderStart {
        dir: Some(root.clone()),
        share: Some(share),
        ..FolderStart::default()
    };
    start.stamp_share();
    let t0 = Instant::now();
    let mut alice = Editor::join(&url, "alice", start).await;
    alice
        .until(|a| a.current_file().is_some() && a.session.is_synced())
        .await;
    let shared = ms(t0);
    let entries = alice.app.entries().len();
    drop(alice);

    let (mut joins, mut cold, mut warm) = (vec![], vec![], vec![]);
    let mut first_join = 0.0;
    let mut members: Vec<Editor> = Vec::new();
    for (i, (path, chars)) in picks.iter().enumerate() {
        let t0 = Instant::now();
        let mut m = Editor::join(&url, &format!("u{i}"), FolderStart::default()).await;
        m.until(|a| a.entries().len() == entries).await;
        assert!(m.draw().contains("Files"), "the tree is drawn");
        let took = ms(t0);
        if i == 0 {
            first_join = took;
        } else {
            joins.push(took);
        }
        cold.push(m.open(path, *chars).await);
        if let Some(before) = i.checked_sub(1) {
            let (path, chars) = &picks[before];
            warm.push(m.open(path, *chars).await);
        }
        members.push(m);
    }
    let kinds = |k: Kind| {
        members[0]
            .app
            .entries()
            .iter()
            .filter(|e| e.kind == k)
            .count()
    };
    println!(
        "this repository ({n_files} files, {} folders, {:.1} MiB; shared in {shared:.0} ms), stored, through the editor: first join (loads the room) {first_join:.1} ms; medians of 7: join until the tree is drawn {:.1} ms, open from the store until drawn {:.1} ms, open in memory {:.1} ms",
        kinds(Kind::Dir),
        bytes as f64 / (1024.0 * 1024.0),
        median(joins),
        median(cold),
        median(warm)
    );
    drop(members);
    server.stop().await;
}

fn main() {
    common::bench_main(cost_of_joining_and_opening());
}
