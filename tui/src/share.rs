//! What `collab-tui --room ROOM DIR` shares of DIR: its text files, read
//! once, and a count of everything skipped, for one notice.
//!
//! A project folder holds much that is not for a room: build output and
//! dependencies (what `.gitignore` and `.git/info/exclude` name, read as
//! git reads them by the `ignore` crate, ripgrep's), git's own database,
//! binaries, files too big for a document. Sharing them would cost every
//! member memory and bandwidth, and writing them back on "save all" could
//! clobber build output. So the scan keeps what git would track that is
//! text: valid UTF-8 without NUL bytes, within the document limit, with a
//! UTF-8 name; it follows no symbolic link (a link could point out of DIR,
//! or make a cycle) and keeps no other special file. Each kind of skip is
//! counted, and [`Skipped::notice`] says them in one sentence, so nothing
//! disappears silently; an ignored folder counts once, not per file in it.
//!
//! The scan reads the file system and nothing else: no app state, no
//! network. [`Share::to_tree`] turns the result into the room's tree
//! ([`collab_doc::tree`]) and the text of each file, what a `seed_tree`
//! and the updates after it carry (`docs/protocol.md`, section 11).

use std::collections::HashSet;
use std::fs;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use collab_doc::tree::{Kind, NodeId, Tree, TreeError, valid_name};

/// What a share may hold: the server's limits, as the welcome announces
/// them (a file over them would be refused anyway).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShareLimits {
    /// The largest file, bytes (the document limit).
    pub max_file_bytes: usize,
    /// Files and folders in all.
    pub max_entries: usize,
    /// All files together, bytes.
    pub max_total_bytes: usize,
}

impl Default for ShareLimits {
    fn default() -> Self {
        Self {
            max_file_bytes: collab_doc::DEFAULT_MAX_DOC_BYTES,
            max_entries: 20_000,
            max_total_bytes: 256 * 1024 * 1024,
        }
    }
}

/// One shared file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedFile {
    /// Relative to DIR, names joined by `/`.
    pub path: String,
    pub text: String,
}

/// What was left out, by reason.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Skipped {
    /// Files and folders `.gitignore` or `.git/info/exclude` name (a
    /// folder counts once).
    pub ignored: usize,
    /// Whether there was a `.git` (never shared).
    pub git: bool,
    /// Files that are not text: a NUL byte, or not UTF-8.
    pub binary: usize,
    /// Files over [`ShareLimits::max_file_bytes`].
    pub too_large: usize,
    /// Files and folders past [`ShareLimits::max_entries`] or
    /// [`ShareLimits::max_total_bytes`].
    pub over_room_limit: usize,
    /// Symbolic links, sockets, devices, fifos.
    pub special: usize,
    /// Names that are not UTF-8 or not a valid tree name.
    pub bad_names: usize,
    /// Entries that could not be read (permissions, vanished meanwhile).
    pub unreadable: usize,
}

impl Skipped {
    /// Entries skipped in all (`.git` counts as one).
    pub fn total(&self) -> usize {
        self.ignored
            + usize::from(self.git)
            + self.binary
            + self.too_large
            + self.over_room_limit
            + self.special
            + self.bad_names
            + self.unreadable
    }

    /// One sentence saying every kind of skip with its count, or `None`
    /// when nothing was skipped.
    pub fn notice(&self, limits: &ShareLimits) -> Option<String> {
        let mut parts = Vec::new();
        let mut say = |n: usize, one: &str, many: &str| match n {
            0 => {}
            1 => parts.push(format!("1 {one}")),
            n => parts.push(format!("{n} {many}")),
        };
        say(
            self.ignored,
            "path in .gitignore",
            "paths in .gitignore or .git/info/exclude",
        );
        say(usize::from(self.git), ".git", ".git");
        say(self.binary, "binary file", "binary files");
        let over = format!("over {}", human_bytes(limits.max_file_bytes));
        say(
            self.too_large,
            &format!("file {over}"),
            &format!("files {over}"),
        );
        say(
            self.over_room_limit,
            "path past the room's limit",
            "paths past the room's limits",
        );
        say(
            self.special,
            "link or special file",
            "links and special files",
        );
        say(self.bad_names, "unusable name", "unusable names");
        say(self.unreadable, "unreadable path", "unreadable paths");
        (!parts.is_empty()).then(|| format!("Not shared: {}.", parts.join(", ")))
    }
}

