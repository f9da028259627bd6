//! A workspace room's file tree: a convergent tree of files and folders in
//! a Loro document of its own (`docs/workspace.md` has the whole design).
//!
//! Each file and folder is a node of Loro's movable tree (the container
//! [`TREE_CONTAINER`]), so concurrent moves converge to one tree without
//! cycles (Loro implements Kleppmann et al.'s move operation: the moves are
//! applied in one total order and a move that would make a cycle is
//! skipped). A node's id ([`NodeId`], Loro's `TreeID`) never changes, so a
//! file's id is also the id of its text document: a rename or a move changes
//! the tree only, no text moves.
//!
//! A node's metadata map holds its `name`, its `kind` (`"file"` or `"dir"`,
//! fixed at creation) and its *assertions*: keys `+COUNTER@PEER`, one per
//! operation that created, renamed or moved the node or a folder it is in
//! (the id of that operation's first Loro op, so no two operations make the
//! same key). Nodes are never removed from Loro's tree; a delete retracts
//! the assertions it sees, those of the node and of everything shown under
//! it. This is an observed-remove set: an assertion made concurrently with
//! a delete is not seen by it and survives. The rule, then:
//!
//! - a node is *live* while it holds an assertion;
//! - a node is *shown* when it is live, or it is a folder with something
//!   shown in it (so the folders on the path of a kept file come back);
//! - a delete removes what its author saw; a file that another member
//!   created, renamed or moved concurrently (or whose folder they renamed
//!   or moved) stays, at its path. Edits of the file's text are in another
//!   document and do not keep it: the editor keeps an unsaved copy instead.
//!
//! Names are checked when a member makes them ([`valid_name`]) and again
//! when shown, since any peer can write any bytes: a name that is no safe
//! file name is shown sanitized, and siblings that ended up with the same
//! name (two members created `a.txt` in one folder at once) are told apart
//! deterministically, the node with the smallest id keeping the name and
//! the others getting `~ID` appended. Every replica computes the same
//! [`Entry`] list from the same document.
//!
//! A server imports a member's tree update with [`Tree::import_checked`]:
//! its operation count is read from the update's header before anything is
//! imported (the same reader as for text, `crate::update`), then every
//! operation is checked (tree moves and creations, and the three kinds of
//! metadata keys, with bounded values) and the node count against the
//! room's limit; a refused update is rolled back.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::str::FromStr;

use loro::{
    ContainerID, ContainerTrait, ContainerType, ExportMode, ID, JsonMapOp, JsonOpContent,
    JsonTreeOp, LoroDoc, LoroMap, LoroTree, LoroValue, TreeID, TreeParentId, ValueOrContainer,
    VersionVector,
};

use crate::{DocError, PeerSpan, UpdateInfo};

/// The root container of a workspace's tree document.
pub const TREE_CONTAINER: &str = "tree";

/// The longest name of a file or folder, in UTF-8 bytes (what Linux and
/// macOS file systems allow for one path component).
pub const MAX_NAME_BYTES: usize = 255;

/// The deepest a node may be: folders in its path, itself included.
pub const MAX_DEPTH: usize = 64;

/// The longest path, in bytes of its names and the `/` between them (what
/// Linux allows, `PATH_MAX`). Depth and path length bound what computing
/// the shown tree costs a replica: a hostile chain of 20,000 nested folders
/// would otherwise make every replica build paths of quadratic total size.
pub const MAX_PATH_BYTES: usize = 4096;

/// The metadata keys of a node.
const NAME: &str = "name";
const KIND: &str = "kind";
/// Assertion keys start with this and are `+COUNTER@PEER`.
const ASSERTION: char = '+';
/// The longest assertion key: `+`, an i32, `@`, a u64.
const MAX_ASSERTION_BYTES: usize = 1 + 10 + 1 + 20;

/// A file's or folder's stable id: Loro's tree node id, written
/// `COUNTER@PEER` (both decimal). A file's text document has the same id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId {
    pub peer: u64,
    pub counter: i32,
}

impl NodeId {
    fn from_loro(id: TreeID) -> Self {
        Self {
            peer: id.peer,
            counter: id.counter,
        }
    }

    fn to_loro(self) -> TreeID {
        TreeID {
            peer: self.peer,
            counter: self.counter,
        }
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.counter, self.peer)
    }
}

impl FromStr for NodeId {
    type Err = TreeError;

    /// `COUNTER@PEER`, decimal digits only (no sign, no spaces), the
    /// counter at most `i32::MAX`.
    fn from_str(s: &str) -> Result<Self, TreeError> {
        let bad = || TreeError::BadId(s.chars().take(64).collect());
        let (counter, peer) = s.split_once('@').ok_or_else(bad)?;
        let digits =
            |t: &str| !t.is_empty() && t.len() <= 20 && t.bytes().all(|b| b.is_ascii_digit());
        if !digits(counter) || !digits(peer) {
            return Err(bad());
        }
        Ok(Self {
            peer: peer.parse().map_err(|_| bad())?,
            counter: counter.parse().map_err(|_| bad())?,
        })
    }
}

