//! The workspace tree: what each operation does, the rule for concurrent
//! deletes, the checks a server applies to a member's tree update, and a
//! property test of random concurrent schedules across three replicas.

#![allow(clippy::unwrap_used)]

use std::collections::{HashMap, HashSet};

use collab_doc::UpdateInfo;
use collab_doc::tree::{
    Entry, Kind, NodeId, Tree, TreeError, TreeLimits, has_op, next_op_id, sanitize_name, valid_name,
};
use loro::{ExportMode, LoroDoc};
use proptest::prelude::*;

/// Brings `b` everything `a` has and `a` everything `b` has.
fn sync(a: &mut Tree, b: &mut Tree) {
    let to_b = a.updates_since(&b.version()).unwrap();
    let to_a = b.updates_since(&a.version()).unwrap();
    b.import(&to_b).unwrap();
    a.import(&to_a).unwrap();
}

fn paths(t: &Tree) -> Vec<String> {
    t.entries().into_iter().map(|e| e.path).collect()
}

fn id_of(t: &Tree, path: &str) -> NodeId {
    t.find_path(path)
        .unwrap_or_else(|| panic!("{path} not in {:?}", paths(t)))
        .id
}

/// `src/{a.rs,b.rs}`, `README`, on one replica and a copy.
fn two_replicas() -> (Tree, Tree) {
    let mut a = Tree::new();
    let src = a.create(None, "src", Kind::Dir).unwrap();
    a.create(Some(src), "a.rs", Kind::File).unwrap();
    a.create(Some(src), "b.rs", Kind::File).unwrap();
    a.create(None, "README", Kind::File).unwrap();
    let mut b = Tree::new();
    sync(&mut a, &mut b);
    (a, b)
}

#[test]
fn create_rename_move_delete() {
    let (mut t, _) = two_replicas();
    assert_eq!(paths(&t), ["README", "src", "src/a.rs", "src/b.rs"]);
    let a = id_of(&t, "src/a.rs");
    t.rename(a, "main.rs").unwrap();
    let lib = t.create(None, "lib", Kind::Dir).unwrap();
    t.move_to(id_of(&t, "src"), Some(lib)).unwrap();
    assert_eq!(
        paths(&t),
        [
            "README",
            "lib",
            "lib/src",
            "lib/src/b.rs",
            "lib/src/main.rs"
        ]
    );
    assert_eq!(t.get(a).unwrap().path, "lib/src/main.rs", "the id stays");
    let b = id_of(&t, "lib/src/b.rs");
    let deleted = t.delete(lib).unwrap();
    assert_eq!(
        deleted.into_iter().collect::<HashSet<_>>(),
        HashSet::from([a, b])
    );
    assert_eq!(paths(&t), ["README"]);
}

#[test]
fn local_operations_are_checked() {
    let (mut t, _) = two_replicas();
    let src = id_of(&t, "src");
    let readme = id_of(&t, "README");
    assert_eq!(
        t.create(Some(src), "a.rs", Kind::File),
        Err(TreeError::NameTaken("a.rs".into()))
    );
    for bad in ["", ".", "..", "a/b", "nul\0", &"x".repeat(256)] {
        assert!(matches!(
            t.create(None, bad, Kind::File),
            Err(TreeError::InvalidName(_))
        ));
    }
    assert_eq!(
        t.create(Some(readme), "x", Kind::File),
        Err(TreeError::NotAFolder(readme))
    );
    let inner = t.create(Some(src), "inner", Kind::Dir).unwrap();
    assert_eq!(t.move_to(src, Some(inner)), Err(TreeError::IntoItself));
    assert_eq!(t.move_to(src, Some(src)), Err(TreeError::IntoItself));
    assert_eq!(
        t.rename(readme, "src"),
        Err(TreeError::NameTaken("src".into()))
    );
    t.delete(readme).unwrap();
    assert_eq!(t.rename(readme, "x"), Err(TreeError::NoSuchNode(readme)));
}

