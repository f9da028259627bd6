//! `wss://`: the server with a certificate made here, clients that trust it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use collab_protocol::{ClientMsg, ServerMsg, WS_PATH};
use common::{Client, Server, WAIT, edit, replica, test_config};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::timeout;
use tokio_tungstenite::Connector;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// A self-signed certificate for 127.0.0.1 and localhost, written as PEM
/// files in `dir` (a temporary directory the test keeps, removed with it);
/// returns (cert path, key path, cert PEM).
fn certificate(dir: &Path) -> (PathBuf, PathBuf, String) {
    let cert =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
    let pem = cert.cert.pem();
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_path, &pem).unwrap();
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
    (cert_path, key_path, pem)
}

fn connector(ca_pem: &str) -> Connector {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    use tokio_rustls::rustls::{ClientConfig, RootCertStore, crypto::ring};
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Connector::Rustls(Arc::new(config))
}

async fn tls_server(dir: &Path) -> (Server, String) {
    let (cert, key, pem) = certificate(dir);
    let server = Server::start(collab_server::Config {
        tls_cert: Some(cert),
        tls_key: Some(key),
        ..test_config()
    })
    .await;
    (server, pem)
}

async fn wss_client(server: &Server, pem: &str) -> Client {
    let url = format!("wss://127.0.0.1:{}{WS_PATH}", server.addr.port());
    let req = url.into_client_request().unwrap();
    let (ws, _) = timeout(
        WAIT,
        tokio_tungstenite::connect_async_tls_with_config(req, None, true, Some(connector(pem))),
    )
    .await
    .expect("connect in time")
    .expect("a TLS WebSocket");
    Client { ws }
}

#[tokio::test]
async fn wss_clients_join_and_edit_together() {
    let dir = tempfile::tempdir().unwrap();
    let (server, pem) = tls_server(dir.path()).await;
    let mut a = wss_client(&server, &pem).await;
    let w = a.join("r", "alice").await;
    let mut b = wss_client(&server, &pem).await;
    b.join("r", "bob").await;
    a.recv_until(|m| matches!(m, ServerMsg::Joined { .. }))
        .await;

    let mut doc = replica(&w);
    let data = edit(&mut doc, 0, "over TLS");
    a.send(&ClientMsg::Update { seq: 1, data }).await;
    a.recv_until(|m| matches!(m, ServerMsg::Ack { seq: 1 }))
        .await;
    b.recv_until(|m| matches!(m, ServerMsg::Update { .. }))
        .await;

    // A big update goes out in fragments through TLS too.
    let big = "x".repeat(200_000);
    let data = edit(&mut doc, 0, &big);
    a.send(&ClientMsg::Update { seq: 2, data }).await;
    a.recv_until(|m| matches!(m, ServerMsg::Ack { seq: 2 }))
        .await;
    let (mut c, wc) = {
        let mut c = wss_client(&server, &pem).await;
        let w = c.join("r", "carol").await;
        (c, w)
    };
    assert_eq!(replica(&wc).text(), format!("{big}over TLS"));
    c.ping_chat("hi").await;
    c.close().await;
    b.close().await;
    a.close().await;
    server.stop().await;
}

#[tokio::test]
async fn a_tls_server_refuses_plain_clients_and_untrusted_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let (server, pem) = tls_server(dir.path()).await;
    // Plain ws:// fails: the server expects a TLS hello.
    let url = format!("ws://{}{WS_PATH}", server.addr);
    let plain = timeout(WAIT, tokio_tungstenite::connect_async(url))
        .await
        .expect("an answer in time");
    assert!(plain.is_err());
    // A client that does not trust this certificate refuses it.
    let other = tempfile::tempdir().unwrap();
    let (_, _, other_pem) = certificate(other.path());
    let url = format!("wss://127.0.0.1:{}{WS_PATH}", server.addr.port());
    let r = timeout(
        WAIT,
        tokio_tungstenite::connect_async_tls_with_config(
            url.into_client_request().unwrap(),
            None,
            true,
            Some(connector(&other_pem)),
        ),
    )
    .await
    .expect("an answer in time");
    assert!(r.is_err());
    // Trusting clients still get in.
    let mut ok = wss_client(&server, &pem).await;
    ok.join("r", "a").await;
    ok.close().await;
    server.stop().await;
}