/// What a node is. Fixed when it is created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    File,
    Dir,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::File => "file",
            Kind::Dir => "dir",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "file" => Some(Kind::File),
            "dir" => Some(Kind::Dir),
            _ => None,
        }
    }
}

/// A shown file or folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub id: NodeId,
    pub kind: Kind,
    /// Its name as shown: a safe file name, unique among its siblings.
    pub name: String,
    /// The folder it is in; `None` at the top.
    pub parent: Option<NodeId>,
    /// Its names from the top, joined by `/`.
    pub path: String,
    /// Whether it holds an assertion of its own; a folder that is not live
    /// is shown only for what it holds (its delete was concurrent with a
    /// change to something in it).
    pub live: bool,
}

/// Why a tree operation or a tree update was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TreeError {
    #[error("no file or folder {0} is shown in the tree")]
    NoSuchNode(NodeId),
    #[error("{0} is a file, not a folder")]
    NotAFolder(NodeId),
    #[error("{0:?} is not a file name: 1 to 255 bytes, no '/', no NUL, not '.' or '..'")]
    InvalidName(String),
    #[error("{0:?} is already in that folder")]
    NameTaken(String),
    #[error("a folder cannot move into itself or a folder inside it")]
    IntoItself,
    #[error("{0:?} is not a node id (COUNTER@PEER)")]
    BadId(String),
    #[error(
        "the update carries {ops} operations, over the {max} one tree update may carry: send it in parts"
    )]
    TooManyOps { ops: u64, max: u64 },
    #[error("the tree would have {nodes} nodes, over the room's limit of {max}")]
    TooManyNodes { nodes: usize, max: usize },
    #[error(
        "the tree would be {depth} levels deep or have a path of {bytes} bytes, over {MAX_DEPTH} levels or {MAX_PATH_BYTES} bytes"
    )]
    TooDeep { depth: usize, bytes: usize },
    #[error("the update makes a change the tree does not allow: {0}")]
    Forbidden(String),
    #[error(transparent)]
    Doc(#[from] DocError),
}

/// What a tree document may hold, and what one update may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TreeLimits {
    /// Nodes ever created (deleted ones stay in the history as
    /// tombstones, so they count).
    pub max_nodes: usize,
    /// Loro operations in one update (each creation is 4: the node, its
    /// name, kind and assertion; a move or rename of a folder 2 per node
    /// shown in it).
    pub max_ops_per_update: u64,
}

impl Default for TreeLimits {
    fn default() -> Self {
        Self {
            max_nodes: 20_000,
            max_ops_per_update: 65_536,
        }
    }
}

/// A replica of a workspace's tree.
pub struct Tree {
    doc: LoroDoc,
    tree: LoroTree,
    /// The version the last [`Tree::take_local_update`] reached.
    sent: VersionVector,
}

impl Default for Tree {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Tree {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tree")
            .field("peer", &self.doc.peer_id())
            .field("nodes", &self.tree.nodes().len())
            .finish()
    }
}

/// One node as read from the document, before the view is computed.
struct Raw {
    kind: Option<Kind>,
    name: String,
    live: bool,
    /// The Loro parent; `None` at the top.
    parent: Option<NodeId>,
}

impl Tree {
    /// An empty tree with a fresh random peer id.
    pub fn new() -> Self {
        Self::wrap(LoroDoc::new())
    }

    fn wrap(doc: LoroDoc) -> Self {
        let tree = doc.get_tree(TREE_CONTAINER);
        // Siblings are ordered by name when shown: no fractional index
        // (it would add bytes to every creation and move).
        tree.disable_fractional_index();
        let sent = doc.oplog_vv();
        Self { doc, tree, sent }
    }

    /// A replica loaded from a snapshot, with a fresh peer id of its own.
    pub fn from_snapshot(bytes: &[u8]) -> Result<Self, DocError> {
        let doc = LoroDoc::new();
        doc.import(bytes)
            .map_err(|e| DocError::BadSnapshot(e.to_string()))?;
        Ok(Self::wrap(doc))
    }

    pub fn peer_id(&self) -> u64 {
        self.doc.peer_id()
    }

    /// Authors the next operations under `peer` (the welcome's).
    pub fn author_as(&mut self, peer: u64) -> Result<(), DocError> {
        crate::author_as(&self.doc, peer)
    }

    /// This replica's version vector, encoded.
    pub fn version(&self) -> Vec<u8> {
        self.doc.oplog_vv().encode()
    }

