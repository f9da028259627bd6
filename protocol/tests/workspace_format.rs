//! Golden tests of the workspace extension: every example of section 11 of
//! docs/protocol.md (fenced `json client-workspace` / `json
//! server-workspace`) parses on a workspace connection and serializes back
//! to the same JSON, every event the extension adds has an example, and
//! version 1's examples mean the same on a workspace connection.

#![allow(clippy::unwrap_used)]

use collab_protocol::workspace::{
    ADDRESSED_CLIENT_TYPES, ADDRESSED_SERVER_TYPES, Addressed, ClientEvent, DocId, ServerEvent,
    WORKSPACE_CLIENT_TYPES, WORKSPACE_SERVER_TYPES,
};
use collab_protocol::{ClientMsg, ServerMsg};
use serde_json::Value;

const DOC: &str = include_str!("../../docs/protocol.md");

fn examples(fence: &str) -> Vec<String> {
    let fence = format!("```json {fence}");
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

fn value(s: &str) -> Value {
    serde_json::from_str(s).unwrap()
}

fn type_of(s: &str) -> String {
    value(s)["type"].as_str().unwrap().to_owned()
}

#[test]
fn workspace_client_examples_round_trip() {
    let all = examples("client-workspace");
    assert!(all.len() >= 6, "found {}", all.len());
    for ex in &all {
        let ev = ClientEvent::from_json(ex).unwrap_or_else(|e| panic!("{ex}\n{e}"));
        assert_eq!(value(ex), value(&ev.to_json()), "{ex}");
    }
}

#[test]
fn workspace_server_examples_round_trip() {
    let all = examples("server-workspace");
    assert!(all.len() >= 7, "found {}", all.len());
    for ex in &all {
        let ev = ServerEvent::from_json(ex).unwrap_or_else(|e| panic!("{ex}\n{e}"));
        assert_eq!(value(ex), value(&ev.to_json()), "{ex}");
    }
}

#[test]
fn doc_id_comes_right_after_the_type_as_documented() {
    for ex in examples("client-workspace")
        .iter()
        .chain(&examples("server-workspace"))
    {
        if ex.contains("\"doc_id\"") && !ex.contains("\"opened\"") {
            let after_type = ex.find(',').unwrap();
            assert!(ex[after_type..].starts_with(",\"doc_id\""), "{ex}");
        }
    }
    // And the writer does so for each addressed event.
    let ack = ServerEvent::V1(Addressed {
        doc: DocId::parse("12@4503599627370497").unwrap(),
        msg: ServerMsg::Ack { seq: 43 },
    });
    assert!(examples("server-workspace").contains(&ack.to_json()));
}

#[test]
fn every_workspace_event_and_addressed_event_has_an_example() {
    let client: Vec<String> = examples("client-workspace")
        .iter()
        .map(|e| type_of(e))
        .collect();
    let server: Vec<String> = examples("server-workspace")
        .iter()
        .map(|e| type_of(e))
        .collect();
    for ty in WORKSPACE_CLIENT_TYPES.iter().chain(&ADDRESSED_CLIENT_TYPES) {
        assert!(
            client.iter().any(|t| t == ty),
            "no client-workspace example of {ty}"
        );
    }
    for ty in WORKSPACE_SERVER_TYPES.iter().chain(&ADDRESSED_SERVER_TYPES) {
        assert!(
            server.iter().any(|t| t == ty),
            "no server-workspace example of {ty}"
        );
    }
}

#[test]
fn version_1_examples_mean_the_same_on_a_workspace_connection() {
    for ex in examples("client") {
        let ev = ClientEvent::from_json(&ex).unwrap_or_else(|e| panic!("{ex}\n{e}"));
        assert_eq!(
            ev,
            ClientEvent::V1(Addressed {
                doc: DocId::Main,
                msg: ClientMsg::from_json(&ex).unwrap()
            })
        );
        assert_eq!(value(&ex), value(&ev.to_json()));
    }
    for ex in examples("server") {
        let ev = ServerEvent::from_json(&ex).unwrap_or_else(|e| panic!("{ex}\n{e}"));
        assert_eq!(value(&ex), value(&ev.to_json()), "{ex}");
        if let ServerEvent::V1(a) = &ev {
            assert_eq!(a.doc, DocId::Main);
            assert_eq!(a.msg, ServerMsg::from_json(&ex).unwrap());
        }
    }
}

mod frames {
    //! Arbitrary frames on a workspace connection: `ClientEvent::from_json`
    //! never panics, refuses only with a parse code (fatal only for
    //! `version_mismatch`), and whatever it accepts serializes back to an
    //! event that parses the same. Bounded: 512 cases, a fixed seed.

    use super::*;
    use collab_protocol::ErrorCode;
    use proptest::prelude::*;
    use proptest::test_runner::{
        Config, FileFailurePersistence, RngAlgorithm, TestRng, TestRunner,
    };
    use serde_json::json;

    fn leaf() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            Just(json!(2)),
            Just(json!("AQ==")),
            Just(json!("tree")),
            Just(json!("main")),
            Just(json!("12@4503599627370497")),
            "[0-9@a-z]{0,8}".prop_map(Value::from),
            any::<String>().prop_map(Value::from),
        ]
    }

    fn event() -> impl Strategy<Value = String> {
        let ty = prop::sample::select(vec![
            "join",
            "chat",
            "presence",
            "update",
            "seed",
            "leave",
            "open",
            "close",
            "seed_tree",
            "dance",
        ]);
        let name = prop::sample::select(vec![
            "doc_id", "seq", "data", "version", "cursor", "anchor", "text", "protocol", "room",
            "user", "x",
        ]);
        (ty, prop::collection::btree_map(name, leaf(), 0..5)).prop_map(|(ty, fields)| {
            let mut m: serde_json::Map<String, Value> =
                fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
            m.insert("type".into(), ty.into());
            Value::Object(m).to_string()
        })
    }

    #[test]
    fn any_frame_parses_or_is_refused_with_a_parse_code() {
        let config = Config {
            cases: 512,
            failure_persistence: Some(Box::new(FileFailurePersistence::Off)),
            ..Config::default()
        };
        let mut runner =
            TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &[17; 32]));
        let frames = prop_oneof![4 => event(), 1 => any::<String>()];
        runner
            .run(&frames, |text| {
                match ClientEvent::from_json(&text) {
                    Ok(ev) => {
                        let again = ClientEvent::from_json(&ev.to_json());
                        prop_assert_eq!(again.as_ref().ok(), Some(&ev), "{}", text);
                    }
                    Err(e) => {
                        prop_assert!(
                            [
                                ErrorCode::InvalidJson,
                                ErrorCode::UnknownType,
                                ErrorCode::InvalidMessage,
                                ErrorCode::VersionMismatch
                            ]
                            .contains(&e.code),
                            "{}: {:?}",
                            text,
                            e
                        );
                        prop_assert_eq!(e.code.is_fatal(), e.code == ErrorCode::VersionMismatch);
                    }
                }
                Ok(())
            })
            .unwrap();
    }
}