fn human_bytes(n: usize) -> String {
    const MIB: usize = 1024 * 1024;
    if n >= MIB && n.is_multiple_of(MIB) {
        format!("{} MiB", n / MIB)
    } else if n >= 1024 && n.is_multiple_of(1024) {
        format!("{} KiB", n / 1024)
    } else {
        format!("{n} bytes")
    }
}

/// A folder's shareable content.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Share {
    /// Folders, relative, parents before children, by path.
    pub dirs: Vec<String>,
    /// Files, by path.
    pub files: Vec<SharedFile>,
    pub skipped: Skipped,
}

/// Why a folder could not be shared at all.
#[derive(Debug)]
pub enum ShareError {
    NotADir(PathBuf),
}

impl std::fmt::Display for ShareError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ShareError::NotADir(p) => write!(f, "{} is not a folder", p.display()),
        }
    }
}

impl std::error::Error for ShareError {}

/// Reads what of `dir` a room would share.
pub fn scan(dir: &Path, limits: &ShareLimits) -> Result<Share, ShareError> {
    if !dir.is_dir() {
        return Err(ShareError::NotADir(dir.to_path_buf()));
    }
    let mut walk = ignore::WalkBuilder::new(dir);
    walk.standard_filters(false)
        .git_ignore(true)
        .git_exclude(true)
        // Outside a git repository a .gitignore still says what is not
        // part of the project.
        .require_git(false)
        .parents(true)
        .follow_links(false)
        .sort_by_file_name(|a, b| a.cmp(b))
        .filter_entry(|e| e.file_name() != ".git");
    let mut share = Share::default();
    // What the walk yielded, to count what it left out (ignored).
    let mut seen: HashSet<PathBuf> = HashSet::new();
    let mut folders: Vec<PathBuf> = Vec::new();
    let mut entries = 0usize;
    let mut total_bytes = 0usize;
    let mut dropped_dirs: HashSet<PathBuf> = HashSet::new();
    for item in walk.build() {
        let entry = match item {
            Ok(e) => e,
            Err(_) => {
                share.skipped.unreadable += 1;
                continue;
            }
        };
        let path = entry.path().to_path_buf();
        seen.insert(path.clone());
        if entry.depth() == 0 {
            folders.push(path);
            continue;
        }
        // Inside a folder that was itself skipped: counted with it.
        if path.ancestors().any(|a| dropped_dirs.contains(a)) {
            continue;
        }
        let Some(rel) = relative(dir, &path) else {
            share.skipped.bad_names += 1;
            if entry.file_type().is_some_and(|t| t.is_dir()) {
                dropped_dirs.insert(path);
            }
            continue;
        };
        let Some(kind) = entry.file_type() else {
            share.skipped.unreadable += 1;
            continue;
        };
        if kind.is_dir() {
            if entries >= limits.max_entries {
                share.skipped.over_room_limit += 1;
                dropped_dirs.insert(path);
                continue;
            }
            entries += 1;
            folders.push(path);
            share.dirs.push(rel);
            continue;
        }
        if !kind.is_file() {
            share.skipped.special += 1;
            continue;
        }
        match read_text(&path, limits.max_file_bytes) {
            Content::Text(text) => {
                if entries >= limits.max_entries
                    || total_bytes.saturating_add(text.len()) > limits.max_total_bytes
                {
                    share.skipped.over_room_limit += 1;
                    continue;
                }
                entries += 1;
                total_bytes += text.len();
                share.files.push(SharedFile { path: rel, text });
            }
            Content::Binary => share.skipped.binary += 1,
            Content::TooLarge => share.skipped.too_large += 1,
            Content::Unreadable => share.skipped.unreadable += 1,
        }
    }
    // Whatever a folder the walk entered holds that it did not yield was
    // ignored (or is .git).
    for folder in &folders {
        let Ok(children) = fs::read_dir(folder) else {
            continue;
        };
        for child in children.flatten() {
            let p = child.path();
            if child.file_name() == ".git" {
                share.skipped.git = true;
            } else if !seen.contains(&p) {
                share.skipped.ignored += 1;
            }
        }
    }
    Ok(share)
}