    /// Authors the next operations under a fresh random peer id: a client
    /// offline, whose next welcome gives it the session's id again (as
    /// `SharedDoc::author_fresh`).
    pub fn author_fresh(&mut self) {
        self.doc.commit();
        let _ = self.doc.set_peer_id(LoroDoc::new().peer_id());
    }

    /// Whether a replica at `version` has everything this one has (nothing
    /// to send to it).
    pub fn is_covered_by(&self, version: &[u8]) -> Result<bool, DocError> {
        let vv = VersionVector::decode(version).map_err(|e| DocError::BadVersion(e.to_string()))?;
        Ok(self.doc.oplog_vv() <= vv)
    }

    /// Counts everything this replica holds as sent: the next
    /// [`Self::take_local_update`] carries only what is done after this.
    pub fn mark_all_sent(&mut self) {
        self.doc.commit();
        self.sent = self.doc.oplog_vv();
    }

    /// The whole document, history included.
    pub fn snapshot(&self) -> Result<Vec<u8>, DocError> {
        self.doc
            .export(ExportMode::Snapshot)
            .map_err(|e| DocError::Export(e.to_string()))
    }

    /// Everything this replica has that a replica at `version` lacks.
    pub fn updates_since(&self, version: &[u8]) -> Result<Vec<u8>, DocError> {
        let vv = VersionVector::decode(version).map_err(|e| DocError::BadVersion(e.to_string()))?;
        self.doc
            .export(ExportMode::updates(&vv))
            .map_err(|e| DocError::BadVersion(e.to_string()))
    }

    /// Whether nothing was ever done to this tree (a room that is not a
    /// workspace yet).
    pub fn is_empty(&self) -> bool {
        self.doc.oplog_vv().is_empty()
    }

    /// Whether `id` is a file of this tree, shown or not. A deleted file
    /// stays in the tree's history, and so does its document: a member may
    /// still be typing in it (its editor keeps an unsaved copy), so a server
    /// accepts its updates while this holds.
    pub fn has_file(&self, id: NodeId) -> bool {
        let id = id.to_loro();
        self.tree.contains(id)
            && self.tree.get_meta(id).ok().and_then(|m| m.get(KIND)).is_some_and(|v| {
                matches!(v, ValueOrContainer::Value(LoroValue::String(s)) if Kind::parse(&s) == Some(Kind::File))
            })
    }

    /// The local operations since the last call, as one update to send.
    pub fn take_local_update(&mut self) -> Option<Vec<u8>> {
        self.doc.commit();
        let now = self.doc.oplog_vv();
        if now == self.sent {
            return None;
        }
        let bytes = self.doc.export(ExportMode::updates(&self.sent)).ok()?;
        self.sent = now;
        Some(bytes)
    }

    /// Merges an update relayed by the server (which checked it). Returns
    /// whether it brought anything new.
    pub fn import(&mut self, bytes: &[u8]) -> Result<bool, DocError> {
        let before = self.doc.oplog_vv();
        let status = self
            .doc
            .import(bytes)
            .map_err(|e| DocError::BadUpdate(e.to_string()))?;
        if status.pending.is_some() {
            return Err(DocError::MissingDependencies);
        }
        let now = self.doc.oplog_vv();
        let changed = now != before;
        if changed {
            // What came from elsewhere is not sent back; my own entry of
            // `sent` stays as it was.
            let me = self.doc.peer_id();
            let mut sent = now;
            match self.sent.get(&me).copied() {
                Some(c) => {
                    sent.insert(me, c);
                }
                None => {
                    sent.remove(&me);
                }
            }
            self.sent = sent;
        }
        Ok(changed)
    }

    /// Merges a member's update as a server does: refused before import
    /// when it carries more than `limits.max_ops_per_update` new operations
    /// (read from its header by `info`) or depends on changes this tree
    /// lacks; rolled back after import when any of its operations is not
    /// one the tree allows (see the module doc) or the tree would exceed
    /// `limits.max_nodes`. Returns whether it brought anything new.
    pub fn import_checked(
        &mut self,
        bytes: &[u8],
        info: &UpdateInfo,
        limits: &TreeLimits,
    ) -> Result<bool, TreeError> {
        let before = self.doc.oplog_vv();
        if !info.applies_to(&before) {
            return Err(DocError::MissingDependencies.into());
        }
        let new: Vec<PeerSpan> = info.new_to(&before).collect();
        if new.is_empty() {
            return Ok(false);
        }
        // Counters count operations: the update's cost is known here.
        let ops: u64 = new
            .iter()
            .map(|s| {
                let from = before.get(&s.peer).copied().unwrap_or(0).max(s.start);
                u64::try_from(s.end.saturating_sub(from)).unwrap_or(0)
            })
            .sum();
        if ops > limits.max_ops_per_update {
            return Err(TreeError::TooManyOps {
                ops,
                max: limits.max_ops_per_update,
            });
        }
        let status = self
            .doc
            .import(bytes)
            .map_err(|e| DocError::BadUpdate(e.to_string()))?;
        let refused = if status.pending.is_some() {
            Some(DocError::MissingDependencies.into())
        } else {
            self.check_new(&new, &before, limits).err()
        };
        if let Some(e) = refused {
            self.roll_back_to(&before)?;
            return Err(e);
        }
        Ok(true)
    }

