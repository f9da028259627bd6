//! The editor in workspace rooms (issue 17), against a real server over
//! real WebSockets: sharing a folder, joining without a path (the tree),
//! opening files, and a bare join into a one-file room.
#![allow(clippy::unwrap_used)]

use crate::support;

use std::path::Path;
use std::time::{Duration, Instant};

use collab_tui::action::Action;
use collab_tui::app::{App, Focus, FolderStart, Order};
use collab_tui::keymap::Command;
use collab_tui::net::{self, Net};
use collab_tui::outside::Outside;
use collab_tui::share::{self, ShareLimits};
use support::{config, render};
use tokio::net::TcpListener;
use tokio::time::timeout_at;

/// Longer than any answer should take.
pub const WITHIN: Duration = Duration::from_secs(10);

/// A real server on 127.0.0.1:0, keeping rooms in memory; its URL.
pub async fn server() -> String {
    server_with(collab_server::Config::default()).await
}

/// The editing and the read-only token of [`server_with_tokens`].
const EDIT: &str = "edit-token";
const VIEW: &str = "view-token";

/// A real server that takes [`EDIT`] and, read-only, [`VIEW`].
async fn server_with_tokens() -> String {
    server_with(collab_server::Config {
        access_token: Some(EDIT.into()),
        read_only_token: Some(VIEW.into()),
        ..collab_server::Config::default()
    })
    .await
}

async fn server_with(config: collab_server::Config) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let config = collab_server::Config {
        storage: collab_server::Storage::Memory,
        ..config
    };
    tokio::spawn(collab_server::run(
        listener,
        config,
        std::future::pending::<()>(),
    ));
    format!("ws://127.0.0.1:{port}")
}

/// An editor and its connection, as the event loop holds them.
pub struct Editor {
    pub app: App,
    pub out: Outside,
}

impl Editor {
    /// `user` joins `room` at `url` with `dir` shared (or no path), and is
    /// welcomed.
    pub async fn join(url: &str, room: &str, user: &str, dir: Option<&Path>) -> Self {
        Self::join_with(url, room, user, dir, None).await
    }

    /// [`Editor::join`] carrying access token `token`.
    pub async fn join_with(
        url: &str,
        room: &str,
        user: &str,
        dir: Option<&Path>,
        token: Option<&str>,
    ) -> Self {
        let mut start = FolderStart {
            dir: dir.map(Path::to_path_buf),
            share: dir.map(|d| share::scan(d, &ShareLimits::default()).unwrap()),
            ..FolderStart::default()
        };
        start.stamp_share();
        let mut app = App::new_folder(
            collab_tui::app::Startup {
                server: url.into(),
                room: room.into(),
                user: user.into(),
                token: token.map(str::to_owned),
                ..config("", None)
            },
            start,
            Instant::now(),
        );
        app.update(Action::Resize {
            width: 100,
            height: 30,
        });
        let mut out = Outside::new(Net::open_workspace(url, None).unwrap());
        net::join(&mut app, &mut out, WITHIN).await.unwrap();
        Self { app, out }
    }

    /// Runs the event loop's turns (orders out, the frame's sync, events
    /// in) until `done` holds; panics after [`WITHIN`].
    pub async fn until(&mut self, what: &str, done: impl Fn(&App) -> bool) {
        let deadline = tokio::time::Instant::now() + WITHIN;
        loop {
            self.turn();
            if done(&self.app) {
                return;
            }
            let next = timeout_at(deadline, async {
                tokio::select! {
                    a = self.out.net.recv() => a.map(|a| (a, false)),
                    Some(a) = self.out.done.recv() => Some((a, true)),
                }
            })
            .await;
            match next {
                Ok(Some((a, false))) => self.app.update(a),
                Ok(Some((a, true))) => self.out.apply(&mut self.app, a),
                Ok(None) => panic!("the connection stopped while waiting for {what}"),
                Err(_) => panic!("no {what} within {WITHIN:?}: {}", self.notices()),
            }
        }
    }