/// `path` relative to `dir`, names joined by `/`; `None` when a name is
/// not UTF-8 or not a valid tree name.
fn relative(dir: &Path, path: &Path) -> Option<String> {
    let rel = path.strip_prefix(dir).ok()?;
    let mut names = Vec::new();
    for c in rel.components() {
        let name = c.as_os_str().to_str()?;
        if !valid_name(name) {
            return None;
        }
        names.push(name);
    }
    Some(names.join("/"))
}

enum Content {
    Text(String),
    Binary,
    TooLarge,
    Unreadable,
}

/// The file's text, or why not: its size is checked before it is read
/// (and the read is bounded, should it grow meanwhile).
fn read_text(path: &Path, max: usize) -> Content {
    let Ok(file) = fs::File::open(path) else {
        return Content::Unreadable;
    };
    match file.metadata() {
        Ok(m) if m.len() > max as u64 => return Content::TooLarge,
        Ok(_) => {}
        Err(_) => return Content::Unreadable,
    }
    let mut bytes = Vec::new();
    let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    if file.take(limit).read_to_end(&mut bytes).is_err() {
        return Content::Unreadable;
    }
    if bytes.len() > max {
        return Content::TooLarge;
    }
    if bytes.contains(&0) {
        return Content::Binary;
    }
    match String::from_utf8(bytes) {
        Ok(text) => Content::Text(text),
        Err(_) => Content::Binary,
    }
}

impl Share {
    /// Adds the share's folders and files to `tree` (an empty one, for a
    /// `seed_tree`), returning each file's node id, whose document is to
    /// receive the file's text.
    pub fn to_tree(&self, tree: &mut Tree) -> Result<Vec<(NodeId, &SharedFile)>, TreeError> {
        let mut items: Vec<(&str, Kind)> =
            self.dirs.iter().map(|d| (d.as_str(), Kind::Dir)).collect();
        items.extend(self.files.iter().map(|f| (f.path.as_str(), Kind::File)));
        let ids = tree.create_paths(&items)?;
        Ok(ids[self.dirs.len()..]
            .iter()
            .copied()
            .zip(&self.files)
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, rel: &str, bytes: &[u8]) {
        let p = root.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, bytes).unwrap();
    }

    fn paths(s: &Share) -> Vec<&str> {
        s.files.iter().map(|f| f.path.as_str()).collect()
    }