    /// Checks every operation of the changes in `spans` after `before`.
    fn check_new(
        &self,
        spans: &[PeerSpan],
        before: &VersionVector,
        limits: &TreeLimits,
    ) -> Result<(), TreeError> {
        let tree_id = self.tree.id();
        for s in spans {
            let from = before.get(&s.peer).copied().unwrap_or(0).max(s.start);
            for change in self
                .doc
                .export_json_in_id_span(loro::IdSpan::new(s.peer, from, s.end))
            {
                for op in change.ops {
                    check_op(&tree_id, &self.tree, &op.container, &op.content)?;
                }
            }
        }
        let nodes = self.tree.nodes().len();
        if nodes > limits.max_nodes {
            return Err(TreeError::TooManyNodes {
                nodes,
                max: limits.max_nodes,
            });
        }
        let (depth, bytes) = deepest(&self.read_raw());
        if depth > MAX_DEPTH || bytes > MAX_PATH_BYTES {
            return Err(TreeError::TooDeep { depth, bytes });
        }
        Ok(())
    }

    /// Forgets every change after `vv` (a refused update's).
    fn roll_back_to(&mut self, vv: &VersionVector) -> Result<(), DocError> {
        let frontiers = self.doc.vv_to_frontiers(vv);
        let doc = self
            .doc
            .fork_at(&frontiers)
            .map_err(|e| DocError::BadSnapshot(e.to_string()))?;
        let peer = self.doc.peer_id();
        let sent = std::mem::take(&mut self.sent);
        *self = Self::wrap(doc);
        let _ = self.doc.set_peer_id(peer);
        self.sent = sent;
        Ok(())
    }

    /// The key of an assertion made by the operation about to start: the
    /// id of its first Loro op, which no other operation has.
    fn next_assertion(&self) -> String {
        self.doc.commit();
        let peer = self.doc.peer_id();
        let counter = self.doc.oplog_vv().get(&peer).copied().unwrap_or(0);
        format!("{ASSERTION}{counter}@{peer}")
    }

    fn meta(&self, id: NodeId) -> Result<LoroMap, TreeError> {
        self.tree
            .get_meta(id.to_loro())
            .map_err(|_| TreeError::NoSuchNode(id))
    }

    /// Replaces the assertions `id` holds (those this replica sees) by
    /// `key`.
    fn assert_node(&self, id: NodeId, key: &str) -> Result<(), TreeError> {
        let meta = self.meta(id)?;
        retract(&meta)?;
        meta.insert(key, true).map_err(loro_err)?;
        Ok(())
    }

    /// Creates a file or folder named `name` in the folder `parent` (`None`:
    /// at the top). The name must be valid and not shown in that folder.
    pub fn create(
        &mut self,
        parent: Option<NodeId>,
        name: &str,
        kind: Kind,
    ) -> Result<NodeId, TreeError> {
        let view = self.entries();
        check_parent(&view, parent)?;
        check_new_name(&view, parent, name, None)?;
        check_depth(&view, parent, name, None)?;
        let key = self.next_assertion();
        let loro_parent: TreeParentId = parent.map(NodeId::to_loro).into();
        let id = NodeId::from_loro(self.tree.create(loro_parent).map_err(loro_err)?);
        let meta = self.meta(id)?;
        meta.insert(NAME, name).map_err(loro_err)?;
        meta.insert(KIND, kind.as_str()).map_err(loro_err)?;
        meta.insert(&key, true).map_err(loro_err)?;
        self.doc.commit();
        Ok(id)
    }