    /// [`Editor::until`] reading only the connection: what the event loop
    /// ran meanwhile (a save) has its result held back, so a test can
    /// order the room's answer before it.
    pub async fn until_net(&mut self, what: &str, done: impl Fn(&App) -> bool) {
        let deadline = tokio::time::Instant::now() + WITHIN;
        loop {
            self.turn();
            if done(&self.app) {
                return;
            }
            match timeout_at(deadline, self.out.net.recv()).await {
                Ok(Some(a)) => self.app.update(a),
                Ok(None) => panic!("the connection stopped while waiting for {what}"),
                Err(_) => panic!("no {what} within {WITHIN:?}: {}", self.notices()),
            }
        }
    }

    /// One turn without waiting, as the event loop's: a room's text shown
    /// first is settled (after the frame that showed it), the frame's
    /// sync, orders carried out.
    pub fn turn(&mut self) {
        self.app.update(Action::Clock(Instant::now()));
        if self.app.session.is_showing_text_first() {
            self.app.update(Action::Settle);
        }
        self.app.update(Action::Sync);
        let _ = self.out.carry_out(&mut self.app);
    }

    pub fn cmd(&mut self, c: Command) {
        self.app.update(Action::Command(c));
        self.turn();
    }

    pub fn type_str(&mut self, s: &str) {
        for c in s.chars() {
            self.app.update(Action::Type(c));
        }
        self.turn();
    }

    pub fn text(&self) -> String {
        self.app.editor.rope().to_string()
    }

    pub fn notices(&self) -> String {
        let all: Vec<&str> = self.app.notices.iter().map(|n| n.text.as_str()).collect();
        all.join(" | ")
    }

    /// Selects `path` in the tree panel (opening it) and presses Enter.
    /// Opens `from` from the tree, then asks the tree to rename it to `to`
    /// (the rename's prompt, `from` erased and `to` typed, submitted).
    pub fn rename_in_tree(&mut self, from: &str, to: &str) {
        self.open_in_tree(from);
        self.cmd(Command::Tree);
        self.cmd(Command::RenameEntry);
        for _ in 0..from.chars().count() {
            self.cmd(Command::Backspace);
        }
        self.type_str(to);
        self.cmd(Command::Submit);
    }

    pub fn open_in_tree(&mut self, path: &str) {
        if self.app.focus != Focus::Tree {
            self.cmd(Command::Tree);
        }
        let i = self
            .app
            .entries()
            .iter()
            .position(|e| e.path == path)
            .unwrap_or_else(|| panic!("{path} is not in the tree"));
        self.cmd(Command::DocStart);
        for _ in 0..i {
            self.cmd(Command::MoveDown);
        }
        self.cmd(Command::Submit);
    }
}

/// A folder of three files and a subfolder, and a binary file that is not
/// shared.
pub fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    std::fs::write(p.join("README.md"), "# Project\n").unwrap();
    std::fs::write(p.join("main.rs"), "fn main() {}\n").unwrap();
    std::fs::create_dir(p.join("src")).unwrap();
    std::fs::write(p.join("src/lib.rs"), "pub fn lib() {}\n").unwrap();
    std::fs::write(p.join("logo.png"), [0x89, b'P', b'N', b'G', 0, 0, 1]).unwrap();
    dir
}

/// Alice shares `project()` into room "proj" and waits until the share
/// has synced (its first file open).
pub async fn alice_shares(url: &str) -> (tempfile::TempDir, Editor) {
    let dir = project();
    let mut alice = Editor::join(url, "proj", "alice", Some(dir.path())).await;
    alice
        .until("the share synced", |a| {
            a.current_file().is_some() && a.session.is_synced()
        })
        .await;
    (dir, alice)
}

/// Bob joins "proj" without a path and waits for its tree (four entries).
pub async fn bob_sees_the_tree(url: &str) -> Editor {
    let mut bob = Editor::join(url, "proj", "bob", None).await;
    bob.until("the tree", |a| a.entries().len() == 4).await;
    bob
}

