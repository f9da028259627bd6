//! A paste goes into the document as runs of bounded length (see the doc
//! crate's `runs` module): the same text and the same single undo step as
//! one insert, without the time quadratic in the paste that Loro spends
//! merging one long insert concurrent to other edits.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use collab_doc::{DEFAULT_MAX_DOC_BYTES, INSERT_RUN_CHARS, RoomDoc, SharedDoc, TextChange};
use loro::{JsonOpContent, JsonTextOp, LoroDoc, VersionVector};

/// Code with multi-byte characters and CRLF, `chars` chars long.
fn code(chars: usize) -> String {
    "    let café = compute(input, 42); // 😀 a line\r\n"
        .chars()
        .cycle()
        .take(chars)
        .collect()
}

/// The lengths of the text insert operations an update carries.
fn insert_lengths(update: &[u8]) -> Vec<usize> {
    let doc = LoroDoc::new();
    doc.import(update).unwrap();
    let json = doc
        .export_json_updates(&VersionVector::default(), &doc.oplog_vv())
        .unwrap();
    json.changes
        .iter()
        .flat_map(|c| c.ops.iter())
        .filter_map(|op| match &op.content {
            JsonOpContent::Text(JsonTextOp::Insert { text, .. }) => Some(text.chars().count()),
            _ => None,
        })
        .collect()
}

fn mirror(text: &mut Vec<char>, delta: &[TextChange]) {
    let mut at = 0;
    for step in delta {
        match step {
            TextChange::Retain(n) => at += n,
            TextChange::Insert(s) => {
                let chars: Vec<char> = s.chars().collect();
                let n = chars.len();
                text.splice(at..at, chars);
                at += n;
            }
            TextChange::Delete(n) => {
                text.drain(at..at + n);
            }
        }
    }
}

#[test]
fn no_insert_operation_is_longer_than_a_run() {
    let mut a = SharedDoc::new();
    let paste = code(10 * INSERT_RUN_CHARS + 7);
    a.splice(0, 0, &paste).unwrap();
    let lengths = insert_lengths(&a.take_local_update().unwrap());
    assert!(
        lengths.iter().all(|&n| n <= INSERT_RUN_CHARS),
        "insert operations of {lengths:?} chars"
    );
    assert_eq!(lengths.iter().sum::<usize>(), paste.chars().count());
    // A short insert stays one operation.
    a.splice(3, 0, "typed").unwrap();
    assert_eq!(insert_lengths(&a.snapshot().unwrap()).last(), Some(&5));
}

#[test]
fn a_paste_in_runs_is_the_same_text_events_and_one_undo_step() {
    let mut a = SharedDoc::new();
    a.splice(0, 0, "fn main() {\n}\n").unwrap();
    a.take_local_update();
    let mut b = SharedDoc::from_snapshot(&a.snapshot().unwrap()).unwrap();
    let mut undo = a.undo_manager();
    a.track_changes();
    let before: Vec<char> = a.text().chars().collect();

    // Replace "main" with a paste, as pasting over a selection does.
    let paste = code(3 * INSERT_RUN_CHARS + 100);
    a.splice(3, 4, &paste).unwrap();
    let expected = format!("fn {paste}() {{\n}}\n");
    assert_eq!(a.text(), expected);
    let mut seen = before.clone();
    for d in a.take_changes() {
        mirror(&mut seen, &d);
    }
    assert_eq!(seen.iter().collect::<String>(), expected, "events");

    b.import(&a.take_local_update().unwrap()).unwrap();
    assert_eq!(b.text(), expected, "a replica merges the same text");

    assert!(undo.undo(), "the paste is one undo step");
    assert_eq!(a.text(), "fn main() {\n}\n");
    assert!(!undo.can_undo());
    assert!(undo.redo());
    assert_eq!(a.text(), expected);
    b.import(&a.take_local_update().unwrap()).unwrap();
    assert_eq!(b.text(), expected);
}

/// The case: a member types a key; another, who has not seen it,
/// pastes 740 KiB. As one insert (before runs) this test measured the
/// server at 8.6 s, the typist at 2.9 s and the paster at 4.0 s (a `cargo
/// test` build, deps at opt-level 2, on a loaded machine); in runs a few
/// milliseconds each. The bound leaves room for a loaded machine.
#[test]
fn a_paste_concurrent_with_a_keystroke_merges_quickly_everywhere() {
    let mut room = RoomDoc::new();
    let mut alice = SharedDoc::new();
    alice.splice(0, 0, "fn main() {\n}\n").unwrap();
    let seed = alice.take_local_update().unwrap();
    room.import_limited(&seed, DEFAULT_MAX_DOC_BYTES).unwrap();
    let mut bob = SharedDoc::from_snapshot(&alice.snapshot().unwrap()).unwrap();

    alice.splice(3, 0, "x").unwrap();
    let key = alice.take_local_update().unwrap();
    room.import_limited(&key, DEFAULT_MAX_DOC_BYTES).unwrap();
    bob.splice(14, 0, &code(740 * 1024)).unwrap();
    let paste = bob.take_local_update().unwrap();

    let bound = Duration::from_millis(500);
    let started = Instant::now();
    room.import_limited(&paste, DEFAULT_MAX_DOC_BYTES).unwrap();
    let server = started.elapsed();
    let started = Instant::now();
    alice.import(&paste).unwrap();
    let typist = started.elapsed();
    let started = Instant::now();
    bob.import(&key).unwrap();
    let paster = started.elapsed();
    assert!(
        server < bound && typist < bound && paster < bound,
        "server {server:?}, typist {typist:?}, paster {paster:?}"
    );
    assert_eq!(room.text(), alice.text());
    assert_eq!(bob.text(), alice.text());
}