    /// Creates many files and folders at once, by path (names joined by
    /// `/`), each folder before what it holds: what sharing a folder does.
    /// The tree is read once, so this costs time linear in the paths, where
    /// [`Self::create`] in a loop would read the whole tree each time.
    /// A path whose folder is neither shown nor earlier in `items`, or that
    /// is taken, refuses the whole call before anything changes.
    pub fn create_paths(&mut self, items: &[(&str, Kind)]) -> Result<Vec<NodeId>, TreeError> {
        let view = self.entries();
        let mut at: HashMap<String, (Option<NodeId>, Kind)> = view
            .iter()
            .map(|e| (e.path.clone(), (Some(e.id), e.kind)))
            .collect();
        // Checked whole first, so a refusal changes nothing.
        let mut planned: HashMap<&str, Kind> = HashMap::new();
        for &(path, kind) in items {
            let (folder, name) = match path.rsplit_once('/') {
                Some((f, n)) => (Some(f), n),
                None => (None, path),
            };
            if !valid_name(name) {
                return Err(TreeError::InvalidName(name.chars().take(300).collect()));
            }
            if let Some(f) = folder {
                let folder_kind = at.get(f).map(|(_, k)| *k).or(planned.get(f).copied());
                if folder_kind != Some(Kind::Dir) {
                    return Err(TreeError::InvalidName(path.chars().take(300).collect()));
                }
            }
            if path.len() > MAX_PATH_BYTES || path.matches('/').count() >= MAX_DEPTH {
                return Err(TreeError::TooDeep {
                    depth: path.matches('/').count() + 1,
                    bytes: path.len(),
                });
            }
            if at.contains_key(path) || planned.insert(path, kind).is_some() {
                return Err(TreeError::NameTaken(path.to_owned()));
            }
        }
        let key = self.next_assertion();
        let mut out = Vec::with_capacity(items.len());
        for &(path, kind) in items {
            let (parent, name) = match path.rsplit_once('/') {
                Some((f, n)) => (at.get(f).and_then(|(id, _)| *id), n),
                None => (None, path),
            };
            let loro_parent: TreeParentId = parent.map(NodeId::to_loro).into();
            let id = NodeId::from_loro(self.tree.create(loro_parent).map_err(loro_err)?);
            let meta = self.meta(id)?;
            meta.insert(NAME, name).map_err(loro_err)?;
            meta.insert(KIND, kind.as_str()).map_err(loro_err)?;
            meta.insert(&key, true).map_err(loro_err)?;
            at.insert(path.to_owned(), (Some(id), kind));
            out.push(id);
        }
        self.doc.commit();
        Ok(out)
    }

    /// Renames a shown file or folder; asserts it and everything shown in
    /// it (a concurrent delete keeps them).
    pub fn rename(&mut self, id: NodeId, name: &str) -> Result<(), TreeError> {
        let view = self.entries();
        let entry = find(&view, id)?;
        if entry.name == name {
            return Ok(());
        }
        check_new_name(&view, entry.parent, name, Some(id))?;
        check_depth(&view, entry.parent, name, Some(entry))?;
        let key = self.next_assertion();
        self.meta(id)?.insert(NAME, name).map_err(loro_err)?;
        for node in subtree(&view, id) {
            self.assert_node(node, &key)?;
        }
        self.doc.commit();
        Ok(())
    }

    /// Moves a shown file or folder into the folder `parent` (`None`: to
    /// the top), keeping its name; asserts it and everything shown in it.
    pub fn move_to(&mut self, id: NodeId, parent: Option<NodeId>) -> Result<(), TreeError> {
        let view = self.entries();
        let entry = find(&view, id)?;
        check_parent(&view, parent)?;
        let nodes = subtree(&view, id);
        if parent.is_some_and(|p| nodes.contains(&p)) {
            return Err(TreeError::IntoItself);
        }
        if entry.parent == parent {
            return Ok(());
        }
        check_new_name(&view, parent, &entry.name, Some(id))?;
        check_depth(&view, parent, &entry.name, Some(entry))?;
        let key = self.next_assertion();
        // Its shown name may differ from the stored one (sanitized or
        // told apart from a sibling's): keep the one shown.
        self.meta(id)?
            .insert(NAME, entry.name.as_str())
            .map_err(loro_err)?;
        let loro_parent: TreeParentId = parent.map(NodeId::to_loro).into();
        self.tree
            .mov(id.to_loro(), loro_parent)
            .map_err(|_| TreeError::IntoItself)?;
        for node in nodes {
            self.assert_node(node, &key)?;
        }
        self.doc.commit();
        Ok(())
    }

    /// Deletes a shown file or folder: retracts the assertions of it and of
    /// everything shown in it. Returns the files it deleted.
    pub fn delete(&mut self, id: NodeId) -> Result<Vec<NodeId>, TreeError> {
        let view = self.entries();
        find(&view, id)?;
        let by_id: HashMap<NodeId, &Entry> = view.iter().map(|e| (e.id, e)).collect();
        let nodes = subtree(&view, id);
        for &node in &nodes {
            retract(&self.meta(node)?)?;
        }
        self.doc.commit();
        Ok(nodes
            .into_iter()
            .filter(|n| by_id.get(n).is_some_and(|e| e.kind == Kind::File))
            .collect())
    }

    /// The shown entry at `path` (names joined by `/`, as in [`Entry::path`]).
    pub fn find_path(&self, path: &str) -> Option<Entry> {
        self.entries().into_iter().find(|e| e.path == path)
    }