#[tokio::test]
async fn a_shared_folder_opens_its_first_file_and_says_what_it_skipped() {
    let url = server().await;
    let dir = project();
    let mut alice = Editor::join(&url, "proj", "alice", Some(dir.path())).await;
    alice
        .until("the first file", |a| a.current_file().is_some())
        .await;
    let notices = alice.notices();
    assert!(notices.contains("Shared the folder: 3 files."), "{notices}");
    assert!(notices.contains("Not shared: 1 binary file."), "{notices}");
    // Folders before files at each level is not promised: by path.
    let paths: Vec<&str> = alice
        .app
        .entries()
        .iter()
        .map(|e| e.path.as_str())
        .collect();
    assert_eq!(paths, ["README.md", "main.rs", "src", "src/lib.rs"]);
    assert_eq!(alice.text(), "# Project\n");
    assert!(!alice.app.modified(), "the shared text is the file's");
    assert_eq!(
        alice.app.config.file.as_deref(),
        Some(dir.path().join("README.md").as_path())
    );
    alice.cmd(Command::DocEnd);
    alice.type_str("more\n");
    assert_eq!(alice.text(), "# Project\nmore\n");
    assert!(alice.app.modified());
    alice
        .until("the edit acked", |a| a.session.is_synced())
        .await;
    // The file is as shared: Ctrl-S replaces it without asking.
    alice.cmd(Command::Save);
    alice
        .until("saved", |a| !a.save_pending() && !a.modified())
        .await;
    assert_eq!(
        std::fs::read_to_string(dir.path().join("README.md")).unwrap(),
        "# Project\nmore\n"
    );
}

#[tokio::test]
async fn a_member_without_a_path_sees_the_tree_and_opens_a_file_from_it() {
    let url = server().await;
    let (_dir, mut alice) = alice_shares(&url).await;

    let mut bob = bob_sees_the_tree(&url).await;
    assert_eq!(bob.app.focus, Focus::Tree, "the tree has the keyboard");
    assert!(bob.app.current_file().is_none());
    let screen = render(&mut bob.app);
    assert!(screen.contains("Files"), "{screen}");
    assert!(screen.contains("src/"), "{screen}");
    assert!(screen.contains("  lib.rs"), "{screen}");
    // Typing with no file open edits nothing.
    bob.app.focus = Focus::Text;
    bob.type_str("x");
    assert!(
        bob.notices().contains("No file is open"),
        "{}",
        bob.notices()
    );

    bob.open_in_tree("src/lib.rs");
    bob.until("lib.rs loaded", |a| a.editor.rope().len_chars() > 0)
        .await;
    assert_eq!(bob.text(), "pub fn lib() {}\n");
    assert_eq!(bob.app.focus, Focus::Text);
    assert!(!bob.app.modified());
    assert!(bob.app.config.file.is_none(), "no folder yet to save in");

    // Alice opens the same file; their edits meet.
    alice.open_in_tree("src/lib.rs");
    assert_eq!(alice.text(), "pub fn lib() {}\n");
    alice.cmd(Command::DocEnd);
    alice.type_str("// alice\n");
    bob.cmd(Command::DocStart);
    bob.type_str("// bob\n");
    let both = "// bob\npub fn lib() {}\n// alice\n";
    alice.until("bob's line", |a| a.editor.rope() == both).await;
    bob.until("alice's line", |a| a.editor.rope() == both).await;
    // Each one's orders went on the workspace wire.
    assert!(
        !alice
            .app
            .take_orders()
            .iter()
            .any(|o| matches!(o, Order::Send(_)))
    );
}

#[tokio::test]
async fn a_bare_join_into_a_one_file_room_edits_its_text() {
    let url = server().await;
    // Carol shares one file over protocol 1, as before workspaces.
    let mut carol_app = App::new(
        collab_tui::app::Startup {
            server: url.clone(),
            room: "notes".into(),
            user: "carol".into(),
            ..config("notes.txt", Some("shared notes\n"))
        },
        Instant::now(),
    );
    carol_app.update(Action::Resize {
        width: 80,
        height: 24,
    });
    let mut carol = Editor {
        out: Outside::new(Net::open(&url, None).unwrap()),
        app: carol_app,
    };
    net::join(&mut carol.app, &mut carol.out, WITHIN)
        .await
        .unwrap();
    carol
        .until("the seed", |a| a.editor.rope() == "shared notes\n")
        .await;

    let mut dan = Editor::join(&url, "notes", "dan", None).await;
    dan.until("the room's text", |a| a.editor.rope() == "shared notes\n")
        .await;
    assert!(
        dan.notices().contains("holds one file's text"),
        "{}",
        dan.notices()
    );
    dan.cmd(Command::DocEnd);
    dan.type_str("dan\n");
    carol
        .until("dan's line", |a| a.editor.rope() == "shared notes\ndan\n")
        .await;
}