#[test]
fn a_concurrent_rename_keeps_a_deleted_file() {
    let (mut a, mut b) = two_replicas();
    let file = id_of(&a, "src/a.rs");
    b.rename(file, "kept.rs").unwrap();
    a.delete(id_of(&a, "src")).unwrap();
    sync(&mut a, &mut b);
    assert_eq!(a.entries(), b.entries());
    assert_eq!(paths(&a), ["README", "src", "src/kept.rs"]);
    let src = a.find_path("src").unwrap();
    assert!(!src.live, "the folder is shown only for what it holds");
    // Deleted again, now that the rename is seen: gone.
    b.delete(src.id).unwrap();
    sync(&mut a, &mut b);
    assert_eq!(paths(&a), ["README"]);
    assert_eq!(paths(&b), ["README"]);
}

#[test]
fn a_file_created_in_a_concurrently_deleted_folder_stays() {
    let (mut a, mut b) = two_replicas();
    let src = id_of(&b, "src");
    b.create(Some(src), "new.rs", Kind::File).unwrap();
    a.delete(src).unwrap();
    sync(&mut a, &mut b);
    assert_eq!(paths(&a), ["README", "src", "src/new.rs"]);
    assert_eq!(a.entries(), b.entries());
}

#[test]
fn moving_a_folder_out_of_a_concurrently_deleted_one_keeps_its_files() {
    let (mut a, mut b) = two_replicas();
    let src = id_of(&a, "src");
    let inner = a.create(Some(src), "inner", Kind::Dir).unwrap();
    a.create(Some(inner), "deep.rs", Kind::File).unwrap();
    sync(&mut a, &mut b);
    b.move_to(inner, None).unwrap();
    a.delete(src).unwrap();
    sync(&mut a, &mut b);
    assert_eq!(paths(&a), ["README", "inner", "inner/deep.rs"]);
    assert_eq!(a.entries(), b.entries());
}

#[test]
fn a_delete_that_saw_everything_wins() {
    let (mut a, mut b) = two_replicas();
    let file = id_of(&a, "src/a.rs");
    a.rename(file, "x.rs").unwrap();
    sync(&mut a, &mut b);
    b.delete(id_of(&b, "src")).unwrap();
    sync(&mut a, &mut b);
    assert_eq!(paths(&a), ["README"]);
}

#[test]
fn concurrent_equal_names_are_told_apart_the_same_way_everywhere() {
    let (mut a, mut b) = two_replicas();
    let x = a.create(None, "notes.md", Kind::File).unwrap();
    let y = b.create(None, "notes.md", Kind::File).unwrap();
    sync(&mut a, &mut b);
    assert_eq!(a.entries(), b.entries());
    let (keep, other) = if x < y { (x, y) } else { (y, x) };
    assert_eq!(a.get(keep).unwrap().name, "notes.md");
    assert_eq!(a.get(other).unwrap().name, format!("notes.md~{other}"));
    // Renaming the second one to its shown name makes that name its own.
    a.rename(other, "notes2.md").unwrap();
    sync(&mut a, &mut b);
    assert_eq!(b.get(other).unwrap().path, "notes2.md");
}

#[test]
fn concurrent_moves_into_each_other_make_no_cycle() {
    let mut a = Tree::new();
    let x = a.create(None, "x", Kind::Dir).unwrap();
    let y = a.create(None, "y", Kind::Dir).unwrap();
    a.create(Some(x), "fx", Kind::File).unwrap();
    a.create(Some(y), "fy", Kind::File).unwrap();
    let mut b = Tree::new();
    sync(&mut a, &mut b);
    a.move_to(x, Some(y)).unwrap();
    b.move_to(y, Some(x)).unwrap();
    sync(&mut a, &mut b);
    assert_eq!(a.entries(), b.entries());
    let p = paths(&a);
    assert!(
        p == ["x", "x/fx", "x/y", "x/y/fy"] || p == ["y", "y/fy", "y/x", "y/x/fx"],
        "{p:?}"
    );
}