    /// The shown entry of `id`.
    pub fn get(&self, id: NodeId) -> Option<Entry> {
        self.entries().into_iter().find(|e| e.id == id)
    }

    /// Every shown file and folder, parents before children, siblings by
    /// name. Every replica with the same operations computes the same list.
    pub fn entries(&self) -> Vec<Entry> {
        let raw = self.read_raw();
        view_of(&raw)
    }

    /// Reads every node that is not in Loro's deleted subtree.
    fn read_raw(&self) -> HashMap<NodeId, Raw> {
        let mut raw = HashMap::new();
        for node in self.tree.get_nodes(false) {
            let id = NodeId::from_loro(node.id);
            let parent = match node.parent {
                TreeParentId::Node(p) => Some(NodeId::from_loro(p)),
                TreeParentId::Root => None,
                _ => continue,
            };
            let (mut kind, mut name, mut live) = (None, String::new(), false);
            if let Ok(meta) = self.tree.get_meta(node.id) {
                meta.for_each(|key, value| {
                    let text = match &value {
                        ValueOrContainer::Value(LoroValue::String(s)) => Some(s.to_string()),
                        _ => None,
                    };
                    if key == NAME {
                        name = text.unwrap_or_default();
                    } else if key == KIND {
                        kind = text.as_deref().and_then(Kind::parse);
                    } else if key.starts_with(ASSERTION) {
                        live = true;
                    }
                });
            }
            raw.insert(
                id,
                Raw {
                    kind,
                    name,
                    live,
                    parent,
                },
            );
        }
        raw
    }
}

/// Whether `name` may be given to a file or folder: 1 to
/// [`MAX_NAME_BYTES`] bytes, no `/` and no NUL, not `.` or `..`.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_BYTES
        && name != "."
        && name != ".."
        && !name.contains(['/', '\0'])
}

/// `name` made a valid one: `/` and NUL become `_`, `.` and `..` and the
/// empty name `_`, cut to [`MAX_NAME_BYTES`] on a character boundary.
pub fn sanitize_name(name: &str) -> String {
    if valid_name(name) {
        return name.to_owned();
    }
    let mut out: String = name
        .chars()
        .map(|c| if c == '/' || c == '\0' { '_' } else { c })
        .collect();
    if out.len() > MAX_NAME_BYTES {
        let mut cut = MAX_NAME_BYTES;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
    }
    if out.is_empty() || out == "." || out == ".." {
        out = "_".into();
    }
    out
}

/// Computes the shown entries from the nodes read.
fn view_of(raw: &HashMap<NodeId, Raw>) -> Vec<Entry> {
    // A node's folder: its nearest ancestor that is a folder (a node put
    // under a file, which only a hostile peer does, shows beside it).
    let folders = effective_folders(raw);
    let folder_of = |id: NodeId| -> Option<NodeId> { folders.get(&id).copied().flatten() };
    // Shown: live nodes of a known kind, and the folders above them.
    let mut shown: HashSet<NodeId> = HashSet::new();
    let mut ids: Vec<NodeId> = raw.keys().copied().collect();
    ids.sort_unstable();
    for &id in &ids {
        let r = &raw[&id];
        if !r.live || r.kind.is_none() {
            continue;
        }
        let mut at = Some(id);
        while let Some(n) = at {
            if !shown.insert(n) {
                break;
            }
            at = folder_of(n);
        }
    }
    let mut children: BTreeMap<Option<NodeId>, Vec<NodeId>> = BTreeMap::new();
    for &id in &ids {
        if shown.contains(&id) {
            children.entry(folder_of(id)).or_default().push(id);
        }
    }
    // Names per folder, told apart: sanitized names first, the smallest id
    // keeping a name several share, the others `name~ID`.
    let mut names: HashMap<NodeId, String> = HashMap::new();
    for kids in children.values() {
        let mut taken: HashSet<String> = HashSet::new();
        let mut by_name: Vec<(String, NodeId)> = kids
            .iter()
            .map(|&k| (sanitize_name(&raw[&k].name), k))
            .collect();
        by_name.sort();
        let mut later = Vec::new();
        for (name, id) in by_name {
            if taken.insert(name.clone()) {
                names.insert(id, name);
            } else {
                later.push((name, id));
            }
        }
        for (name, id) in later {
            let mut candidate = sanitize_name(&format!("{name}~{id}"));
            while !taken.insert(candidate.clone()) {
                candidate = sanitize_name(&format!("{candidate}~"));
            }
            names.insert(id, candidate);
        }
    }
    // Depth first: each folder's children right after it, by name.
    for kids in children.values_mut() {
        kids.sort_by(|a, b| names[a].cmp(&names[b]));
    }
    let mut out = Vec::with_capacity(shown.len());
    let mut stack: Vec<(NodeId, Option<NodeId>, String)> = Vec::new();
    let push_kids = |stack: &mut Vec<(NodeId, Option<NodeId>, String)>, folder, prefix: &str| {
        for k in children.get(&folder).into_iter().flatten().rev() {
            let name = &names[k];
            let path = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}/{name}")
            };
            stack.push((*k, folder, path));
        }
    };
    push_kids(&mut stack, None, "");
    while let Some((id, parent, path)) = stack.pop() {
        let r = &raw[&id];
        let kind = if r.kind == Some(Kind::File) {
            Kind::File
        } else {
            Kind::Dir
        };
        if kind == Kind::Dir {
            push_kids(&mut stack, Some(id), &path);
        }
        out.push(Entry {
            id,
            kind,
            name: names[&id].clone(),
            parent,
            path,
            live: r.live,
        });
    }
    out
}

