//! Encoding and decoding one keystroke's `update` on the wire, both ways:
//! what a client and the server pay per event besides the document.
#![allow(clippy::unwrap_used)]

use std::hint::black_box;
use std::time::Duration;

use collab_doc::SharedDoc;
use collab_protocol::{ClientMsg, ServerMsg};
use criterion::{Criterion, criterion_group, criterion_main};

/// A real one-character update from a replica that has typed a while.
fn keystroke_update() -> Vec<u8> {
    let mut doc = SharedDoc::new();
    for i in 0..200 {
        doc.splice(i, 0, "x").unwrap();
        doc.take_local_update();
    }
    doc.splice(100, 0, "y").unwrap();
    doc.take_local_update().unwrap()
}

fn protocol(c: &mut Criterion) {
    let data = keystroke_update();
    let client = ClientMsg::Update {
        seq: 12345,
        data: data.clone().into(),
    };
    let server = ServerMsg::Update {
        from: 42,
        data: data.clone().into(),
    };
    let client_json = client.to_json();
    let server_json = server.to_json();
    let mut g = c.benchmark_group(format!("protocol/update ({} B of Loro)", data.len()));
    g.bench_function("ClientMsg encode", |b| {
        b.iter(|| black_box(&client).to_json())
    });
    g.bench_function("ClientMsg decode", |b| {
        b.iter(|| ClientMsg::from_json(black_box(&client_json)).unwrap())
    });
    g.bench_function("ServerMsg encode", |b| {
        b.iter(|| black_box(&server).to_json())
    });
    g.bench_function("ServerMsg decode", |b| {
        b.iter(|| ServerMsg::from_json(black_box(&server_json)).unwrap())
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = protocol
}
criterion_main!(benches);