#[test]
fn names_from_hostile_peers_are_shown_safe() {
    assert!(valid_name("a b.é"));
    assert!(!valid_name("../etc"));
    assert_eq!(sanitize_name(".."), "_");
    assert_eq!(sanitize_name("a/b\0c"), "a_b_c");
    assert_eq!(sanitize_name(&"é".repeat(200)).len(), 254);
    // A name written directly into the document, past the local checks.
    let mut t = Tree::new();
    let id = t.create(None, "ok", Kind::File).unwrap();
    let doc = LoroDoc::new();
    doc.import(&t.snapshot().unwrap()).unwrap();
    let tree = doc.get_tree("tree");
    let meta = tree
        .get_meta(loro::TreeID {
            peer: id.peer,
            counter: id.counter,
        })
        .unwrap();
    meta.insert("name", "../../etc/passwd").unwrap();
    doc.commit();
    t.import(
        &doc.export(ExportMode::updates(
            &loro::VersionVector::decode(&t.version()).unwrap(),
        ))
        .unwrap(),
    )
    .unwrap();
    assert_eq!(paths(&t), [".._.._etc_passwd"]);
}

#[test]
fn node_ids_are_written_counter_at_peer() {
    let id = NodeId {
        peer: 18_446_744_073_709_551_614,
        counter: 7,
    };
    assert_eq!(id.to_string(), "7@18446744073709551614");
    assert_eq!(id.to_string().parse::<NodeId>().unwrap(), id);
    for bad in [
        "",
        "7",
        "@1",
        "7@",
        "-1@2",
        "+1@2",
        "1@2@3",
        "1 @2",
        "2147483648@1",
        "1@18446744073709551616",
        "main",
        "tree",
    ] {
        assert!(bad.parse::<NodeId>().is_err(), "{bad}");
    }
}

/// A member's update made by `author` on a copy of `base`.
fn member_update(base: &Tree, author: impl FnOnce(&LoroDoc)) -> Vec<u8> {
    let doc = LoroDoc::new();
    doc.import(&base.snapshot().unwrap()).unwrap();
    let from = doc.oplog_vv();
    author(&doc);
    doc.commit();
    doc.export(ExportMode::updates(&from)).unwrap()
}

fn checked(t: &mut Tree, bytes: &[u8], limits: &TreeLimits) -> Result<bool, TreeError> {
    let info = UpdateInfo::read(bytes).unwrap();
    t.import_checked(bytes, &info, limits)
}

#[test]
fn a_server_refuses_tree_updates_it_does_not_allow_and_keeps_nothing() {
    let (mut server, mut member) = two_replicas();
    let limits = TreeLimits::default();
    let before = server.entries();
    let version = server.version();
    let readme = id_of(&server, "README");
    let loro_id = loro::TreeID {
        peer: readme.peer,
        counter: readme.counter,
    };
    let refused: Vec<(&str, Vec<u8>)> = vec![
        (
            "a Loro delete",
            member_update(&server, |d| d.get_tree("tree").delete(loro_id).unwrap()),
        ),
        (
            "text in the tree document",
            member_update(&server, |d| {
                d.get_text("text").insert(0, "x").unwrap();
            }),
        ),
        (
            "another metadata key",
            member_update(&server, |d| {
                d.get_tree("tree")
                    .get_meta(loro_id)
                    .unwrap()
                    .insert("mode", 0o755)
                    .unwrap();
            }),
        ),
        (
            "a kind that is none",
            member_update(&server, |d| {
                d.get_tree("tree")
                    .get_meta(loro_id)
                    .unwrap()
                    .insert("kind", "socket")
                    .unwrap();
            }),
        ),
        (
            "a long name",
            member_update(&server, |d| {
                d.get_tree("tree")
                    .get_meta(loro_id)
                    .unwrap()
                    .insert("name", "x".repeat(256))
                    .unwrap();
            }),
        ),
        (
            "an assertion that is not true",
            member_update(&server, |d| {
                d.get_tree("tree")
                    .get_meta(loro_id)
                    .unwrap()
                    .insert("+1@2", "yes")
                    .unwrap();
            }),
        ),
        (
            "a nested container",
            member_update(&server, |d| {
                d.get_tree("tree")
                    .get_meta(loro_id)
                    .unwrap()
                    .insert_container("+1@2", loro::LoroText::new())
                    .unwrap();
            }),
        ),
    ];
    for (what, bytes) in refused {
        let e = checked(&mut server, &bytes, &limits).unwrap_err();
        assert!(matches!(e, TreeError::Forbidden(_)), "{what}: {e}");
        assert_eq!(server.entries(), before, "{what}: rolled back");
        assert_eq!(server.version(), version, "{what}: rolled back");
    }
    // What an honest member sends goes in.
    member.create(None, "new", Kind::File).unwrap();
    let ok = member.take_local_update().unwrap();
    assert!(checked(&mut server, &ok, &limits).unwrap());
    assert!(!checked(&mut server, &ok, &limits).unwrap(), "nothing new");
    assert!(server.find_path("new").is_some());
}

