//! Behaviour of the shared document that the server and editor rely on.

use collab_doc::{DocError, SharedDoc, TextChange};

fn apply(text: &mut Vec<char>, delta: &[TextChange]) {
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
fn two_replicas_converge_through_updates() {
    let mut a = SharedDoc::new();
    let mut b = SharedDoc::new();
    assert_ne!(a.peer_id(), b.peer_id());
    a.splice(0, 0, "hello").unwrap();
    b.splice(0, 0, "world").unwrap();
    let ua = a.take_local_update().unwrap();
    let ub = b.take_local_update().unwrap();
    assert!(a.take_local_update().is_none());
    assert_eq!(a.import(&ub), Ok(true));
    assert_eq!(b.import(&ua), Ok(true));
    assert_eq!(
        b.import(&ua),
        Ok(false),
        "a resent update brings nothing new"
    );
    assert_eq!(a.text(), b.text());
    assert_eq!(a.len_chars(), 10);
}

#[test]
fn changes_are_in_chars_for_local_and_remote_edits() {
    let mut a = SharedDoc::new();
    a.track_changes();
    a.splice(0, 0, "a😀é\r\nb").unwrap();
    a.splice(1, 1, "").unwrap();
    let mut mirror = Vec::new();
    for d in a.take_changes() {
        apply(&mut mirror, &d);
    }
    assert_eq!(mirror.iter().collect::<String>(), a.text());

    let mut b = SharedDoc::new();
    b.track_changes();
    b.import(&a.snapshot().unwrap()).unwrap();
    let mut other = Vec::new();
    for d in b.take_changes() {
        apply(&mut other, &d);
    }
    assert_eq!(other.iter().collect::<String>(), "aé\r\nb");
}

#[test]
fn sync_by_version_sends_exactly_what_is_missing() {
    let mut a = SharedDoc::new();
    a.splice(0, 0, "base").unwrap();
    let mut b = SharedDoc::from_snapshot(&a.snapshot().unwrap()).unwrap();
    a.splice(4, 0, " from a").unwrap();
    b.splice(0, 0, "b says: ").unwrap();
    let for_b = a.updates_since(&b.version()).unwrap();
    let for_a = b.updates_since(&a.version()).unwrap();
    a.import(&for_a).unwrap();
    b.import(&for_b).unwrap();
    assert_eq!(a.text(), "b says: base from a");
    assert_eq!(a.text(), b.text());
    assert!(a.is_covered_by(&b.version()).unwrap());
}

#[test]
fn garbage_is_refused_and_changes_nothing() {
    let mut a = SharedDoc::new();
    a.splice(0, 0, "keep").unwrap();
    let v = a.version();
    assert!(matches!(
        a.import(b"\x00garbage"),
        Err(DocError::BadUpdate(_))
    ));
    assert!(a.import(&[]).is_err());
    assert_eq!(a.text(), "keep");
    assert_eq!(a.version(), v);
}

#[test]
fn a_peer_id_replayed_with_other_content_is_refused() {
    let mut a = SharedDoc::new();
    a.splice(0, 0, "abc").unwrap();
    let mut server = SharedDoc::new();
    server.import(&a.take_local_update().unwrap()).unwrap();
    // A forged replica claiming a's peer id and counters with other text.
    let v = server.version();
    // Same ids, other text, and more of it: Loro compares the known part.
    let forged = collab_doc::forge_for_tests(a.peer_id(), "xyzw");
    let r = server.import(&forged);
    assert!(
        matches!(r, Err(DocError::BadUpdate(_))),
        "forged history must be refused: {r:?}"
    );
    assert_eq!(server.text(), "abc");
    assert_eq!(server.version(), v);
    // Same ids and length: nothing new, nothing changes, nothing to relay.
    let same_len = collab_doc::forge_for_tests(a.peer_id(), "xyz");
    assert_eq!(server.import(&same_len), Ok(false));
    assert_eq!(server.text(), "abc");
}

#[test]
fn stable_cursor_follows_its_character() {
    let mut a = SharedDoc::new();
    a.splice(0, 0, "hello world").unwrap();
    let c = a.cursor_at(6).unwrap(); // on 'w'
    let mut b = SharedDoc::from_snapshot(&a.snapshot().unwrap()).unwrap();
    b.splice(0, 0, ">> ").unwrap();
    a.import(&b.take_local_update().unwrap()).unwrap();
    assert_eq!(a.resolve_cursor(&c), Some(9));
    assert_eq!(a.text().chars().nth(9), Some('w'));
}

#[test]
fn undo_reverts_only_my_edits() {
    let mut a = SharedDoc::new();
    let mut undo = a.undo_manager();
    a.splice(0, 0, "mine ").unwrap();
    let mut b = SharedDoc::from_snapshot(&a.snapshot().unwrap()).unwrap();
    b.splice(5, 0, "theirs").unwrap();
    a.import(&b.take_local_update().unwrap()).unwrap();
    assert_eq!(a.text(), "mine theirs");
    assert!(undo.undo());
    assert_eq!(a.text(), "theirs");
    assert!(undo.redo());
    assert_eq!(a.text(), "mine theirs");
}

#[test]
fn local_update_carries_only_my_edits() {
    let mut a = SharedDoc::new();
    let mut b = SharedDoc::new();
    b.splice(0, 0, &"remote ".repeat(200)).unwrap();
    let remote = b.take_local_update().unwrap();
    a.import(&remote).unwrap();
    assert!(
        a.take_local_update().is_none(),
        "imports are not mine to send"
    );
    a.splice(0, 0, "x").unwrap();
    let mine = a.take_local_update().unwrap();
    assert!(mine.len() < remote.len() / 4, "{} bytes", mine.len());
    // It still applies where the remote edits are known.
    b.import(&mine).unwrap();
    assert_eq!(a.text(), b.text());
}

#[test]
fn resend_from_makes_up_for_a_lost_update() {
    let mut a = SharedDoc::new();
    let mut server = SharedDoc::new();
    a.splice(0, 0, "one ").unwrap();
    let before_lost = a.sent_version();
    let _lost = a.take_local_update().unwrap();
    a.splice(4, 0, "two").unwrap();
    let second = a.take_local_update().unwrap();
    assert_eq!(
        server.import(&second),
        Err(DocError::MissingDependencies),
        "the second depends on the lost one"
    );
    a.resend_from(&before_lost).unwrap();
    let again = a.take_local_update().unwrap();
    server.import(&again).unwrap();
    assert_eq!(server.text(), "one two");
    assert!(server.includes(&a.version()).unwrap());
}

#[test]
fn big_updates_are_cut_into_parts_that_import_in_order() {
    let mut server = SharedDoc::new();
    server.splice(0, 0, "base\n").unwrap();
    let mut a = SharedDoc::from_snapshot(&server.snapshot().unwrap()).unwrap();
    let mut b = SharedDoc::from_snapshot(&server.snapshot().unwrap()).unwrap();
    let v = server.version();
    // Interleaved edits of two peers, one huge paste, many small edits.
    a.splice(0, 0, &"😀 pasted line\r\n".repeat(3000)).unwrap();
    b.import(&a.updates_since(&v).unwrap()).unwrap();
    for i in 0..2000 {
        b.splice(i % 50, 0, "é").unwrap();
        if i % 100 == 0 {
            a.import(&b.updates_since(&a.version()).unwrap()).unwrap();
            a.splice(0, 1, "").unwrap();
            b.import(&a.updates_since(&b.version()).unwrap()).unwrap();
        }
    }
    a.import(&b.updates_since(&a.version()).unwrap()).unwrap();
    let parts = a.updates_since_chunked(&v, 8 * 1024).unwrap();
    assert!(parts.len() > 4, "{} parts", parts.len());
    for p in &parts {
        assert!(p.len() <= 8 * 1024, "{}", p.len());
        assert_eq!(
            server.import(p).map(|_| ()),
            Ok(()),
            "each part imports on its own turn"
        );
    }
    assert_eq!(server.text(), a.text());
    assert!(server.includes(&a.version()).unwrap());
    // Small: one part, the same as updates_since.
    assert_eq!(a.updates_since_chunked(&v, usize::MAX).unwrap().len(), 1);
    let mut c = SharedDoc::new();
    c.splice(0, 0, &"x".repeat(100_000)).unwrap();
    let parts = c.take_local_update_chunked(10_000);
    assert!(parts.len() >= 2);
    assert!(c.take_local_update_chunked(10_000).is_empty());
}