/// Each node's folder: its nearest ancestor that is a folder (a node put
/// under a file, which only a hostile peer does, shows beside it), `None`
/// at the top. Linear in the nodes: each chain is walked once.
fn effective_folders(raw: &HashMap<NodeId, Raw>) -> HashMap<NodeId, Option<NodeId>> {
    let is_dir = |id: &NodeId| raw.get(id).is_some_and(|r| r.kind != Some(Kind::File));
    let mut memo: HashMap<NodeId, Option<NodeId>> = HashMap::with_capacity(raw.len());
    for &start in raw.keys() {
        let mut chain = Vec::new();
        let mut at = start;
        let found = loop {
            if let Some(f) = memo.get(&at) {
                break *f;
            }
            match raw.get(&at).and_then(|r| r.parent) {
                None => break None,
                Some(p) if is_dir(&p) => break Some(p),
                Some(p) => {
                    chain.push(at);
                    // Loro's tree has no cycles; the bound makes that plain.
                    if chain.len() > raw.len() {
                        break None;
                    }
                    at = p;
                }
            }
        };
        memo.insert(at, found);
        for n in chain {
            memo.insert(n, found);
        }
    }
    memo
}

/// The deepest node's depth and the longest path's bytes, over Loro's own
/// structure (every node, shown or not: a concurrent assertion can show
/// any of them later), from the stored names. Linear in the nodes.
fn deepest(raw: &HashMap<NodeId, Raw>) -> (usize, usize) {
    let mut memo: HashMap<NodeId, (usize, usize)> = HashMap::with_capacity(raw.len());
    let mut worst = (0, 0);
    for &start in raw.keys() {
        let mut chain = Vec::new();
        let mut at = Some(start);
        let mut base = (0, 0);
        while let Some(n) = at {
            if let Some(&known) = memo.get(&n) {
                base = known;
                break;
            }
            chain.push(n);
            if chain.len() > raw.len() {
                break;
            }
            at = raw.get(&n).and_then(|r| r.parent);
        }
        for n in chain.into_iter().rev() {
            let len = raw.get(&n).map_or(0, |r| r.name.len());
            let sep = usize::from(base.0 > 0);
            base = (base.0 + 1, base.1 + sep + len);
            memo.insert(n, base);
            worst = (worst.0.max(base.0), worst.1.max(base.1));
        }
    }
    worst
}

/// Whether one operation of a member's tree update is allowed: creating or
/// moving a node (deleting one through Loro is not: deletes retract
/// assertions), and on a node's metadata map setting `name` (a string of
/// at most [`MAX_NAME_BYTES`]), `kind` (`"file"` or `"dir"`) or an
/// assertion key (`true`), or deleting any key. Nothing else: no other
/// container, no nested containers, no other values.
fn check_op(
    tree_id: &ContainerID,
    tree: &LoroTree,
    container: &ContainerID,
    content: &JsonOpContent,
) -> Result<(), TreeError> {
    let forbidden = |what: String| Err(TreeError::Forbidden(what));
    if container == tree_id {
        return match content {
            JsonOpContent::Tree(JsonTreeOp::Create { .. } | JsonTreeOp::Move { .. }) => Ok(()),
            JsonOpContent::Tree(JsonTreeOp::Delete { .. }) => {
                forbidden("a Loro tree delete (delete by retracting assertions)".into())
            }
            _ => forbidden(format!("an operation of another kind on {container}")),
        };
    }
    let ContainerID::Normal {
        peer,
        counter,
        container_type: ContainerType::Map,
    } = container
    else {
        return forbidden(format!("a change to {container}"));
    };
    let node = TreeID {
        peer: *peer,
        counter: *counter,
    };
    if !tree.contains(node) {
        return forbidden(format!(
            "a change to {container}, which is no node's metadata"
        ));
    }
    match content {
        JsonOpContent::Map(JsonMapOp::Delete { key }) if key.len() <= MAX_NAME_BYTES => Ok(()),
        JsonOpContent::Map(JsonMapOp::Insert { key, value }) => {
            let ok = match (key.as_str(), value) {
                (NAME, LoroValue::String(s)) => s.len() <= MAX_NAME_BYTES,
                (KIND, LoroValue::String(s)) => Kind::parse(s).is_some(),
                (k, LoroValue::Bool(true)) => {
                    k.starts_with(ASSERTION) && k.len() <= MAX_ASSERTION_BYTES
                }
                _ => false,
            };
            if ok {
                Ok(())
            } else {
                forbidden(format!("the metadata key {key:?} with that value"))
            }
        }
        _ => forbidden(format!("an operation of another kind on {container}")),
    }
}

