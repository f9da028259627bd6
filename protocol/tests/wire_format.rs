//! Golden tests: docs/protocol.md is the contract, so every JSON example in it
//! must parse into the Rust types and serialize back to the same JSON, and
//! every event type and error code must be documented there.

#![allow(clippy::unwrap_used)]

use collab_protocol::{CLIENT_TYPES, ClientMsg, ErrorCode, SERVER_TYPES, ServerMsg};
use serde_json::Value;

const DOC: &str = include_str!("../../docs/protocol.md");

/// The examples fenced as ```json client / ```json server, in order.
fn examples(direction: &str) -> Vec<String> {
    let fence = format!("```json {direction}");
    let mut out = Vec::new();
    let mut lines = DOC.lines();
    while let Some(line) = lines.next() {
        if line.trim() == fence {
            let body: Vec<&str> = lines.by_ref().take_while(|l| l.trim() != "```").collect();
            out.push(body.join("\n"));
        }
    }
    out
}

fn same_json(a: &str, b: &str) -> bool {
    let a: Value = serde_json::from_str(a).unwrap();
    let b: Value = serde_json::from_str(b).unwrap();
    a == b
}

#[test]
fn client_examples_round_trip() {
    let all = examples("client");
    assert!(
        all.len() >= 8,
        "expected client examples, found {}",
        all.len()
    );
    for ex in &all {
        let msg = ClientMsg::from_json(ex).unwrap_or_else(|e| panic!("{ex}\n{e}"));
        assert!(same_json(ex, &msg.to_json()), "{ex}\n!=\n{}", msg.to_json());
    }
}

#[test]
fn server_examples_round_trip() {
    let all = examples("server");
    assert!(
        all.len() >= 10,
        "expected server examples, found {}",
        all.len()
    );
    for ex in &all {
        let msg = ServerMsg::from_json(ex).unwrap_or_else(|e| panic!("{ex}\n{e}"));
        assert!(same_json(ex, &msg.to_json()), "{ex}\n!=\n{}", msg.to_json());
    }
}

#[test]
fn every_client_event_has_an_example() {
    let all = examples("client");
    for ty in CLIENT_TYPES {
        assert!(
            all.iter()
                .any(|ex| serde_json::from_str::<Value>(ex).unwrap()["type"] == ty),
            "no example of client event {ty:?} in docs/protocol.md"
        );
    }
}

#[test]
fn every_server_event_has_an_example() {
    let all = examples("server");
    let types: Vec<String> = all
        .iter()
        .map(|ex| {
            serde_json::from_str::<Value>(ex).unwrap()["type"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    for ty in SERVER_TYPES {
        assert!(
            types.iter().any(|t| t == ty),
            "no example of server event {ty:?}"
        );
    }
}

#[test]
fn every_error_code_is_documented_with_its_fatality() {
    for code in ErrorCode::ALL {
        let row = DOC
            .lines()
            .find(|l| l.starts_with(&format!("| `{}` |", code.as_str())))
            .unwrap_or_else(|| panic!("error code {code} is not in the table of docs/protocol.md"));
        let fatal = row.split('|').nth(2).unwrap().trim();
        assert_eq!(
            fatal == "yes",
            code.is_fatal(),
            "docs/protocol.md says {code} fatal={fatal}, the code says {}",
            code.is_fatal()
        );
    }
}

#[test]
fn the_documented_unknown_type_message_is_the_real_one() {
    let ex = examples("server")
        .into_iter()
        .find(|ex| ex.contains("unknown_type"))
        .unwrap();
    let documented: Value = serde_json::from_str(&ex).unwrap();
    let real = ClientMsg::from_json(r#"{"type":"dance"}"#).unwrap_err();
    assert_eq!(documented["message"], real.message);
}