#[test]
fn a_tree_update_is_refused_by_its_size_before_import_and_by_the_node_limit_after() {
    let (mut server, mut member) = two_replicas();
    for i in 0..10 {
        member.create(None, &format!("f{i}"), Kind::File).unwrap();
    }
    let update = member.take_local_update().unwrap();
    let small = TreeLimits {
        max_nodes: 1_000,
        max_ops_per_update: 39,
    };
    assert_eq!(
        checked(&mut server, &update, &small),
        Err(TreeError::TooManyOps { ops: 40, max: 39 })
    );
    let few = TreeLimits {
        max_nodes: 13,
        max_ops_per_update: 40,
    };
    assert_eq!(
        checked(&mut server, &update, &few),
        Err(TreeError::TooManyNodes { nodes: 14, max: 13 })
    );
    assert_eq!(paths(&server).len(), 4);
    assert!(checked(&mut server, &update, &TreeLimits::default()).unwrap());
    assert_eq!(paths(&server).len(), 14);
}

// ---- random concurrent schedules ----

#[derive(Debug, Clone)]
enum Step {
    Create {
        at: usize,
        parent: usize,
        name: u8,
        dir: bool,
    },
    Rename {
        at: usize,
        node: usize,
        name: u8,
    },
    Move {
        at: usize,
        node: usize,
        parent: usize,
    },
    Delete {
        at: usize,
        node: usize,
    },
    Sync {
        a: usize,
        b: usize,
    },
}

fn step() -> impl Strategy<Value = Step> {
    let r = 0..3usize;
    prop_oneof![
        3 => (r.clone(), any::<usize>(), 0..6u8, any::<bool>())
            .prop_map(|(at, parent, name, dir)| Step::Create { at, parent, name, dir }),
        2 => (r.clone(), any::<usize>(), 0..6u8).prop_map(|(at, node, name)| Step::Rename { at, node, name }),
        2 => (r.clone(), any::<usize>(), any::<usize>())
            .prop_map(|(at, node, parent)| Step::Move { at, node, parent }),
        2 => (r.clone(), any::<usize>()).prop_map(|(at, node)| Step::Delete { at, node }),
        3 => (r.clone(), r).prop_map(|(a, b)| Step::Sync { a, b }),
    ]
}

/// What the schedule did, to judge the result by the rule.
#[derive(Default)]
struct Record {
    /// Per node: the operations that asserted it (their first op's id).
    asserted: HashMap<NodeId, Vec<(u64, i32)>>,
    /// Per delete: the nodes it retracted and the replica that made it,
    /// kept to ask which operations that replica had seen.
    deletes: Vec<(HashSet<NodeId>, Tree)>,
}

fn shown_under(view: &[Entry], id: NodeId) -> Vec<NodeId> {
    let mut out = vec![id];
    let mut at = 0;
    while at < out.len() {
        let f = out[at];
        out.extend(view.iter().filter(|e| e.parent == Some(f)).map(|e| e.id));
        at += 1;
    }
    out
}