#[tokio::test]
async fn several_files_open_with_a_buffer_list_a_picker_and_undo_per_file() {
    let url = server().await;
    let (_dir, mut alice) = alice_shares(&url).await;
    let mut bob = bob_sees_the_tree(&url).await;

    // One from the tree, one from the picker.
    bob.open_in_tree("README.md");
    bob.until("README.md", |a| a.editor.rope() == "# Project\n")
        .await;
    bob.cmd(Command::Picker);
    bob.type_str("mai");
    let screen = render(&mut bob.app);
    assert!(screen.contains("Open file: mai"), "{screen}");
    assert!(screen.contains("main.rs"), "{screen}");
    assert!(
        screen.contains(" 1 files "),
        "only matches are listed: {screen}"
    );
    let (matches, _) = bob.app.picker_matches();
    assert_eq!(matches.len(), 1);
    bob.cmd(Command::Submit);
    bob.until("main.rs", |a| a.editor.rope() == "fn main() {}\n")
        .await;
    assert_eq!(bob.app.buffers().len(), 2);
    let screen = render(&mut bob.app);
    assert!(
        screen.contains(" README.md ") && screen.contains(" main.rs "),
        "the buffer list: {screen}"
    );

    // Bob edits main.rs, switches to README.md and edits it: undo there
    // undoes only README.md's edit, and main.rs keeps its own.
    bob.cmd(Command::DocEnd);
    bob.type_str("// m\n");
    bob.cmd(Command::NextFile);
    assert_eq!(bob.text(), "# Project\n");
    bob.cmd(Command::DocEnd);
    bob.type_str("r");
    assert!(bob.app.modified());
    bob.cmd(Command::Undo);
    assert_eq!(bob.text(), "# Project\n");
    bob.cmd(Command::PrevFile);
    assert_eq!(bob.text(), "fn main() {}\n// m\n");
    assert!(bob.app.modified());

    // Alice types in README.md while it is parked at bob's: it is there
    // when bob comes back to it.
    alice.open_in_tree("README.md");
    alice.cmd(Command::DocStart);
    alice.type_str("! ");
    alice.until("acked", |a| a.session.is_synced()).await;
    bob.until("alice's edit arrived", |a| {
        let id = a.buffers()[0];
        a.session
            .folder()
            .and_then(|f| f.ws.file(id))
            .is_some_and(|r| r.text() == "! # Project\n")
    })
    .await;
    assert_eq!(bob.text(), "fn main() {}\n// m\n", "main.rs on screen");
    bob.cmd(Command::NextFile);
    assert_eq!(bob.text(), "! # Project\n");
    bob.cmd(Command::Undo);
    assert!(
        bob.notices().contains("Nothing to undo"),
        "alice's edit is not bob's to undo: {}",
        bob.notices()
    );
}

