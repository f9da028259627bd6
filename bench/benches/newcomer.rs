//! A newcomer to the automerge-paper room, end to end, as a person sees it
//! (issue 16: connect to text shown under 8 ms): a real server in this
//! process, the room's history typed into it over loopback by one member
//! (260,000 keystrokes, an update each), then 21 newcomers, each a
//! real `collab-tui` `App` with its `Net`: from before the connection opens
//! to the first frame drawn (ratatui's TestBackend, 120x40), which shows
//! the room's text sent ahead of the history (`welcome.text`); and on to
//! the frame after the history is loaded (`Action::Settle`: the document
//! editable). The second figure is what a newcomer waited before the text
//! came first (the editor drew nothing until the history was loaded), plus
//! the cost of the text shown first. Printed, medians of 21 (the first
//! newcomer, which makes the server compress the text, counted apart).
//! Run: `cargo bench -p collab-bench --bench newcomer`
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Instant;

use collab_protocol::{Base64Bytes, ClientMsg, ServerMsg};
use collab_tui::action::Action;
use collab_tui::app::{App, Startup};
use collab_tui::net::{self, Net};
use collab_tui::outside::Outside;
use collab_tui::ui;
use common::{Member, Server, WAIT, automerge_paper, bench_main, median};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

const ROOM: &str = "paper";

fn draw(app: &mut App, term: &mut Terminal<TestBackend>) {
    app.update(Action::Frame);
    term.draw(|f| ui::draw(app, f)).unwrap();
}

/// One newcomer: (connect to text drawn, connect to document loaded and
/// drawn), in ms, and whether the text came first.
async fn newcomer(url: &str, user: &str, end: &str) -> (f64, f64, bool) {
    let mut term = Terminal::new(TestBackend::new(120, 40)).unwrap();
    let started = Instant::now();
    let mut app = App::new(Startup::joining(url, ROOM, user), Instant::now());
    app.update(Action::Resize {
        width: 120,
        height: 40,
    });
    let mut out = Outside::new(Net::open(url, None).unwrap());
    net::join(&mut app, &mut out, WAIT).await.unwrap();
    draw(&mut app, &mut term);
    let shown = started.elapsed().as_secs_f64() * 1e3;
    let first = app.session.is_showing_text_first();
    if first {
        app.update(Action::Settle);
        draw(&mut app, &mut term);
    }
    let loaded = started.elapsed().as_secs_f64() * 1e3;
    assert_eq!(app.editor.rope(), end, "the room's text on screen");
    out.net.close(WAIT).await;
    (shown, loaded, first)
}

/// What a newcomer that asks for the text first is sent: the bytes of
/// `welcome.text` in base64, and of the welcome and the events that belong
/// to it.
async fn welcome_bytes(addr: std::net::SocketAddr) -> (usize, usize) {
    let mut m = Member::connect(addr).await;
    m.send(&ClientMsg::Join(collab_protocol::Join {
        protocol: collab_protocol::PROTOCOL_VERSION,
        room: ROOM.into(),
        user: "counted".into(),
        session: None,
        token: None,
        version: None,
        doc_encodings: vec!["zlib".into()],
        text_first: true,
    }))
    .await;
    let welcome = m.event().await;
    let text = welcome["text"].as_str().map_or(0, str::len);
    println!(
        "the welcome: doc_kind {}, doc_encoding {}, doc {} bytes of base64, {} doc_parts, {} doc_updates",
        welcome["doc_kind"],
        welcome["doc_encoding"],
        welcome["doc"].as_str().map_or(0, str::len),
        welcome["doc_parts"],
        welcome["doc_updates"]
    );
    let mut wire = welcome.to_string().len();
    let follow =
        welcome["doc_parts"].as_u64().unwrap_or(0) + welcome["doc_updates"].as_u64().unwrap_or(0);
    for _ in 0..follow {
        wire += m.event().await.to_string().len();
    }
    m.leave().await;
    (text, wire)
}

async fn measure() {
    let server = Server::start(collab_server::Config {
        messages_per_second: 1_000_000,
        burst: 1_000_000,
        ..collab_server::Config::default()
    })
    .await;
    let url = format!("ws://{}", server.addr);
    let (patches, end) = automerge_paper();
    let (mut typist, mut doc) = Member::join(server.addr, ROOM, "typist").await;
    // A keystroke an update, as typed (so the server compacts as it does
    // for a typed room), at most `WINDOW` unacked.
    const WINDOW: u64 = 256;
    let typing = Instant::now();
    let is_ack = |m: &ServerMsg| matches!(m, ServerMsg::Ack { .. });
    let mut acked = 0;
    for (i, (pos, del, ins)) in patches.iter().enumerate() {
        doc.splice(*pos, *del, ins).unwrap();
        let seq = i as u64 + 1;
        let data = Base64Bytes(doc.take_local_update().unwrap());
        typist.send(&ClientMsg::Update { seq, data }).await;
        while seq - acked >= WINDOW || (seq == patches.len() as u64 && acked < seq) {
            if let ServerMsg::Ack { seq } = typist.recv_until(is_ack).await {
                acked = seq;
            }
        }
    }
    assert_eq!(doc.text(), end);
    println!(
        "the room typed in {:.1} s: {} keystrokes, {} chars",
        typing.elapsed().as_secs_f64(),
        patches.len(),
        end.chars().count()
    );

    let (shown, loaded, first) = newcomer(&url, "first", &end).await;
    let (text, wire) = welcome_bytes(server.addr).await;
    println!(
        "first newcomer (the server compresses the text): text drawn {shown:.2} ms, loaded {loaded:.2} ms, text first: {first}"
    );
    let (mut shown, mut loaded) = (Vec::new(), Vec::new());
    for i in 0..21 {
        let (s, l, first) = newcomer(&url, &format!("n{i}"), &end).await;
        assert!(first, "the text came first");
        shown.push(s);
        loaded.push(l);
    }
    println!(
        "the welcome on the wire: {wire} bytes in all, of which the text {text} (the JSON text of its events)"
    );
    let (s, l) = (median(shown), median(loaded));
    println!(
        "newcomer, connect to text drawn: {s:.2} ms; to the history loaded and drawn: {l:.2} ms (ratio {:.2}), medians of 21",
        s / l
    );
    server.stop().await;
}

fn main() {
    bench_main(measure());
}
