//! The inbound byte budget: a member who sends more bytes than its budget
//! is read later (TCP backpressure), never refused; others are unaffected.
#![allow(clippy::unwrap_used)]

use crate::common;

use std::time::Duration;

use collab_protocol::{ClientMsg, ServerMsg};
use common::{Client, Server, WAIT, edit, replica, test_config};
use futures::{SinkExt, StreamExt};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, timeout};
use tokio_tungstenite::tungstenite::Message;

const KIB: usize = 1024;

/// Reads `client` to its end (answering the server's pings), passing on
/// every update it gets.
fn keep_reading(mut client: Client) -> mpsc::UnboundedReceiver<ServerMsg> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(Ok(msg)) = client.ws.next().await {
            if let Message::Text(t) = msg
                && let Ok(m @ ServerMsg::Update { .. }) = ServerMsg::from_json(t.as_str())
            {
                let _ = tx.send(m);
            }
        }
    });
    rx
}

/// Alice sends three times her burst at once: 12 updates, each frame
/// about 22 KB, against a burst of 64 KiB (the largest frame) and 64 KiB/s.
/// (The bytes are scaled down from megabytes so that the room makes no
/// compaction: one runs on a thread of its own, which paused time does
/// not wait for.)
///
/// Paused time: the budget's refill is the clock moved on by the server's
/// own wait, so when each ack arrives is exact up to the frames' sizes.
/// The pings every 100 ms (two intervals, 0.2 s, of silence drop a client)
/// would drop alice, whose pongs wait unread behind her frames for 0.34 s
/// at a time, if the server took its own pause in reading her for her
/// silence.
#[tokio::test(start_paused = true)]
async fn a_member_over_its_byte_budget_is_read_later_and_nothing_is_lost() {
    let config = collab_server::Config {
        max_frame_bytes: 64 * KIB,
        inbound_bytes_per_second: 64 * KIB,
        inbound_burst_bytes: 64 * KIB,
        ping_interval: Duration::from_millis(100),
        ..test_config()
    };
    let server = Server::start(config).await;
    let (alice, wa) = server.join("flood", "alice").await;
    let (mut carol, wc) = server.join("calm", "carol").await;
    let (dave, _) = server.join("calm", "dave").await;
    carol.recv().await; // dave joined
    let mut dave = keep_reading(dave);

    let mut doc = replica(&wa);
    let mut frames = Vec::new();
    for i in 0..12u64 {
        let text: String = format!("{i:02} line of the paste\n").repeat(16 * KIB / 22);
        let at = doc.len_chars();
        let data = edit(&mut doc, at, &text);
        frames.push(ClientMsg::Update { seq: i + 1, data }.to_json());
    }
    let sizes: Vec<usize> = frames.iter().map(String::len).collect();
    let total: usize = sizes.iter().sum();
    assert!(total > 3 * 64 * KIB, "{total} bytes");

    let t0 = Instant::now();
    let (mut sink, mut stream) = alice.ws.split();
    let sending = tokio::spawn(async move {
        for f in frames {
            sink.send(Message::Text(f.into())).await.unwrap();
        }
        sink
    });
    let (go, carol_goes) = oneshot::channel::<()>();
    let calm = tokio::spawn(async move {
        carol_goes.await.unwrap();
        let start = Instant::now();
        let mut cd = replica(&wc);
        carol
            .send(&ClientMsg::Update {
                seq: 1,
                data: edit(&mut cd, 0, "calm"),
            })
            .await;
        let carol = keep_reading(carol);
        timeout(WAIT, dave.recv()).await.unwrap().unwrap();
        (start.elapsed(), t0.elapsed(), carol, dave)
    });
    let mut go = Some(go);
    let mut acked = Vec::new();
    while acked.len() < sizes.len() {
        let msg = timeout(WAIT, stream.next())
            .await
            .unwrap_or_else(|_| panic!("an ack in time, after {acked:?}"))
            .expect("alice's connection stays open")
            .unwrap();
        let Message::Text(t) = msg else { continue };
        match ServerMsg::from_json(t.as_str()).unwrap() {
            ServerMsg::Ack { seq } => {
                assert_eq!(seq, acked.len() as u64 + 1, "acks in order");
                acked.push(t0.elapsed());
            }
            other => panic!("alice got {other:?}"),
        }
        if acked.len() == 4 {
            // Alice's budget is spent (3 frames fit in it): carol's edit
            // in another room goes meanwhile.
            go.take().unwrap().send(()).unwrap();
        }
    }
    let (relay, relayed_at, _carol, _dave) = calm.await.unwrap();
    assert!(relay < Duration::from_millis(20), "{relay:?}");
    let last = acked[acked.len() - 1];
    assert!(
        relayed_at < last,
        "the relay waited for alice: {relayed_at:?}"
    );

    // Frame i is read once the budget has paid for frames 0..i: the
    // burst, then 64 KiB a second (within 5 ms: the server counts the
    // frames' payload, the JSON here).
    let rate = (64 * KIB) as f64;
    let mut before: usize = 0;
    for (i, at) in acked.iter().enumerate() {
        let earliest = before.saturating_sub(64 * KIB) as f64 / rate;
        assert!(
            at.as_secs_f64() >= earliest - 0.005,
            "ack {i} at {at:?}, its frame not paid for before {earliest:.3} s"
        );
        before += sizes[i];
    }
    let paid = (total - sizes[sizes.len() - 1] - 64 * KIB) as f64 / rate;
    assert!(
        last.as_secs_f64() >= paid - 0.005 && last.as_secs_f64() <= paid + 0.1,
        "last ack at {last:?}, paid for at {paid:.3} s"
    );
    assert!(
        paid > 1.0,
        "alice was paced for {paid:.3} s: 10 ping intervals"
    );

    // Nothing lost, and alice was never taken for dead: her connection
    // still works, and a newcomer sees every byte she sent.
    let sink = sending.await.unwrap();
    let mut alice = Client {
        ws: sink.reunite(stream).unwrap(),
    };
    alice.ping_chat("still here").await;
    let (_eve, we) = server.join("flood", "eve").await;
    assert_eq!(replica(&we).text(), doc.text());
    server.stop().await;
}