    /// A project: sources, an ignored build folder, git's database and
    /// its exclude file, a binary, a big file.
    fn project() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        write(r, "src/main.rs", b"fn main() {}\n");
        write(r, "src/lib/mod.rs", b"// lib\r\n");
        write(r, "README.md", b"# hi\n");
        write(r, ".gitignore", b"target/\n*.log\n");
        write(r, "target/debug/app", b"\x7fELF\0\0");
        write(r, "target/x.txt", b"x");
        write(r, "run.log", b"log");
        write(r, "sub/.gitignore", b"local.txt\n");
        write(r, "sub/local.txt", b"mine");
        write(r, "sub/kept.txt", b"kept");
        write(r, ".git/HEAD", b"ref: refs/heads/main\n");
        write(r, ".git/info/exclude", b"secret.env\n");
        write(r, "secret.env", b"TOKEN=1");
        write(r, "logo.png", b"\x89PNG\r\n\x1a\n\0\0\0");
        write(r, "latin1.txt", b"caf\xe9");
        write(r, "big.txt", &vec![b'a'; 2000]);
        write(r, "empty/.keep", b"");
        d
    }

    fn small() -> ShareLimits {
        ShareLimits {
            max_file_bytes: 1024,
            ..ShareLimits::default()
        }
    }

    #[test]
    fn shares_text_honours_gitignore_and_exclude_and_counts_every_skip() {
        let d = project();
        let s = scan(d.path(), &small()).unwrap();
        assert_eq!(
            paths(&s),
            [
                ".gitignore",
                "README.md",
                "empty/.keep",
                "src/lib/mod.rs",
                "src/main.rs",
                "sub/.gitignore",
                "sub/kept.txt",
            ]
        );
        assert_eq!(s.dirs, ["empty", "src", "src/lib", "sub"]);
        assert_eq!(s.files[3].text, "// lib\r\n", "kept byte for byte");
        assert_eq!(
            s.skipped,
            Skipped {
                // target/, run.log, secret.env, sub/local.txt
                ignored: 4,
                git: true,
                binary: 2,
                too_large: 1,
                ..Skipped::default()
            }
        );
        assert_eq!(s.skipped.total(), 8);
        assert_eq!(
            s.skipped.notice(&small()).unwrap(),
            "Not shared: 4 paths in .gitignore or .git/info/exclude, 1 .git, 2 binary files, 1 file over 1 KiB."
        );
    }

    #[test]
    fn nothing_skipped_says_nothing() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "a.txt", b"a");
        let s = scan(d.path(), &ShareLimits::default()).unwrap();
        assert_eq!(paths(&s), ["a.txt"]);
        assert_eq!(s.skipped.notice(&ShareLimits::default()), None);
    }

    #[test]
    fn links_are_not_followed() {
        let d = project();
        let outside = tempfile::tempdir().unwrap();
        write(outside.path(), "other.txt", b"elsewhere");
        std::os::unix::fs::symlink(outside.path(), d.path().join("out")).unwrap();
        std::os::unix::fs::symlink("README.md", d.path().join("readme-link")).unwrap();
        let s = scan(d.path(), &small()).unwrap();
        assert!(
            !paths(&s)
                .iter()
                .any(|p| p.contains("other") || p.contains("link"))
        );
        assert_eq!(s.skipped.special, 2);
    }

    #[test]
    fn the_room_limits_cut_the_share_and_say_so() {
        let d = tempfile::tempdir().unwrap();
        for i in 0..5 {
            write(d.path(), &format!("f{i}.txt"), b"12345");
        }
        let limits = ShareLimits {
            max_entries: 3,
            ..ShareLimits::default()
        };
        let s = scan(d.path(), &limits).unwrap();
        assert_eq!(paths(&s), ["f0.txt", "f1.txt", "f2.txt"]);
        assert_eq!(s.skipped.over_room_limit, 2);
        let limits = ShareLimits {
            max_total_bytes: 12,
            ..ShareLimits::default()
        };
        assert_eq!(scan(d.path(), &limits).unwrap().files.len(), 2);
    }

    #[test]
    fn a_file_is_not_a_folder_to_share() {
        let d = project();
        assert!(matches!(
            scan(&d.path().join("README.md"), &small()),
            Err(ShareError::NotADir(_))
        ));
    }

    #[test]
    fn a_share_becomes_the_tree_with_the_same_paths() {
        let d = project();
        let s = scan(d.path(), &small()).unwrap();
        let mut tree = Tree::new();
        let files = s.to_tree(&mut tree).unwrap();
        let shown: Vec<String> = tree.entries().into_iter().map(|e| e.path).collect();
        let mut expected: Vec<&str> = s.dirs.iter().map(String::as_str).collect();
        expected.extend(paths(&s));
        expected.sort_unstable();
        let mut shown_sorted = shown.clone();
        shown_sorted.sort_unstable();
        assert_eq!(shown_sorted, expected);
        for (id, file) in files {
            assert_eq!(tree.get(id).unwrap().path, file.path);
        }
    }
}