#[tokio::test]
async fn save_all_asks_a_member_without_a_folder_for_one_and_writes_every_file() {
    let url = server().await;
    let (_dir, _alice) = alice_shares(&url).await;
    let mut bob = bob_sees_the_tree(&url).await;
    bob.open_in_tree("src/lib.rs");
    bob.until("lib.rs", |a| a.editor.rope().len_chars() > 0)
        .await;
    bob.type_str("// b\n");
    bob.open_in_tree("main.rs");
    bob.until("main.rs", |a| a.editor.rope().len_chars() > 0)
        .await;
    bob.type_str("// b\n");
    bob.open_in_tree("README.md");
    bob.until("README.md", |a| a.editor.rope().len_chars() > 0)
        .await;

    // No folder yet: asked, then every modified file is written, its
    // folders created, and README.md (unmodified) is not.
    let mine = tempfile::tempdir().unwrap();
    let target = mine.path().join("copy");
    bob.cmd(Command::SaveAll);
    assert!(bob.app.prompt().is_some(), "asked for a folder");
    bob.type_str(target.to_str().unwrap());
    bob.cmd(Command::Submit);
    bob.until("saved all", |a| {
        a.notices.iter().any(|n| n.text.starts_with("Saved all"))
    })
    .await;
    assert!(
        bob.notices().contains("Saved all: 2 files."),
        "{}",
        bob.notices()
    );
    let read = |p: &str| std::fs::read_to_string(target.join(p)).unwrap();
    assert_eq!(read("src/lib.rs"), "// b\npub fn lib() {}\n");
    assert_eq!(read("main.rs"), "// b\nfn main() {}\n");
    assert!(!target.join("README.md").exists());
    assert_eq!(bob.text(), "# Project\n", "back on the file it started on");
    for id in bob.app.buffers().to_vec() {
        assert!(!bob.app.buffer_modified(id));
    }

    // Ctrl-S on a file whose copy on disk differs asks first.
    std::fs::write(target.join("README.md"), "other\n").unwrap();
    bob.type_str("x");
    bob.cmd(Command::Save);
    bob.until("the save's answer", |a| !a.save_pending()).await;
    assert!(bob.notices().contains("Not saved"), "{}", bob.notices());
    assert_eq!(read("README.md"), "other\n");
    bob.cmd(Command::Save);
    bob.until("the second save", |a| !a.save_pending() && !a.modified())
        .await;
    assert_eq!(read("README.md"), "x# Project\n");
}

#[tokio::test]
async fn the_members_panel_shows_each_members_file_and_follow_crosses_files() {
    let url = server().await;
    let (_dir, mut alice) = alice_shares(&url).await;
    let mut bob = bob_sees_the_tree(&url).await;
    // Alice sees bob come and sends her caret again, naming her file.
    alice.until("bob", |a| a.peers.len() == 2).await;
    alice.turn();
    bob.open_in_tree("main.rs");
    bob.until("main.rs and alice's file", |a| {
        a.editor.rope().len_chars() > 0
            && a.peers
                .iter()
                .any(|p| p.name == "alice" && p.file.is_some())
    })
    .await;
    let screen = render(&mut bob.app);
    assert!(
        screen
            .lines()
            .any(|l| l.contains("● alice") && l.contains("README.md│")),
        "alice's file in the members panel: {screen}"
    );
    assert!(
        screen.contains("│README.md             ●│"),
        "and in the tree: {screen}"
    );

    bob.cmd(Command::Follow);
    assert_eq!(bob.app.following(), Some("alice"));
    bob.until("README.md on screen", |a| a.editor.rope() == "# Project\n")
        .await;
    // Alice goes to another file and types there: bob's screen follows.
    alice.open_in_tree("src/lib.rs");
    alice.cmd(Command::DocEnd);
    alice.type_str("// here\n");
    bob.until("lib.rs with alice's line", |a| {
        a.editor.rope() == "pub fn lib() {}\n// here\n"
    })
    .await;
    assert_eq!(bob.app.following(), Some("alice"));
    let lib = bob.app.current_file().unwrap();
    assert_eq!(
        bob.app.entries().iter().find(|e| e.id == lib).unwrap().path,
        "src/lib.rs"
    );
}

