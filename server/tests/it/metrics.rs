//! `GET /healthz` and `GET /metrics` on the WebSocket's port.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::collections::HashMap;
use std::net::SocketAddr;

use collab_protocol::{ClientMsg, ErrorCode, ServerMsg};
use common::{Server, WAIT, edit, replica, test_config};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

/// A plain HTTP/1.1 request; returns the status code, the head and the body.
pub(crate) async fn http(addr: SocketAddr, method: &str, path: &str) -> (u16, String, String) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: test\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    timeout(WAIT, s.read_to_end(&mut raw))
        .await
        .expect("the server answers and closes")
        .unwrap();
    let raw = String::from_utf8(raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").expect("a head and a body");
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, head.to_owned(), body.to_owned())
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// Parses the text exposition format strictly enough for this server's
/// output: every line is a HELP or TYPE comment, or `name{labels} value`.
/// Returns `name{labels}` -> value.
fn parse_exposition(text: &str) -> HashMap<String, f64> {
    assert!(text.ends_with('\n'), "ends with a newline");
    let mut samples = HashMap::new();
    let mut typed = HashMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            let kind = parts.next().unwrap();
            let name = parts.next().expect("a metric name");
            let what = parts.next().expect("help text or type");
            assert!(valid_name(name), "{line}");
            match kind {
                "HELP" => assert!(!what.is_empty()),
                "TYPE" => {
                    assert!(
                        ["counter", "gauge", "histogram", "summary", "untyped"].contains(&what),
                        "{line}"
                    );
                    assert!(typed.insert(name.to_owned(), what.to_owned()).is_none());
                }
                _ => panic!("unknown comment {line:?}"),
            }
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("name and value");
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v
                .parse()
                .unwrap_or_else(|_| panic!("bad value in {line:?}")),
        };
        let name = match series.split_once('{') {
            Some((name, labels)) => {
                let labels = labels.strip_suffix('}').expect("closed labels");
                for pair in labels.split(',') {
                    let (k, v) = pair.split_once('=').expect("label=value");
                    assert!(valid_name(k), "{line}");
                    assert!(
                        v.len() >= 2 && v.starts_with('"') && v.ends_with('"'),
                        "{line}"
                    );
                }
                name
            }
            None => series,
        };
        assert!(valid_name(name), "{line}");
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| {
                name.strip_suffix(s)
                    .filter(|f| typed.get(*f).is_some_and(|t| t == "histogram"))
            })
            .unwrap_or(name);
        assert!(typed.contains_key(family), "TYPE before samples: {line}");
        assert!(samples.insert(series.to_owned(), value).is_none(), "{line}");
    }
    samples
}

async fn scrape(server: &Server) -> HashMap<String, f64> {
    let (status, head, body) = http(server.addr, "GET", "/metrics").await;
    assert_eq!(status, 200);
    assert!(head.contains("text/plain; version=0.0.4"), "{head}");
    parse_exposition(&body)
}

#[tokio::test]
async fn healthz_says_ok() {
    let server = Server::start(test_config()).await;
    let (status, head, body) = http(server.addr, "GET", "/healthz").await;
    assert_eq!(status, 200, "{head}");
    assert_eq!(body, "ok\n", "the body docs/protocol.md gives");
    let (status, _, body) = http(server.addr, "HEAD", "/healthz").await;
    assert_eq!(status, 200);
    assert!(body.is_empty());
    let (status, _, _) = http(server.addr, "GET", "/nope").await;
    assert_eq!(status, 404);
    // The WebSocket still works beside them.
    let (c, _) = server.join("r", "a").await;
    c.close().await;
    server.stop().await;
}

