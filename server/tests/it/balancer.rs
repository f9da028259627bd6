//! Issue 18's load balancer for real: the nginx configuration we ship
//! (`contrib/nginx-cluster.conf`), run by a real nginx in front of three
//! real `collab-server` processes sharing one real redis-server, carrying
//! real members; and the compose file (`contrib/compose-cluster.yml`),
//! checked as far as it can be without a container engine.
//!
//! The nodes get the environment the compose file gives them, and
//! `--cap-loopback-per-ip`: in compose nginx is another host to them, so
//! they must not exempt its address as they would a proxy on their own host.
//! Which node served a join is read from the nodes' own `/metrics`
//! (`collab_joins_total`), which nginx does not expose.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use collab_protocol::{ClientMsg, ServerMsg};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::timeout;

use crate::common::caddy::{self, Caddy};
use crate::common::nginx::{Nginx, SHIPPED};
use crate::common::redis::RedisServer;
use crate::common::{Client, WAIT, edit, replica, spawn_binary_env};

/// A `collab-server` process, SIGKILLed when dropped (a failed assert
/// leaves no process behind).
struct Node {
    child: std::process::Child,
    addr: SocketAddr,
}

impl Node {
    async fn start(redis: &RedisServer, id: &str) -> Node {
        let env = compose_node_env();
        let env: Vec<(&str, &str)> = env
            .iter()
            // The test's Redis: given as a flag below.
            .filter(|(k, _)| k != "COLLAB_REDIS")
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let url = redis.url();
        let args = [
            "--redis",
            &url,
            "--node-id",
            id,
            // A killed node's members leave the list soon after.
            "--member-ttl",
            "500ms",
            "--cap-loopback-per-ip",
        ];
        let (child, addr) = spawn_binary_env(&args, &env, Some("warn"), None).await;
        Node { child, addr }
    }