#[tokio::test]
async fn create_rename_and_delete_from_the_tree_reach_a_member_with_the_file_open() {
    let url = server().await;
    let (dir, mut alice) = alice_shares(&url).await;
    let mut bob = bob_sees_the_tree(&url).await;
    bob.open_in_tree("main.rs");
    bob.until("main.rs", |a| a.editor.rope().len_chars() > 0)
        .await;

    // Alice renames main.rs; bob is told and keeps typing in it.
    alice.rename_in_tree("main.rs", "app.rs");
    assert!(alice.app.entries().iter().any(|e| e.path == "app.rs"));
    assert_eq!(
        alice.app.config.file.as_deref(),
        Some(dir.path().join("app.rs").as_path())
    );
    bob.until("the rename", |a| {
        a.entries().iter().any(|e| e.path == "app.rs")
    })
    .await;
    assert!(
        bob.notices().contains("main.rs was renamed app.rs."),
        "{}",
        bob.notices()
    );
    bob.cmd(Command::DocEnd);
    bob.type_str("// still here\n");
    alice
        .until("bob's line in app.rs", |a| {
            a.editor.rope() == "fn main() {}\n// still here\n"
        })
        .await;

    // Bob creates a file in src/: it opens, alice sees it.
    bob.cmd(Command::Tree);
    bob.open_in_tree("src");
    bob.cmd(Command::NewEntry);
    bob.type_str("new.rs");
    bob.cmd(Command::Submit);
    assert_eq!(bob.text(), "");
    bob.type_str("new\n");
    alice
        .until("src/new.rs", |a| {
            a.entries().iter().any(|e| e.path == "src/new.rs")
        })
        .await;

    // Alice deletes app.rs: asked first; bob keeps an unsaved copy.
    alice.cmd(Command::Tree);
    let i = alice
        .app
        .entries()
        .iter()
        .position(|e| e.path == "app.rs")
        .unwrap();
    alice.cmd(Command::DocStart);
    for _ in 0..i {
        alice.cmd(Command::MoveDown);
    }
    alice.cmd(Command::DeleteEntry);
    assert!(
        alice.notices().contains("for everyone?"),
        "{}",
        alice.notices()
    );
    assert!(alice.app.entries().iter().any(|e| e.path == "app.rs"));
    alice.cmd(Command::DeleteEntry);
    assert!(!alice.app.entries().iter().any(|e| e.path == "app.rs"));
    bob.until("the delete", |a| {
        !a.entries().iter().any(|e| e.path == "app.rs")
    })
    .await;
    bob.cmd(Command::PrevFile);
    assert_eq!(bob.text(), "fn main() {}\n// still here\n");
    assert!(bob.notices().contains("unsaved copy"), "{}", bob.notices());
    bob.type_str("x");
    assert_eq!(
        bob.text(),
        "fn main() {}\n// still here\nx",
        "still editable"
    );
}

#[tokio::test]
async fn closing_a_buffer_asks_over_unsaved_changes_and_waits_for_acks() {
    let url = server().await;
    let (_dir, _alice) = alice_shares(&url).await;
    let mut bob = bob_sees_the_tree(&url).await;
    bob.open_in_tree("README.md");
    bob.until("README.md", |a| a.editor.rope() == "# Project\n")
        .await;
    bob.open_in_tree("main.rs");
    bob.until("main.rs", |a| a.editor.rope() == "fn main() {}\n")
        .await;
    let main = bob.app.current_file().unwrap();

    // Typed but not yet acked: closing would drop the edit, so it is refused.
    bob.cmd(Command::DocEnd);
    bob.type_str("// m\n");
    bob.cmd(Command::CloseFile);
    assert!(bob.notices().contains("not acked"), "{}", bob.notices());
    assert_eq!(bob.app.buffers().len(), 2);

    // Acked but unsaved: asked first; another key keeps it.
    bob.until("acked", |a| a.session.is_synced()).await;
    bob.cmd(Command::CloseFile);
    assert!(
        bob.notices().contains("unsaved changes"),
        "{}",
        bob.notices()
    );
    bob.cmd(Command::DocStart);
    bob.cmd(Command::CloseFile);
    assert_eq!(
        bob.app.buffers().len(),
        2,
        "a key between drops the question"
    );
    bob.cmd(Command::CloseFile);
    assert_eq!(bob.app.buffers().len(), 1);
    assert_eq!(bob.text(), "# Project\n", "the previous file is on screen");
    assert!(bob.app.session.folder().unwrap().ws.file(main).is_none());
    let screen = render(&mut bob.app);
    assert!(!screen.contains(" main.rs "), "{screen}");

    // The last one: the tree is shown.
    bob.cmd(Command::CloseFile);
    assert!(bob.app.buffers().is_empty());
    assert_eq!(bob.app.current_file(), None);
    assert!(bob.app.tree_open());
    let ctrl_w = crossterm::event::KeyEvent::new(
        crossterm::event::KeyCode::Char('w'),
        crossterm::event::KeyModifiers::CONTROL,
    );
    assert!(matches!(
        collab_tui::keymap::action_for(collab_tui::keymap::KeyContext::Text, ctrl_w),
        Some(Action::Command(Command::CloseFile))
    ));
}