/// Deletes every assertion key of a node's metadata.
fn retract(meta: &LoroMap) -> Result<(), TreeError> {
    let keys: Vec<String> = meta
        .keys()
        .filter(|k| k.starts_with(ASSERTION))
        .map(|k| k.to_string())
        .collect();
    for key in keys {
        meta.delete(&key).map_err(loro_err)?;
    }
    Ok(())
}

fn loro_err(e: loro::LoroError) -> TreeError {
    TreeError::Doc(DocError::BadUpdate(e.to_string()))
}

fn find(view: &[Entry], id: NodeId) -> Result<&Entry, TreeError> {
    view.iter()
        .find(|e| e.id == id)
        .ok_or(TreeError::NoSuchNode(id))
}

fn check_parent(view: &[Entry], parent: Option<NodeId>) -> Result<(), TreeError> {
    match parent {
        None => Ok(()),
        Some(p) => match find(view, p)?.kind {
            Kind::Dir => Ok(()),
            Kind::File => Err(TreeError::NotAFolder(p)),
        },
    }
}

/// `name` is valid and no other shown entry of `parent` has it.
fn check_new_name(
    view: &[Entry],
    parent: Option<NodeId>,
    name: &str,
    except: Option<NodeId>,
) -> Result<(), TreeError> {
    if !valid_name(name) {
        return Err(TreeError::InvalidName(name.chars().take(300).collect()));
    }
    if view
        .iter()
        .any(|e| e.parent == parent && e.name == name && Some(e.id) != except)
    {
        return Err(TreeError::NameTaken(name.to_owned()));
    }
    Ok(())
}

/// Whether `name` in `parent`, holding what `moved` holds when it is a
/// rename or a move, stays within [`MAX_DEPTH`] and [`MAX_PATH_BYTES`].
fn check_depth(
    view: &[Entry],
    parent: Option<NodeId>,
    name: &str,
    moved: Option<&Entry>,
) -> Result<(), TreeError> {
    let depth_of = |path: &str| path.matches('/').count() + 1;
    let (mut depth, mut bytes) = match parent {
        None => (1, name.len()),
        Some(p) => {
            let folder = find(view, p)?;
            (
                depth_of(&folder.path) + 1,
                folder.path.len() + 1 + name.len(),
            )
        }
    };
    if let Some(m) = moved {
        let by_id: HashMap<NodeId, &Entry> = view.iter().map(|e| (e.id, e)).collect();
        let (mut extra_depth, mut extra_bytes) = (0, 0);
        for e in subtree(view, m.id).iter().filter_map(|id| by_id.get(id)) {
            extra_depth = extra_depth.max(depth_of(&e.path) - depth_of(&m.path));
            extra_bytes = extra_bytes.max(e.path.len() - m.path.len());
        }
        depth += extra_depth;
        bytes += extra_bytes;
    }
    if depth > MAX_DEPTH || bytes > MAX_PATH_BYTES {
        return Err(TreeError::TooDeep { depth, bytes });
    }
    Ok(())
}

/// `id` and every shown entry under it.
fn subtree(view: &[Entry], id: NodeId) -> Vec<NodeId> {
    let mut kids: HashMap<NodeId, Vec<NodeId>> = HashMap::new();
    for e in view {
        if let Some(p) = e.parent {
            kids.entry(p).or_default().push(e.id);
        }
    }
    let mut out = vec![id];
    let mut at = 0;
    while at < out.len() {
        if let Some(list) = kids.get(&out[at]) {
            out.extend(list);
        }
        at += 1;
    }
    out
}

/// The id of the first op an operation made at `tree` now would have: for
/// tests that track which operations a delete saw.
#[doc(hidden)]
pub fn next_op_id(tree: &Tree) -> (u64, i32) {
    tree.doc.commit();
    let peer = tree.doc.peer_id();
    (peer, tree.doc.oplog_vv().get(&peer).copied().unwrap_or(0))
}

/// Whether `tree` has the op `id` (for the same tests).
#[doc(hidden)]
pub fn has_op(tree: &Tree, id: (u64, i32)) -> bool {
    tree.doc.oplog_vv().includes_id(ID::new(id.0, id.1))
}
