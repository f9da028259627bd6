//! Names that differ only in case (issue 17). Creating or renaming to one
//! is refused in the editor (`tree_ops`), but two members can still make
//! `Readme.md` and `README.md` at once: both stand in the converged tree.
//! On a case-insensitive disk (macOS, Windows) the two are one file, so
//! the member is told when such a pair appears, and a save that would
//! write the second over the first (already on this member's disk) is
//! refused with a word to rename one.

use std::collections::{HashMap, HashSet};

use collab_doc::tree::NodeId;

use super::App;

/// The pairs already said, by lowercased path, to say each once.
#[derive(Debug, Default)]
pub(super) struct CaseClashes {
    said: HashSet<String>,
}

impl App {
    /// After the tree was listed: says each new group of paths that
    /// differ only in case.
    pub(super) fn say_case_clashes(&mut self) {
        let mut groups: HashMap<String, Vec<&str>> = HashMap::new();
        for e in self.entries() {
            groups
                .entry(e.path.to_lowercase())
                .or_default()
                .push(e.path.as_str());
        }
        let mut new: Vec<(String, Vec<String>)> = groups
            .into_iter()
            .filter(|(lower, paths)| paths.len() > 1 && !self.ws_view.case.said.contains(lower))
            .map(|(lower, paths)| (lower, paths.into_iter().map(str::to_owned).collect()))
            .collect();
        new.sort();
        for (lower, mut paths) in new {
            paths.sort();
            self.ws_view.case.said.insert(lower);
            self.warn(format!(
                "{} differ only in case: on a case-insensitive disk they are one file. Rename one (saving the second is refused).",
                paths.join(" and ")
            ));
        }
    }

    /// Why file `id` must not be saved: another file of the room whose
    /// path differs from its path only in case is on this member's disk.
    pub(super) fn case_refusal(&self, id: NodeId) -> Option<String> {
        let f = self.session.folder()?;
        let dir = f.dir.as_ref()?;
        let path = f.path_of(id)?;
        let target = dir.join(path);
        let lower = target.to_string_lossy().to_lowercase();
        let (_, other) = self.ws_view.on_disk.files().find(|(other, copy)| {
            *other != id
                && copy.path != target
                && copy.path.to_string_lossy().to_lowercase() == lower
        })?;
        let other = other
            .path
            .strip_prefix(dir)
            .unwrap_or(&other.path)
            .display()
            .to_string();
        Some(format!(
            "Not saved: {path} differs from {other} only in case, and {other} is on disk here: on a case-insensitive disk one would overwrite the other. Rename one in the tree (F7, r)."
        ))
    }
}