#[tokio::test]
async fn a_viewer_browses_opens_and_follows_but_changes_nothing() {
    let url = server_with_tokens().await;
    let dir = project();
    let mut alice = Editor::join_with(&url, "proj", "alice", Some(dir.path()), Some(EDIT)).await;
    alice
        .until("the share synced", |a| {
            a.current_file().is_some() && a.session.is_synced()
        })
        .await;
    let mut vic = Editor::join_with(&url, "proj", "vic", None, Some(VIEW)).await;
    vic.until("the tree", |a| a.entries().len() == 4).await;
    assert!(vic.app.read_only());

    // Browses and opens.
    vic.open_in_tree("src/lib.rs");
    vic.until("src/lib.rs", |a| a.editor.rope() == "pub fn lib() {}\n")
        .await;

    // Types nothing, creates, renames and deletes nothing: each is refused
    // here, with the notice.
    vic.type_str("x");
    assert_eq!(vic.text(), "pub fn lib() {}\n");
    vic.cmd(Command::Tree);
    let before: Vec<String> = vic.app.entries().iter().map(|e| e.path.clone()).collect();
    for c in [
        Command::NewEntry,
        Command::RenameEntry,
        Command::DeleteEntry,
        Command::DeleteEntry,
    ] {
        vic.cmd(c);
        assert!(vic.app.prompt().is_none(), "{c:?} asks nothing");
        let last = vic.app.notices.iter().last().map(|n| n.text.clone());
        assert!(
            last.as_deref().is_some_and(|t| t.contains("read-only")),
            "{c:?}: {}",
            vic.notices()
        );
    }
    let after: Vec<String> = vic.app.entries().iter().map(|e| e.path.clone()).collect();
    assert_eq!(before, after);
    assert!(
        vic.app.session.is_synced(),
        "nothing was sent to be refused"
    );

    // Follows alice into another file.
    alice.open_in_tree("main.rs");
    alice.until("acked", |a| a.session.is_synced()).await;
    vic.cmd(Command::Cancel);
    vic.app.update(Action::Command(Command::Follow));
    vic.until("following alice into main.rs", |a| {
        a.editor.rope() == "fn main() {}\n"
    })
    .await;
    assert_eq!(alice.app.entries().len(), 4);
}

#[tokio::test]
async fn names_that_differ_from_a_siblings_only_in_case_are_refused() {
    let url = server().await;
    let (_dir, mut alice) = alice_shares(&url).await;
    let paths =
        |e: &Editor| -> Vec<String> { e.app.entries().iter().map(|e| e.path.clone()).collect() };
    let before = paths(&alice);

    // A new Main.rs beside main.rs.
    alice.open_in_tree("main.rs");
    alice.cmd(Command::Tree);
    alice.cmd(Command::NewEntry);
    alice.type_str("Main.rs");
    alice.cmd(Command::Submit);
    assert!(
        alice
            .notices()
            .contains("Not created: Main.rs differs from main.rs"),
        "{}",
        alice.notices()
    );
    assert!(alice.app.prompt().is_some(), "the name can be corrected");
    alice.cmd(Command::Cancel);
    assert_eq!(paths(&alice), before);

    // README.md renamed MAIN.RS.
    alice.rename_in_tree("README.md", "MAIN.RS");
    assert!(
        alice
            .notices()
            .contains("Not renamed: MAIN.RS differs from main.rs"),
        "{}",
        alice.notices()
    );
    alice.cmd(Command::Cancel);
    assert_eq!(paths(&alice), before);

    // A file's own name in other case is no clash, nor a name in another
    // folder.
    alice.rename_in_tree("main.rs", "Main.rs");
    assert!(
        paths(&alice).contains(&"Main.rs".to_string()),
        "{}",
        alice.notices()
    );
    alice.open_in_tree("src");
    alice.cmd(Command::NewEntry);
    alice.type_str("main.rs");
    alice.cmd(Command::Submit);
    assert!(
        paths(&alice).contains(&"src/main.rs".to_string()),
        "{}",
        alice.notices()
    );
}
