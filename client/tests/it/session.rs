//! The sans-IO session against plain `Instant`s: joining on every connect,
//! the ack clock and its resends, a fatal close. No runtime, no sleeps.
#![allow(clippy::panic)]

use std::time::{Duration, Instant};

use collab_client::{
    ClientEvent, Effect, JoinAs, RESEND_AFTER, Replica, Session, SyncState, TransportEvent,
};
use collab_doc::SharedDoc;
use collab_protocol::{
    Base64Bytes, ClientMsg, DocKind, ErrorCode, Limits, Member, ProtocolError, ServerMsg, Welcome,
};

fn session() -> Session {
    Session::new(
        Replica::new(),
        JoinAs {
            room: "room".into(),
            user: "alice".into(),
            token: Some("secret".into()),
        },
    )
}

fn welcome(server: &SharedDoc) -> TransportEvent {
    let alice = Member {
        id: 1,
        name: "alice".into(),
        color: "#ffffff".into(),
        read_only: false,
    };
    TransportEvent::Message(ServerMsg::Welcome(Box::new(Welcome {
        protocol: 1,
        you: alice.clone(),
        members: vec![alice],
        session: "s1".into(),
        peer: 1 << 41,
        resumed: false,
        doc_kind: DocKind::Snapshot,
        doc: Base64Bytes(server.snapshot().unwrap()),
        doc_encoding: None,
        doc_parts: 0,
        doc_updates: 0,
        text: None,
        version: Base64Bytes(server.version()),
        limits: Limits {
            max_frame_bytes: 1 << 20,
            max_doc_bytes: 1 << 23,
            messages_per_second: 200,
            burst: 400,
        },
    })))
}

fn sent(effects: &[Effect]) -> Vec<&ClientMsg> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Send(m) => Some(m),
            Effect::Event(_) => None,
        })
        .collect()
}

fn seq(msg: &ClientMsg) -> u64 {
    match msg {
        ClientMsg::Update { seq, .. } => *seq,
        other => panic!("not an update: {other:?}"),
    }
}

fn ack(seq: u64) -> TransportEvent {
    TransportEvent::Message(ServerMsg::Ack { seq })
}

/// A session live at `t0` in an empty room.
fn live(t0: Instant) -> Session {
    let mut s = session();
    s.handle(TransportEvent::Connected, t0);
    s.handle(welcome(&SharedDoc::new()), t0);
    assert!(s.is_synced());
    s
}

#[test]
fn every_connect_joins_with_the_identity_and_the_last_session() {
    let t0 = Instant::now();
    let mut s = session();
    let effects = s.handle(TransportEvent::Connected, t0);
    assert_eq!(effects[0], Effect::Event(ClientEvent::Connected));
    let [ClientMsg::Join(j)] = sent(&effects)[..] else {
        panic!("{effects:?}")
    };
    assert_eq!((j.room.as_str(), j.user.as_str()), ("room", "alice"));
    assert_eq!(j.token.as_deref(), Some("secret"));
    assert_eq!(j.session, None);
    assert!(s.connected() && !s.is_synced());
    s.handle(welcome(&SharedDoc::new()), t0);
    let effects = s.handle(
        TransportEvent::Disconnected {
            reason: "gone".into(),
            retry_in: Some(Duration::from_millis(100)),
        },
        t0,
    );
    assert_eq!(
        effects,
        [Effect::Event(ClientEvent::Disconnected {
            reason: "gone".into(),
            retry_in: Some(Duration::from_millis(100)),
        })]
    );
    assert_eq!((s.connected(), s.disconnects()), (false, 1));
    assert_eq!(s.state(), SyncState::Offline);
    let effects = s.handle(TransportEvent::Connected, t0);
    let [ClientMsg::Join(j)] = sent(&effects)[..] else {
        panic!("{effects:?}")
    };
    assert_eq!(j.session.as_deref(), Some("s1"), "takes the session over");
}

#[test]
fn unacked_updates_go_again_once_acks_stall() {
    let t0 = Instant::now();
    let mut s = live(t0);
    assert_eq!(s.poll_timeout(t0), None, "nothing waits");
    let first = seq(&s.edit(0, 0, "abc").unwrap().unwrap());
    let due = s.poll_timeout(t0).unwrap();
    assert_eq!(due, t0 + RESEND_AFTER, "the wait starts at the send");
    assert!(s.handle_timeout(due - Duration::from_millis(1)).is_empty());
    let effects = s.handle_timeout(due);
    let [again] = sent(&effects)[..] else {
        panic!("{effects:?}")
    };
    assert!(seq(again) > first);
    assert_eq!(s.poll_timeout(due), Some(due + RESEND_AFTER), "starts over");
    // Acked: no timer, however long it stays quiet.
    s.handle(ack(seq(again)), due);
    assert_eq!(s.poll_timeout(due), None);
    assert!(s.handle_timeout(due + RESEND_AFTER * 10).is_empty());
}

#[test]
fn an_ack_restarts_the_wait_of_the_updates_still_unacked() {
    let t0 = Instant::now();
    let mut s = live(t0);
    let a = seq(&s.edit(0, 0, "a").unwrap().unwrap());
    s.poll_timeout(t0);
    let t1 = t0 + RESEND_AFTER / 2;
    s.edit(1, 0, "b").unwrap().unwrap();
    s.handle(ack(a), t1);
    assert_eq!(s.poll_timeout(t1), Some(t1 + RESEND_AFTER));
    assert!(s.handle_timeout(t0 + RESEND_AFTER).is_empty(), "progress");
    assert_eq!(sent(&s.handle_timeout(t1 + RESEND_AFTER)).len(), 1);
}

#[test]
fn offline_nothing_is_resent_and_the_welcome_starts_the_wait_again() {
    let t0 = Instant::now();
    let mut s = live(t0);
    s.edit(0, 0, "abc").unwrap().unwrap();
    s.poll_timeout(t0);
    s.handle(
        TransportEvent::Disconnected {
            reason: "gone".into(),
            retry_in: None,
        },
        t0,
    );
    assert_eq!(s.poll_timeout(t0), None, "no timer while offline");
    assert!(s.handle_timeout(t0 + RESEND_AFTER * 3).is_empty());
    // The welcome sends what the server lacks: its wait starts then.
    let t1 = t0 + RESEND_AFTER * 4;
    s.handle(TransportEvent::Connected, t1);
    let effects = s.handle(welcome(&SharedDoc::new()), t1);
    assert_eq!(sent(&effects).len(), 1, "{effects:?}");
    assert_eq!(s.poll_timeout(t1), Some(t1 + RESEND_AFTER));
}

#[test]
fn a_fatal_close_is_kept_and_reported() {
    let t0 = Instant::now();
    let mut s = session();
    s.handle(TransportEvent::Connected, t0);
    let error = ProtocolError {
        code: ErrorCode::NameTaken,
        message: "taken".into(),
    };
    let effects = s.handle(
        TransportEvent::Closed {
            error: Some(error.clone()),
        },
        t0,
    );
    assert_eq!(
        effects,
        [Effect::Event(ClientEvent::Closed {
            error: Some(error.clone())
        })]
    );
    assert_eq!(s.closed(), Some(&Some(error)));
    assert!(!s.connected());
}

#[test]
fn a_shorter_resend_interval_is_used() {
    let t0 = Instant::now();
    let mut s = live(t0).resend_after(Duration::from_millis(50));
    s.edit(0, 0, "x").unwrap().unwrap();
    assert_eq!(s.poll_timeout(t0), Some(t0 + Duration::from_millis(50)));
}
