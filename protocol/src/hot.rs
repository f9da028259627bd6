//! The events of the relay path, read and written without serde's generic
//! machinery for tagged enums.
//!
//! Every keystroke is one `update` in, one `update` out to the room and one
//! `ack` back. serde reads an internally tagged enum by first buffering the
//! whole object into an intermediate tree (allocating a copy of every
//! field), and writes one through its generic map serializer; callgrind on
//! the server under load put the two at about a tenth of the server's own
//! instructions per update. These functions do the same work directly.
//! They are shortcuts only: the bytes written are exactly serde's (tests
//! below compare them), and a frame the fast reader does not take goes
//! through the full parser, which decides, and names what is wrong.

use serde::Deserialize;

use crate::Base64Bytes;
use crate::message::UserId;

/// An `update` frame in the one shape clients send: `type`, `seq`, `data`,
/// nothing else.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateFrame<'a> {
    #[serde(rename = "type", borrow)]
    ty: &'a str,
    seq: u64,
    data: Base64Bytes,
}

/// `(seq, data)` when `text` is a valid `update` event; `None` when it is
/// anything else, valid or not (the full parser then decides).
///
/// Whatever this accepts, `ClientMsg`'s derived parser accepts with the
/// same values: the same fields, the same types, unknown and repeated
/// fields refused. A `type` written with escapes is not borrowed and falls
/// through to the full parser.
pub(crate) fn read_update(text: &str) -> Option<(u64, Base64Bytes)> {
    let frame: UpdateFrame<'_> = serde_json::from_str(text).ok()?;
    (frame.ty == "update").then_some((frame.seq, frame.data))
}

/// `{"type":"update","from":FROM,"data":"BASE64"}`, as serde writes
/// `ServerMsg::Update`: base64 never needs a JSON escape.
pub(crate) fn write_update(from: UserId, data: &[u8]) -> String {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    const HEAD: &str = "{\"type\":\"update\",\"from\":";
    const MID: &str = ",\"data\":\"";
    const TAIL: &str = "\"}";
    let mut out = String::with_capacity(
        HEAD.len() + 20 + MID.len() + data.len().div_ceil(3) * 4 + TAIL.len(),
    );
    out.push_str(HEAD);
    push_u64(&mut out, from);
    out.push_str(MID);
    STANDARD.encode_string(data, &mut out);
    out.push_str(TAIL);
    out
}

/// `{"type":"ack","seq":SEQ}`, as serde writes `ServerMsg::Ack`.
pub(crate) fn write_ack(seq: u64) -> String {
    const HEAD: &str = "{\"type\":\"ack\",\"seq\":";
    let mut out = String::with_capacity(HEAD.len() + 21);
    out.push_str(HEAD);
    push_u64(&mut out, seq);
    out.push('}');
    out
}

fn push_u64(out: &mut String, n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut n = n;
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &d in &digits[at..] {
        out.push(char::from(d));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::{ClientMsg, ServerMsg};

    fn serde_update(from: UserId, data: &[u8]) -> String {
        serde_json::to_string(&ServerMsg::Update {
            from,
            data: Base64Bytes(data.to_vec()),
        })
        .unwrap()
    }

    #[test]
    fn writes_exactly_what_serde_writes() {
        let numbers = [
            0,
            1,
            9,
            10,
            99,
            100,
            12345,
            u64::from(u32::MAX),
            1 << 53,
            u64::MAX,
        ];
        for &n in &numbers {
            assert_eq!(
                write_ack(n),
                serde_json::to_string(&ServerMsg::Ack { seq: n }).unwrap()
            );
            assert_eq!(write_update(n, b"\x01\xff"), serde_update(n, b"\x01\xff"));
        }
        // Every padding case and every byte value.
        let bytes: Vec<u8> = (0..=255u8).cycle().take(700).collect();
        for len in 0..bytes.len() {
            assert_eq!(
                write_update(7, &bytes[..len]),
                serde_update(7, &bytes[..len])
            );
        }
    }

    /// The derived parser alone, as `ClientMsg::from_json` used to be.
    fn derived(text: &str) -> Option<ClientMsg> {
        serde_json::from_str::<ClientMsg>(text).ok()
    }

    #[test]
    fn reads_what_the_derived_parser_reads_and_nothing_it_refuses() {
        let cases = [
            r#"{"type":"update","seq":1,"data":"AAEC+g=="}"#,
            r#"{"data":"AAEC+g==","seq":18446744073709551615,"type":"update"}"#,
            r#" { "seq" : 3 , "type" : "update" , "data" : "" } "#,
            r#"{"type":"update","seq":1,"data":"AAEC+g==","extra":1}"#,
            r#"{"type":"update","seq":1,"data":"AAEC+g==","seq":2}"#,
            r#"{"type":"update","seq":1,"data":"AAEC+g==","type":"update"}"#,
            r#"{"type":"update","seq":-1,"data":"AA=="}"#,
            r#"{"type":"update","seq":1.0,"data":"AA=="}"#,
            r#"{"type":"update","seq":"1","data":"AA=="}"#,
            r#"{"type":"update","seq":18446744073709551616,"data":"AA=="}"#,
            r#"{"type":"update","seq":1,"data":"AA="}"#,
            r#"{"type":"update","seq":1,"data":"AB=="}"#,
            r#"{"type":"update","seq":1,"data":"%%%"}"#,
            r#"{"type":"update","seq":1}"#,
            r#"{"type":"update","data":"AA=="}"#,
            r#"{"type":"upd\u0061te","seq":1,"data":"AA=="}"#,
            r#"{"type":"update","seq":1,"data":"A\u0041=="}"#,
            r#"{"type":"chat","seq":1,"data":"AA=="}"#,
            r#"{"type":"chat","text":"hi"}"#,
            r#"{"type":"leave"}"#,
            r#"{"type":"update","seq":1,"data":"AA=="} x"#,
            r#"[1,2]"#,
            r#"["update",1,"AA=="]"#,
            r#"["update",1,"AA==",5]"#,
            r#"["update",1]"#,
            "{not json",
        ];
        for text in cases {
            let fast = read_update(text);
            let full = derived(text);
            match (&fast, &full) {
                (Some((seq, data)), Some(ClientMsg::Update { seq: s, data: d })) => {
                    assert_eq!((seq, data), (s, d), "{text}");
                }
                (Some(_), _) => panic!("the fast reader took what the parser refuses: {text}"),
                (None, _) => {}
            }
            // And the public parser answers as the derived one does.
            match (ClientMsg::from_json(text), full) {
                (Ok(a), Some(b)) => assert_eq!(a, b, "{text}"),
                (Err(_), None) => {}
                (a, b) => panic!("{text}: from_json {a:?}, derived {b:?}"),
            }
        }
        assert!(read_update(r#"{"type":"update","seq":1,"data":"AAEC+g=="}"#).is_some());
    }
}