    /// SIGKILL, and the process reaped.
    fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    async fn joins(&self) -> u64 {
        let (status, body) = get(self.addr, "/metrics").await;
        assert_eq!(status, 200, "{body}");
        body.lines()
            .find_map(|l| l.strip_prefix("collab_joins_total "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no collab_joins_total in {body}"))
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every node's `collab_connections_open` (its own `/metrics` request
/// among them, as in every reading).
async fn open_connections(nodes: &[Node]) -> Vec<u64> {
    let mut out = Vec::new();
    for node in nodes {
        let (_, body) = get(node.addr, "/metrics").await;
        out.push(
            body.lines()
                .find_map(|l| l.strip_prefix("collab_connections_open "))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or_else(|| panic!("no collab_connections_open in {body}")),
        );
    }
    out
}

/// Every node's `collab_joins_total`, in order (`None` for a dead one).
async fn joins(nodes: &[Node], alive: &[bool]) -> Vec<Option<u64>> {
    let mut out = Vec::new();
    for (node, alive) in nodes.iter().zip(alive) {
        out.push(if *alive {
            Some(node.joins().await)
        } else {
            None
        });
    }
    out
}

/// The node that counted one join since `before`: waits (bounded) for the
/// count, which a node takes as the welcome goes out, and asserts that only
/// one node counted it.
async fn joined_on(nodes: &[Node], alive: &[bool], before: &[Option<u64>]) -> usize {
    timeout(WAIT, async {
        loop {
            let now = joins(nodes, alive).await;
            let rose: Vec<usize> = (0..nodes.len()).filter(|&i| now[i] > before[i]).collect();
            if !rose.is_empty() {
                assert_eq!(
                    rose.len(),
                    1,
                    "one join counted on {rose:?}: {before:?} {now:?}"
                );
                let i = rose[0];
                assert_eq!(now[i].unwrap() - before[i].unwrap(), 1, "one join");
                return i;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("a node counted the join")
}

/// `GET path` on `addr` (a node, or nginx), `Connection: close` so both end
/// the response by closing: the status and the body.
async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let exchange = async {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).await.unwrap();
        String::from_utf8(raw).unwrap()
    };
    let raw = timeout(WAIT, exchange).await.expect("an answer in time");
    let (head, body) = raw.split_once("\r\n\r\n").expect("a head and a body");
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, body.to_owned())
}

/// The shipped nginx in front of three node processes: two members land on
/// different nodes (least_conn), see each other join, chat and edit; then
/// the node one member is on is SIGKILLed while both type: she reconnects
/// through nginx to a living node, and every replica and a newcomer end
/// equal with every edit exactly once; `/healthz` through nginx answers 200
/// throughout, `/metrics` is not served.
#[tokio::test]
async fn the_shipped_nginx_balances_members_over_nodes_and_survives_a_kill() {
    let redis = RedisServer::start().await;
    let mut nodes = Vec::new();
    for id in ["node-a", "node-b", "node-c"] {
        nodes.push(Node::start(&redis, id).await);
    }
    let addrs: Vec<SocketAddr> = nodes.iter().map(|n| n.addr).collect();
    let nginx = Nginx::start(&addrs).await;
    let mut alive = [true; 3];

    for _ in 0..3 {
        assert_eq!(get(nginx.addr, "/healthz").await.0, 200, "{}", nginx.log());
    }
    assert_eq!(get(nginx.addr, "/metrics").await.0, 404);

    // Nine connections at once, taken by nginx's several workers: least_conn
    // over counts they share (the upstream's zone) gives each node three.
    // Nothing but the reading's own request open at any node: the
    // `/healthz` requests above reached the nodes through nginx, whose
    // upstream connections may still be closing (a baseline taken while
    // one was gave [3, 3, 2] under load, a connection short).
    let baseline = vec![1; nodes.len()];
    timeout(WAIT, async {
        while open_connections(&nodes).await != baseline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the nodes' earlier connections closed");
    let spread = futures::future::join_all((0..9).map(|_| Client::connect(nginx.addr))).await;
    let held: Vec<u64> = open_connections(&nodes)
        .await
        .iter()
        .zip(&baseline)
        .map(|(now, was)| now - was)
        .collect();
    assert_eq!(held, [3, 3, 3], "connections per node\n{}", nginx.log());
    for c in spread {
        c.close().await;
    }
    // Closed at the nodes, so closed in nginx's counts before the joins.
    timeout(WAIT, async {
        while open_connections(&nodes).await != baseline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the nine connections closed");

    // Two members through nginx land on two nodes, and share one room.
    let before = joins(&nodes, &alive).await;
    let mut alice = Client::connect(nginx.addr).await;
    let wa = alice.join("lb", "alice").await;
    let on_alice = joined_on(&nodes, &alive, &before).await;
    let before = joins(&nodes, &alive).await;
    let mut bob = Client::connect(nginx.addr).await;
    let wb = bob.join("lb", "bob").await;
    let on_bob = joined_on(&nodes, &alive, &before).await;
    assert_ne!(
        on_alice, on_bob,
        "least_conn sends bob to a node without members"
    );
    assert_eq!(wb.members.len(), 2, "bob sees alice: {:?}", wb.members);
    match alice
        .recv_until(|m| matches!(m, ServerMsg::Joined { .. }))
        .await
    {
        ServerMsg::Joined { member } => assert_eq!(member, wb.you),
        _ => unreachable!(),
    }
    alice
        .send(&ClientMsg::Chat {
            text: "hi bob".into(),
        })
        .await;
    match bob
        .recv_until(|m| matches!(m, ServerMsg::Chat { .. }))
        .await
    {
        ServerMsg::Chat { from, text, .. } => {
            assert_eq!((from.id, text.as_str()), (wa.you.id, "hi bob"));
        }
        _ => unreachable!(),
    }
    let mut da = replica(&wa);
    alice
        .send(&ClientMsg::Update {
            seq: 1,
            data: edit(&mut da, 0, "from alice. "),
        })
        .await;
    alice
        .recv_until(|m| matches!(m, ServerMsg::Ack { seq: 1 }))
        .await;
    let mut db = replica(&wb);
    match bob
        .recv_until(|m| matches!(m, ServerMsg::Update { .. }))
        .await
    {
        ServerMsg::Update { from, data } => {
            assert_eq!(from, wa.you.id);
            db.import(data.as_slice()).unwrap();
        }
        _ => unreachable!(),
    }
    let at = db.len_chars();
    bob.send(&ClientMsg::Update {
        seq: 1,
        data: edit(&mut db, at, "from bob."),
    })
    .await;
    bob.send(&ClientMsg::Chat {
        text: "hi alice".into(),
    })
    .await;
    match alice
        .recv_until(|m| matches!(m, ServerMsg::Update { .. }))
        .await
    {
        ServerMsg::Update { from, data } => {
            assert_eq!(from, wb.you.id);
            da.import(data.as_slice()).unwrap();
        }
        _ => unreachable!(),
    }
    match alice
        .recv_until(|m| matches!(m, ServerMsg::Chat { .. }))
        .await
    {
        ServerMsg::Chat { from, text, .. } => {
            assert_eq!((from.id, text.as_str()), (wb.you.id, "hi alice"));
        }
        _ => unreachable!(),
    }
    assert_eq!(da.text(), "from alice. from bob.");
    alice.close().await;
    bob.recv_until(|m| matches!(m, ServerMsg::Left { .. }))
        .await;
    bob.close().await;

    // Two typing members through nginx, on two nodes; ann's node dies.
    let join = |user: &'static str| {
        let url = nginx.url();
        async move {
            collab_client::Client::builder(&url, "typing", user)
                .timeout(Duration::from_secs(30))
                .join()
                .await
                .unwrap()
        }
    };
    let names = ["ann", "bea"];
    let before = joins(&nodes, &alive).await;
    let ann = join(names[0]).await;
    let on_ann = joined_on(&nodes, &alive, &before).await;
    let before = joins(&nodes, &alive).await;
    let bea = join(names[1]).await;
    let on_bea = joined_on(&nodes, &alive, &before).await;
    assert_ne!(
        on_ann, on_bea,
        "least_conn sends bea to a node without members"
    );
    let members = [ann, bea];

    const EDITS: usize = 40;
    let (halfway, mut at_halfway) = tokio::sync::mpsc::channel::<()>(2);
    let typing: Vec<_> = members
        .iter()
        .zip(names)
        .map(|(m, name)| {
            let halfway = halfway.clone();
            async move {
                for i in 0..EDITS {
                    if i == EDITS / 2 {
                        let _ = halfway.send(()).await;
                    }
                    let at = m.text().chars().count();
                    m.edit(at, 0, &format!("[{name}.{i}]")).unwrap();
                    // Typing pace (not a wait for anything).
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        })
        .collect();
    drop(halfway);
    let before_kill = joins(&nodes, &alive).await;
    let kill = async {
        for _ in 0..2 {
            at_halfway.recv().await;
        }
        nodes[on_ann].kill();
    };
    tokio::join!(futures::future::join_all(typing), kill);
    alive[on_ann] = false;

    // Ann came back through nginx, on a living node.
    members[0]
        .wait_for(|s| s.replica().welcomes() >= 2)
        .await
        .unwrap_or_else(|e| panic!("{e}\nnginx:\n{}", nginx.log()));
    let before: Vec<Option<u64>> = before_kill
        .iter()
        .zip(alive)
        .map(|(n, alive)| n.filter(|_| alive))
        .collect();
    let rejoined = joined_on(&nodes, &alive, &before).await;
    assert!(alive[rejoined]);

    for m in &members {
        m.wait_synced().await.unwrap();
    }
    let text = members[1].text();
    for m in &members {
        m.wait_text(&text).await.unwrap();
    }
    for name in names {
        for i in 0..EDITS {
            let token = format!("[{name}.{i}]");
            assert_eq!(text.matches(&token).count(), 1, "{token} in {text}");
        }
    }
    let newcomer = join("cy").await;
    newcomer.wait_text(&text).await.unwrap();

    // The dead node is skipped: every health check through nginx passes.
    for _ in 0..3 {
        assert_eq!(get(nginx.addr, "/healthz").await.0, 200, "{}", nginx.log());
    }
}

fn contrib() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../contrib")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The `x-node-env` map of the compose file: what every node's environment
/// holds besides its id.
fn compose_node_env() -> Vec<(String, String)> {
    let compose = read(&contrib().join("compose-cluster.yml"));
    let mut lines = compose
        .lines()
        .skip_while(|l| !l.starts_with("x-node-env:"))
        .skip(1);
    let mut env = Vec::new();
    for line in lines.by_ref() {
        if !line.starts_with(' ') {
            break;
        }
        let line = line.trim();
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let (k, v) = line.split_once(':').expect("KEY: value");
        env.push((k.trim().to_owned(), v.trim().trim_matches('"').to_owned()));
    }
    assert!(!env.is_empty(), "an x-node-env map in the compose file");
    env
}

/// Every `COLLAB_*` name in `text`.
fn collab_vars(text: &str) -> Vec<&str> {
    let mut out: Vec<&str> = text
        .match_indices("COLLAB_")
        .map(|(at, _)| {
            let end = text[at..]
                .find(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
                .map_or(text.len(), |n| at + n);
            &text[at..end]
        })
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// What can be checked of the compose file without a container engine:
/// the variables it and the image set are ones the server reads, the files
/// it mounts and builds from exist, the token file is written where compose
/// reads it and kept out of the image, nginx's upstream names the compose
/// services on the port the image binds, and the per-address caps are
/// lifted (nginx is another host to the nodes).
#[test]
fn the_compose_file_fits_the_server_and_the_files_we_ship() {
    let dir = contrib();
    let compose = read(&dir.join("compose-cluster.yml"));
    let dockerfile = read(&dir.join("Dockerfile"));
    let help = std::process::Command::new(env!("CARGO_BIN_EXE_collab-server"))
        .arg("--help")
        .env_clear()
        .output()
        .unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    for (file, text) in [("compose", &compose), ("Dockerfile", &dockerfile)] {
        let vars = collab_vars(text);
        assert!(!vars.is_empty());
        for var in vars {
            assert!(
                help.contains(&format!("[env: {var}=")) || help.contains(&format!("[env: {var}]")),
                "the {file} sets {var}, which collab-server --help does not list"
            );
        }
    }

    // Host files it mounts (relative to the compose file) and builds from.
    let mounts: Vec<&str> = compose
        .match_indices("\"./")
        .map(|(at, _)| {
            let rest = &compose[at + 1..];
            &rest[..rest.find(':').expect("host:container")]
        })
        .collect();
    assert!(!mounts.is_empty());
    for mount in mounts {
        assert!(dir.join(mount).is_file(), "compose mounts {mount}");
    }
    assert!(compose.contains("context: ..") && compose.contains("dockerfile: contrib/Dockerfile"));
    assert!(dir.join("../contrib/Dockerfile").is_file());
    // BuildKit reads <Dockerfile>.dockerignore: the token stays out of it.
    let ignore = read(&dir.join("Dockerfile.dockerignore"));
    assert!(ignore.lines().any(|l| l == "**/collab.env"), "{ignore}");

    // The token file: compose reads env_file beside the compose file, and
    // the instructions (run from the repository root) write it there.
    let env_file = compose
        .lines()
        .find_map(|l| l.trim().strip_prefix("env_file: "))
        .expect("an env_file");
    assert!(
        compose.contains(&format!("> contrib/{env_file}\n")),
        "the header writes {env_file} where compose reads it"
    );

    // nginx's upstream: the compose services, on the image's port.
    let bind = dockerfile
        .split_whitespace()
        .find_map(|w| w.strip_prefix("COLLAB_BIND="))
        .expect("the image's COLLAB_BIND");
    let port = bind.rsplit(':').next().unwrap();
    for node in ["node-a", "node-b", "node-c"] {
        assert!(
            SHIPPED.contains(&format!("server {node}:{port} ")),
            "{node}:{port}"
        );
        assert!(
            compose.contains(&format!("\n  {node}:\n")),
            "service {node}"
        );
        assert!(compose.contains(&format!("COLLAB_NODE_ID: {node}\n")));
    }
    assert!(SHIPPED.contains("listen 7878;") && compose.contains("ports: [\"7878:7878\"]"));

    // Every client reaches a node from nginx's one address.
    assert_eq!(
        compose.matches("<<: *node-env\n").count(),
        3,
        "each node merges x-node-env"
    );
    let env = compose_node_env();
    let value = |k: &str| {
        env.iter()
            .find(|(name, _)| name == k)
            .map(|(_, v)| v.parse::<usize>().unwrap())
            .unwrap_or_else(|| panic!("the nodes' environment sets {k}"))
    };
    assert!(
        value("COLLAB_MAX_CONNECTIONS_PER_IP") >= 1024,
        "--max-connections"
    );
    assert!(
        value("COLLAB_MAX_HALF_OPEN_PER_IP") >= 256,
        "--max-half-open"
    );
}

/// The Caddyfile blocks docs/deploy.md shows, one node's and the
/// cluster's, are ones a real Caddy takes (`caddy adapt`). Debian 12's
/// Caddy (2.6.2, what .ci/run installs) refused both, over
/// `stream_close_delay`, which came in Caddy 2.7: the guide now gives it
/// as a comment.
#[tokio::test]
async fn the_documented_caddy_blocks_load() {
    let blocks = caddy::caddyfile_blocks(caddy::DEPLOY);
    assert_eq!(blocks.len(), 2, "one node's block and the cluster's");
    let one: SocketAddr = "127.0.0.1:7001".parse().unwrap();
    let listen: SocketAddr = "127.0.0.1:7000".parse().unwrap();
    let three: Vec<SocketAddr> = ["127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7003"]
        .iter()
        .map(|a| a.parse().unwrap())
        .collect();
    for (block, nodes) in blocks.iter().zip([vec![one], three]) {
        let config = caddy::site_config(block, &nodes, listen);
        if let Err(said) = caddy::adapts(&config).await {
            panic!("caddy refuses the documented block\n{config}\n{said}");
        }
    }
}

/// The guide's cluster block, run by a real Caddy in front of three node
/// processes sharing a real redis-server: members joining one after
/// another land on nodes without members (least_conn counts a WebSocket
/// for as long as it is open), see each other join, chat and edit across
/// nodes; `/metrics` is not served through it.
#[tokio::test]
async fn the_documented_caddy_block_balances_members_over_nodes() {
    let redis = RedisServer::start().await;
    let mut nodes = Vec::new();
    for id in ["node-a", "node-b", "node-c"] {
        nodes.push(Node::start(&redis, id).await);
    }
    let addrs: Vec<SocketAddr> = nodes.iter().map(|n| n.addr).collect();
    let blocks = caddy::caddyfile_blocks(caddy::DEPLOY);
    let cluster = blocks
        .iter()
        .find(|b| b.contains("lb_policy"))
        .expect("the guide's cluster block");
    let proxy = Caddy::start(cluster, &addrs).await;
    let alive = [true; 3];
    assert_eq!(get(proxy.addr, "/metrics").await.0, 404);

    let mut members = Vec::new();
    let mut on = Vec::new();
    for name in ["alice", "bob", "carol"] {
        let before = joins(&nodes, &alive).await;
        let mut c = Client::connect(proxy.addr).await;
        let w = c.join("caddy", name).await;
        on.push(joined_on(&nodes, &alive, &before).await);
        members.push((c, w));
    }
    on.sort_unstable();
    assert_eq!(on, [0, 1, 2], "one member per node\n{}", proxy.log());

    let (mut carol, wc) = members.pop().unwrap();
    let (mut bob, _) = members.pop().unwrap();
    let (mut alice, wa) = members.pop().unwrap();
    assert_eq!(wc.members.len(), 3, "carol sees both: {:?}", wc.members);
    match alice
        .recv_until(|m| matches!(m, ServerMsg::Joined { member } if member.id == wc.you.id))
        .await
    {
        ServerMsg::Joined { member } => assert_eq!(member, wc.you),
        _ => unreachable!(),
    }
    carol
        .send(&ClientMsg::Chat {
            text: "hi all".into(),
        })
        .await;
    for m in [&mut alice, &mut bob] {
        match m.recv_until(|m| matches!(m, ServerMsg::Chat { .. })).await {
            ServerMsg::Chat { from, text, .. } => {
                assert_eq!((from.id, text.as_str()), (wc.you.id, "hi all"));
            }
            _ => unreachable!(),
        }
    }
    let mut da = replica(&wa);
    alice
        .send(&ClientMsg::Update {
            seq: 1,
            data: edit(&mut da, 0, "from alice"),
        })
        .await;
    alice
        .recv_until(|m| matches!(m, ServerMsg::Ack { seq: 1 }))
        .await;
    let mut dc = replica(&wc);
    match carol
        .recv_until(|m| matches!(m, ServerMsg::Update { .. }))
        .await
    {
        ServerMsg::Update { from, data } => {
            assert_eq!(from, wa.you.id);
            dc.import(data.as_slice()).unwrap();
        }
        _ => unreachable!(),
    }
    assert_eq!(dc.text(), "from alice");
}