#[tokio::test]
async fn healthz_is_served_over_https() {
    let dir = tempfile::tempdir().unwrap();
    let (server, pem) = tls_server(dir.path()).await;
    let Connector::Rustls(config) = connector(&pem) else {
        unreachable!()
    };
    let tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .unwrap();
    tls.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut raw = Vec::new();
    // The server closes after answering; a missing close_notify is fine.
    let _ = timeout(WAIT, tls.read_to_end(&mut raw)).await.unwrap();
    let raw = String::from_utf8_lossy(&raw);
    assert!(raw.starts_with("HTTP/1.1 200"), "{raw}");
    assert!(raw.ends_with("ok\n"), "{raw}");
    server.stop().await;
}

#[tokio::test]
async fn a_bad_certificate_path_stops_run_with_a_clear_error() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let config = collab_server::Config {
        tls_cert: Some("/nonexistent/cert.pem".into()),
        tls_key: Some("/nonexistent/key.pem".into()),
        ..test_config()
    };
    let err = collab_server::run(listener, config, std::future::pending::<()>())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("/nonexistent/cert.pem"), "{err}");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cert, _, _) = certificate(dir.path());
    let config = collab_server::Config {
        tls_cert: Some(cert),
        ..test_config()
    };
    let err = collab_server::run(listener, config, std::future::pending::<()>())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("--tls-key"), "{err}");
}

#[tokio::test]
async fn collab_client_connects_over_wss_with_an_extra_ca() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, _) = certificate(dir.path());
    let server = Server::start(collab_server::Config {
        tls_cert: Some(cert.clone()),
        tls_key: Some(key),
        ..test_config()
    })
    .await;
    let url = format!("wss://127.0.0.1:{}", server.addr.port());
    let options = collab_client::ConnectOptions {
        extra_ca: Some(cert),
        ..collab_client::ConnectOptions::default()
    };
    let join = |user: &'static str| {
        collab_client::Client::builder(&url, "r", user)
            .options(options.clone())
            .timeout(WAIT)
            .join()
    };
    let a = join("alice").await.unwrap();
    let b = join("bob").await.unwrap();
    a.edit(0, 0, "typed over wss").unwrap();
    b.wait_text("typed over wss").await.unwrap();
    a.wait_synced().await.unwrap();
    a.close().await.unwrap();
    b.close().await.unwrap();

    // Without the CA the certificate is not trusted: no join.
    let untrusted = collab_client::Client::builder(&url, "r", "eve")
        .timeout(std::time::Duration::from_millis(500))
        .join()
        .await;
    assert!(untrusted.is_err());
    // A CA file that does not exist is reported at once.
    let missing = collab_client::ConnectOptions {
        extra_ca: Some("/nonexistent/ca.pem".into()),
        ..collab_client::ConnectOptions::default()
    };
    let err = collab_client::Connection::open(&url, missing).unwrap_err();
    assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
    server.stop().await;
}

/// A certificate as a plain `openssl req -x509` makes it: self-signed,
/// marked `CA:TRUE`, and naming some other host. Written as PEM files in
/// `dir`.
fn openssl_style_certificate(dir: &Path) -> (PathBuf, PathBuf) {
    let mut params = rcgen::CertificateParams::new(vec!["collab.example".into()]).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    (cert_path, key_path)
}

#[tokio::test]
async fn a_self_signed_ca_certificate_given_with_ca_is_the_servers_own() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = openssl_style_certificate(dir.path());
    let server = Server::start(collab_server::Config {
        tls_cert: Some(cert.clone()),
        tls_key: Some(key),
        ..test_config()
    })
    .await;
    let url = format!("wss://127.0.0.1:{}", server.addr.port());
    let options = collab_client::ConnectOptions {
        extra_ca: Some(cert),
        ..collab_client::ConnectOptions::default()
    };
    // WebPKI alone refuses it (CaUsedAsEndEntity, and the name): given
    // with --ca, the exact certificate is trusted as this server's.
    let a = collab_client::Client::builder(&url, "r", "alice")
        .options(options)
        .timeout(WAIT)
        .join()
        .await
        .unwrap();
    a.close().await.unwrap();
    server.stop().await;
}
