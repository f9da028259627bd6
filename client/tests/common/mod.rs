//! Test helpers: a real collab server on 127.0.0.1:0 and real clients.
//! Every wait is bounded; nothing sleeps to synchronise.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use collab_client::{Backoff, Client, ConnectOptions};
use collab_server::Config;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub struct Server {
    pub url: String,
    stop: Option<oneshot::Sender<()>>,
    pub handle: JoinHandle<std::io::Result<()>>,
}

impl Server {
    pub async fn start() -> Server {
        Self::start_with(Config::default()).await
    }

    pub async fn start_with(config: Config) -> Server {
        Self::start_at("127.0.0.1:0", config).await
    }

    /// A server on the address of an earlier one's `url` (a restart).
    pub async fn start_on(url: &str) -> Server {
        Self::start_on_with(url, Config::default()).await
    }

    /// [`Self::start_on`] with this configuration.
    pub async fn start_on_with(url: &str, config: Config) -> Server {
        let addr = url.trim_start_matches("ws://").trim_end_matches("/ws");
        Self::start_at(addr, config).await
    }

    async fn start_at(addr: &str, config: Config) -> Server {
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let handle = tokio::spawn(collab_server::run(listener, config, async move {
            let _ = stopped.await;
        }));
        Server {
            url: format!("ws://{addr}/ws"),
            stop: Some(stop),
            handle,
        }
    }

    /// Fast reconnects for tests: the server is local.
    pub fn options() -> ConnectOptions {
        ConnectOptions {
            backoff: Backoff {
                initial: Duration::from_millis(5),
                max: Duration::from_millis(100),
                jitter: 0.5,
            },
            ..ConnectOptions::default()
        }
    }

    pub async fn join(&self, room: &str, user: &str) -> Client {
        Client::builder(&self.url, room, user)
            .options(Self::options())
            .timeout(Duration::from_secs(20))
            .join()
            .await
            .unwrap()
    }

    /// The room's text on the server, read through a newcomer's welcome
    /// snapshot (the newcomer leaves again).
    pub async fn room_text(&self, room: &str) -> String {
        let name = format!("probe{}", rand::random::<u32>());
        let probe = self.join(room, &name).await;
        let text = probe.text();
        probe.close().await.unwrap();
        text
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = tokio::time::timeout(Duration::from_secs(10), self.handle).await;
    }
}