#[tokio::test]
async fn metrics_count_joins_messages_updates_errors_and_refusals() {
    let server = Server::start(collab_server::Config {
        max_connections_per_ip: 2,
        cap_loopback_per_ip: true,
        ..test_config()
    })
    .await;
    let before = scrape(&server).await;
    assert_eq!(before["collab_joins_total"], 0.0);
    assert_eq!(before["collab_rooms"], 0.0);
    assert_eq!(before["collab_update_apply_seconds_count"], 0.0);

    let (mut a, w) = server.join("r", "alice").await;
    let (mut b, _) = server.join("r", "bob").await;
    a.recv_until(|m| matches!(m, ServerMsg::Joined { .. }))
        .await;
    let mut doc = replica(&w);
    let data = edit(&mut doc, 0, "hello");
    a.send(&ClientMsg::Update { seq: 1, data }).await;
    a.recv_until(|m| matches!(m, ServerMsg::Ack { seq: 1 }))
        .await;
    b.recv_until(|m| matches!(m, ServerMsg::Update { .. }))
        .await;
    a.send_raw("{not json").await;
    a.expect_error(ErrorCode::InvalidJson).await;
    // The third connection from this address: refused. (Scrapes over the
    // cap are refused too, but plain HTTP is still answered.)
    let mut over = server.client().await;
    let over_scrape = scrape(&server).await;
    over.expect_error(ErrorCode::ServerFull).await;

    let after = scrape(&server).await;
    assert_eq!(after["collab_joins_total"], 2.0);
    assert_eq!(after["collab_rooms"], 1.0);
    assert!(after["collab_connections_open"] >= 2.0);
    assert!(after["collab_connections_accepted_total"] >= 2.0);
    // join, join, update, garbage
    assert!(after["collab_messages_received_total"] >= 4.0);
    assert!(after["collab_received_bytes_total"] > 100.0);
    // welcome x2, joined, update, ack, error
    assert!(after["collab_messages_sent_total"] >= 6.0);
    assert!(after["collab_sent_bytes_total"] > after["collab_received_bytes_total"]);
    assert_eq!(after["collab_updates_applied_total"], 1.0);
    assert_eq!(after["collab_update_apply_seconds_count"], 1.0);
    assert_eq!(
        after["collab_update_apply_seconds_bucket{le=\"+Inf\"}"],
        1.0
    );
    assert!(after["collab_update_apply_seconds_sum"] > 0.0);
    assert_eq!(after["collab_errors_total{code=\"invalid_json\"}"], 1.0);
    assert_eq!(after["collab_errors_total{code=\"read_only\"}"], 0.0);
    let refused = "collab_connections_refused_total{reason=\"max_connections_per_ip\"}";
    assert!(over_scrape[refused] >= 1.0);
    assert!(after[refused] >= 1.0);
    assert!(
        after["collab_http_requests_total"] >= 2.0,
        "earlier scrapes"
    );

    a.close().await;
    b.close().await;
    server.stop().await;
}

#[tokio::test]
async fn a_websocket_handshake_in_pieces_still_upgrades() {
    let server = Server::start(test_config()).await;
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    s.set_nodelay(true).unwrap();
    let req = format!(
        "GET /ws HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        server.addr
    );
    let (first, rest) = req.as_bytes().split_at(9);
    s.write_all(first).await.unwrap();
    s.flush().await.unwrap();
    s.write_all(rest).await.unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 512];
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = timeout(WAIT, s.read(&mut buf)).await.unwrap().unwrap();
        assert!(n > 0, "closed: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    let head = String::from_utf8_lossy(&got);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(head.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), "{head}");
    drop(s);
    server.stop().await;
}

#[tokio::test]
async fn healthz_with_a_huge_head_is_still_answered() {
    let server = Server::start(test_config()).await;
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    let cookie = "a".repeat(8000);
    let req = format!("GET /healthz HTTP/1.1\r\nHost: x\r\nCookie: {cookie}\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    timeout(WAIT, s.read_to_end(&mut raw))
        .await
        .expect("answered and closed")
        .unwrap();
    let raw = String::from_utf8_lossy(&raw);
    assert!(raw.starts_with("HTTP/1.1 200"), "{raw}");
    assert!(raw.ends_with("ok\n"), "{raw}");
    drop(s); // the server reads the rest of the head until we close
    server.stop().await;
}
