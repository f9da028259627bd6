//! `ws://` and `wss://` against a real server of the other kind: the
//! editor says at once which scheme the server speaks, rather than a
//! generic failure or a wait for the join deadline.
#![allow(clippy::unwrap_used)]

use crate::support;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use collab_tui::app::App;
use collab_tui::net::{self, Net};
use collab_tui::outside::Outside;
use support::config;
use tokio::net::TcpListener;

/// Longer than any answer should take; the join's own deadline.
const JOIN_WITHIN: Duration = Duration::from_secs(10);

/// A self-signed certificate for 127.0.0.1, written as PEM files.
fn certificate() -> (PathBuf, PathBuf) {
    static N: AtomicU32 = AtomicU32::new(0);
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).unwrap();
    let dir = std::env::temp_dir().join(format!(
        "collab-tui-scheme-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
    (cert_path, key_path)
}

/// A real server on 127.0.0.1:0 (TLS with `tls`); its port.
async fn server(tls: Option<(PathBuf, PathBuf)>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tls_cert, tls_key) = tls.unzip();
    let config = collab_server::Config {
        tls_cert,
        tls_key,
        ..collab_server::Config::default()
    };
    tokio::spawn(collab_server::run(
        listener,
        config,
        std::future::pending::<()>(),
    ));
    port
}

/// What joining `url` says, and how long it took to say it.
async fn join_error(url: &str) -> (String, Duration) {
    let mut app = App::new(
        collab_tui::app::Startup {
            server: url.into(),
            ..config("", None)
        },
        Instant::now(),
    );
    let mut out = Outside::new(Net::open(url, None).unwrap());
    let started = Instant::now();
    let said = net::join(&mut app, &mut out, JOIN_WITHIN)
        .await
        .expect_err("the join fails");
    (said, started.elapsed())
}

#[tokio::test]
async fn wss_to_a_plain_server_says_it_speaks_ws() {
    let port = server(None).await;
    let (said, took) = join_error(&format!("wss://127.0.0.1:{port}")).await;
    assert!(
        said.contains("speaks plain ws://, not TLS")
            && said.contains(&format!("ws://127.0.0.1:{port}")),
        "{said}"
    );
    // The plain server closes at once on a TLS hello: no wait for a
    // deadline.
    assert!(took < Duration::from_secs(3), "took {took:?}: {said}");
}

#[tokio::test]
async fn ws_to_a_tls_server_says_it_speaks_wss() {
    let port = server(Some(certificate())).await;
    let (said, took) = join_error(&format!("ws://127.0.0.1:{port}")).await;
    assert!(
        said.contains("speaks TLS") && said.contains(&format!("wss://127.0.0.1:{port}")),
        "{said}"
    );
    assert!(took < Duration::from_secs(3), "took {took:?}: {said}");
}