fn run(steps: &[Step]) -> Result<(), TestCaseError> {
    let mut trees = [Tree::new(), Tree::new(), Tree::new()];
    let mut rec = Record::default();
    let pick = |view: &[Entry], n: usize| (!view.is_empty()).then(|| view[n % view.len()].clone());
    for s in steps {
        match *s {
            Step::Sync { a, b } if a != b => {
                let (x, y) = if a < b { (a, b) } else { (b, a) };
                let (left, right) = trees.split_at_mut(y);
                sync(&mut left[x], &mut right[0]);
            }
            Step::Sync { .. } => {}
            Step::Create {
                at,
                parent,
                name,
                dir,
            } => {
                let t = &mut trees[at];
                let view = t.entries();
                let folders: Vec<Entry> = view
                    .iter()
                    .filter(|e| e.kind == Kind::Dir)
                    .cloned()
                    .collect();
                let parent = pick(&folders, parent)
                    .filter(|_| parent % 3 != 0)
                    .map(|e| e.id);
                let op = next_op_id(t);
                let kind = if dir { Kind::Dir } else { Kind::File };
                if let Ok(id) = t.create(parent, &format!("n{name}"), kind) {
                    rec.asserted.entry(id).or_default().push(op);
                }
            }
            Step::Rename { at, node, name } => {
                let t = &mut trees[at];
                let view = t.entries();
                let Some(e) = pick(&view, node) else { continue };
                let op = next_op_id(t);
                let before = t.version();
                if t.rename(e.id, &format!("n{name}")).is_ok() && t.version() != before {
                    for n in shown_under(&view, e.id) {
                        rec.asserted.entry(n).or_default().push(op);
                    }
                }
            }
            Step::Move { at, node, parent } => {
                let t = &mut trees[at];
                let view = t.entries();
                let Some(e) = pick(&view, node) else { continue };
                let folders: Vec<Entry> = view
                    .iter()
                    .filter(|e| e.kind == Kind::Dir)
                    .cloned()
                    .collect();
                let parent = pick(&folders, parent)
                    .filter(|_| parent % 4 != 0)
                    .map(|e| e.id);
                let op = next_op_id(t);
                let before = t.version();
                if t.move_to(e.id, parent).is_ok() && t.version() != before {
                    for n in shown_under(&view, e.id) {
                        rec.asserted.entry(n).or_default().push(op);
                    }
                }
            }
            Step::Delete { at, node } => {
                let t = &mut trees[at];
                let view = t.entries();
                let Some(e) = pick(&view, node) else { continue };
                t.delete(e.id).unwrap();
                let seen = Tree::from_snapshot(&t.snapshot().unwrap()).unwrap();
                rec.deletes
                    .push((shown_under(&view, e.id).into_iter().collect(), seen));
            }
        }
    }
    let [mut a, mut b, mut c] = trees;
    sync(&mut a, &mut b);
    sync(&mut b, &mut c);
    sync(&mut a, &mut b);
    let view = a.entries();
    prop_assert_eq!(&view, &b.entries());
    prop_assert_eq!(&view, &c.entries());

    // Well formed: every entry's folder is shown before it, names are
    // valid and unique per folder.
    let mut seen: HashMap<NodeId, &Entry> = HashMap::new();
    let mut names: HashSet<(Option<NodeId>, &str)> = HashSet::new();
    for e in &view {
        if let Some(p) = e.parent {
            prop_assert!(seen.get(&p).is_some_and(|f| f.kind == Kind::Dir));
            prop_assert_eq!(&e.path, &format!("{}/{}", seen[&p].path, e.name));
        } else {
            prop_assert_eq!(&e.path, &e.name);
        }
        prop_assert!(valid_name(&e.name), "{:?}", e.name);
        prop_assert!(names.insert((e.parent, &e.name)), "{} twice", e.path);
        seen.insert(e.id, e);
        if !e.live {
            prop_assert!(e.kind == Kind::Dir, "only folders are shown dead");
            prop_assert!(view.iter().any(|c| c.parent == Some(e.id)));
        }
    }
    // The rule: a node is live exactly when some operation that asserted
    // it was seen by no delete that retracted it.
    for (id, ops) in &rec.asserted {
        let live = ops.iter().any(|op| {
            !rec.deletes
                .iter()
                .any(|(gone, at)| gone.contains(id) && has_op(at, *op))
        });
        let shown = seen.get(id);
        prop_assert_eq!(
            shown.is_some_and(|e| e.live),
            live,
            "node {} (shown {:?})",
            id,
            shown.map(|e| &e.path)
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("COLLAB_TREE_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256),
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_concurrent_schedules_converge_and_lose_no_concurrently_changed_file(
        steps in proptest::collection::vec(step(), 1..60)
    ) {
        run(&steps)?;
    }
}

#[test]
fn many_paths_at_once_make_the_same_tree_as_one_by_one() {
    let items = [
        ("src", Kind::Dir),
        ("src/a.rs", Kind::File),
        ("src/lib", Kind::Dir),
        ("src/lib/m.rs", Kind::File),
        ("README", Kind::File),
    ];
    let mut t = Tree::new();
    let ids = t.create_paths(&items).unwrap();
    assert_eq!(
        paths(&t),
        ["README", "src", "src/a.rs", "src/lib", "src/lib/m.rs"]
    );
    assert_eq!(t.get(ids[3]).unwrap().path, "src/lib/m.rs");
    let version = t.version();
    for bad in [
        vec![("x/y", Kind::File)],
        vec![("README/y", Kind::File)],
        vec![("src", Kind::Dir)],
        vec![("n", Kind::File), ("n", Kind::File)],
        vec![("n", Kind::File), ("bad/..", Kind::File)],
        vec![("later/x", Kind::File), ("later", Kind::Dir)],
    ] {
        assert!(t.create_paths(&bad).is_err(), "{bad:?}");
        assert_eq!(t.version(), version, "{bad:?}: nothing changed");
    }
}

#[test]
fn depth_and_path_length_are_bounded_locally_and_by_the_server() {
    use collab_doc::tree::{MAX_DEPTH, MAX_PATH_BYTES};
    let mut t = Tree::new();
    let mut parent = None;
    for i in 0..MAX_DEPTH {
        parent = Some(t.create(parent, &format!("d{i}"), Kind::Dir).unwrap());
    }
    assert!(matches!(
        t.create(parent, "one-too-deep", Kind::File),
        Err(TreeError::TooDeep { depth, .. }) if depth == MAX_DEPTH + 1
    ));
    // Moving a two-level folder under the deepest but one folder is too deep too.
    let top = t.create(None, "top", Kind::Dir).unwrap();
    t.create(Some(top), "inner", Kind::Dir).unwrap();
    let second_deepest = t
        .find_path(
            &(0..MAX_DEPTH - 1)
                .map(|i| format!("d{i}"))
                .collect::<Vec<_>>()
                .join("/"),
        )
        .unwrap()
        .id;
    assert!(matches!(
        t.move_to(top, Some(second_deepest)),
        Err(TreeError::TooDeep { .. })
    ));
    let long = "x".repeat(255);
    let mut p = None;
    let mut made = 0;
    loop {
        match t.create(p, &long, Kind::Dir) {
            Ok(id) => {
                p = Some(id);
                made += 1;
            }
            Err(TreeError::TooDeep { bytes, .. }) => {
                assert!(bytes > MAX_PATH_BYTES);
                break;
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(made, MAX_PATH_BYTES / 256);

    // A hostile peer's deeper chain, past the local checks: refused by
    // the server and rolled back.
    let mut server = Tree::new();
    let bytes = member_update(&server, |d| {
        let tree = d.get_tree("tree");
        let mut parent: Option<loro::TreeID> = None;
        for _ in 0..=MAX_DEPTH {
            let id = tree.create(parent).unwrap();
            let meta = tree.get_meta(id).unwrap();
            meta.insert("name", "d").unwrap();
            meta.insert("kind", "dir").unwrap();
            meta.insert("+0@1", true).unwrap();
            parent = Some(id);
        }
    });
    assert!(matches!(
        checked(&mut server, &bytes, &TreeLimits::default()),
        Err(TreeError::TooDeep { depth, .. }) if depth == MAX_DEPTH + 1
    ));
    assert!(server.entries().is_empty());
}
