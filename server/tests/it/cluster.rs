//! A server as a node sharing rooms through Redis (docs/scale-out.md):
//! what this slice of issue 18 does with `--redis`. A real redis-server on
//! a free loopback port, real servers on 127.0.0.1:0.

use std::time::Duration;

use collab_server::{ClusterConfig, Config};
use tokio::time::timeout;

use super::metrics::http;
use crate::common::redis::RedisServer;
use crate::common::{Server, WAIT, test_config};

/// A node of `redis` called `node`, beating every 100 ms.
fn node_config(redis: &RedisServer, node: &str) -> Config {
    let mut cluster = ClusterConfig::new(redis.url().parse().unwrap(), node.parse().unwrap());
    cluster.member_ttl = Duration::from_millis(300);
    Config {
        cluster: Some(cluster),
        ..test_config()
    }
}

/// Waits (bounded) until `/healthz` answers `status`: the heartbeat's
/// verdict is the event, observed through the endpoint a load balancer
/// polls.
async fn healthz_becomes(server: &Server, status: u16) {
    timeout(WAIT, async {
        loop {
            if http(server.addr, "GET", "/healthz").await.0 == status {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("/healthz never answered {status}"));
}

#[tokio::test]
async fn a_node_is_unhealthy_while_redis_is_away_and_recovers_by_itself() {
    let mut redis = RedisServer::start().await;
    let server = Server::start(node_config(&redis, "node-a")).await;
    let (status, _, body) = http(server.addr, "GET", "/healthz").await;
    assert_eq!((status, body.as_str()), (200, "ok\n"));
    let (_, _, metrics) = http(server.addr, "GET", "/metrics").await;
    assert!(
        metrics.contains("\ncollab_cluster_redis_up 1\n"),
        "{metrics}"
    );

    redis.kill().await;
    healthz_becomes(&server, 503).await;
    let (_, _, metrics) = http(server.addr, "GET", "/metrics").await;
    assert!(
        metrics.contains("\ncollab_cluster_redis_up 0\n"),
        "{metrics}"
    );

    redis.restart().await;
    healthz_becomes(&server, 200).await;
    server.stop().await;
}

/// Two nodes cannot share a node id; the id is free again once its node
/// stops.
#[tokio::test]
async fn node_ids_are_unique_and_freed_at_shutdown() {
    let redis = RedisServer::start().await;
    let a = Server::start(node_config(&redis, "node-a")).await;
    // Answered once `a` serves, so after it claimed the id (the listener
    // accepts only then): the twin comes second.
    assert_eq!(http(a.addr, "GET", "/healthz").await.0, 200);
    let twin = Server::start(node_config(&redis, "node-a")).await;
    let err = timeout(WAIT, twin.handle)
        .await
        .expect("run returns")
        .unwrap()
        .expect_err("a second node-a does not start");
    assert!(err.to_string().contains("--node-id"), "{err}");
    a.stop().await;
    let again = Server::start(node_config(&redis, "node-a")).await;
    assert_eq!(http(again.addr, "GET", "/healthz").await.0, 200);
    again.stop().await;
}

/// Without `--redis` nothing of the cluster shows.
#[tokio::test]
async fn a_server_on_its_own_has_no_cluster_metrics() {
    let server = Server::start(test_config()).await;
    let (_, _, metrics) = http(server.addr, "GET", "/metrics").await;
    assert!(!metrics.contains("collab_cluster_"), "{metrics}");
    server.stop().await;
}
