//! A real Caddy for tests, configured by the Caddyfile blocks docs/deploy.md
//! shows, so what an operator copies from there is what the tests run.
//!
//! A block is taken as written with three substitutions only: its site
//! address (`collab.example.org`, for which Caddy would fetch a certificate)
//! by `http://` and a free loopback port, and its upstreams (`node-X:7878`,
//! or `127.0.0.1:7878` for one node) by the test's nodes, in order of first
//! appearance. The global options turn the admin endpoint off (it listens
//! on port 2019 otherwise, one per machine), and Caddy's data and config
//! directories are a temporary one: nothing outside it, no root.
//!
//! Readiness is an event: Caddy logs "serving initial configuration" once
//! its listener is bound. Like nginx it cannot be given port 0, so a port
//! the kernel just handed out is tried, and another taken when Caddy says
//! it is in use.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

use super::daemon::{Log, Signs, Start, on_a_free_port, ready};

/// How long Caddy may take to say it is ready.
const READY_WITHIN: Duration = Duration::from_secs(10);

/// The deployment guide, whose Caddyfile blocks are what is run.
pub const DEPLOY: &str = include_str!("../../../docs/deploy.md");

/// The site address the guide's blocks use.
const SITE: &str = "collab.example.org";

/// The binary: `$COLLAB_CADDY`, else `caddy` on `PATH`.
fn binary() -> PathBuf {
    std::env::var_os("COLLAB_CADDY").map_or_else(|| PathBuf::from("caddy"), PathBuf::from)
}

/// The ```` ```caddyfile ```` blocks of `markdown`, in order.
pub fn caddyfile_blocks(markdown: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in markdown.lines() {
        match &mut current {
            None if line.trim() == "```caddyfile" => current = Some(String::new()),
            None => {}
            Some(_) if line.trim() == "```" => blocks.extend(current.take()),
            Some(block) => {
                block.push_str(line);
                block.push('\n');
            }
        }
    }
    blocks
}

/// `block` served on `listen` in front of `nodes` (see the module's doc),
/// with the global options first.
pub fn site_config(block: &str, nodes: &[SocketAddr], listen: SocketAddr) -> String {
    assert_eq!(block.matches(SITE).count(), 1, "one {SITE} in\n{block}");
    let mut upstreams: Vec<&str> = Vec::new();
    for word in block.split_whitespace() {
        let upstream = word.ends_with(":7878")
            && (word.starts_with("node-") || word.starts_with("127.0.0.1:"));
        if upstream && !upstreams.contains(&word) {
            upstreams.push(word);
        }
    }
    assert_eq!(
        upstreams.len(),
        nodes.len(),
        "the block names {upstreams:?}, the test starts {} nodes",
        nodes.len()
    );
    let mut site = block.replacen(SITE, &format!("http://{listen}"), 1);
    for (name, addr) in upstreams.iter().zip(nodes) {
        site = site.replace(name, &addr.to_string());
    }
    format!("{{\n\tadmin off\n}}\n\n{site}")
}

/// Whether Caddy takes `config` (`caddy adapt`): `Err` with what it said.
pub async fn adapts(config: &str) -> Result<(), String> {
    let dir = tempfile::tempdir().expect("a temporary directory for caddy");
    let path = dir.path().join("Caddyfile");
    std::fs::write(&path, config).unwrap();
    let out = command(dir.path())
        .args(["adapt", "--adapter", "caddyfile", "--config"])
        .arg(&path)
        .output()
        .await
        .unwrap_or_else(|e| panic!("{}", not_started(&e)));
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// A running Caddy with its own directory.
pub struct Caddy {
    pub addr: SocketAddr,
    child: Child,
    log: Log,
    dir: tempfile::TempDir,
}

impl Caddy {
    /// Caddy serving `block` in front of `nodes`.
    pub async fn start(block: &str, nodes: &[SocketAddr]) -> Caddy {
        let dir = tempfile::tempdir().expect("a temporary directory for caddy");
        let path = dir.path().join("Caddyfile");
        let (addr, (child, log)) = on_a_free_port("caddy", |addr| {
            std::fs::write(&path, site_config(block, nodes, addr)).unwrap();
            spawn(dir.path(), &path)
        })
        .await;
        Caddy {
            addr,
            child,
            log,
            dir,
        }
    }

    /// What Caddy logged so far (for a failing test's message).
    pub fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }
}

impl Drop for Caddy {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// `caddy` with its home, data and config directories under `dir`.
fn command(dir: &Path) -> Command {
    let mut cmd = Command::new(binary());
    cmd.env("HOME", dir)
        .env("XDG_DATA_HOME", dir.join("data"))
        .env("XDG_CONFIG_HOME", dir.join("config"))
        .stdin(Stdio::null())
        .kill_on_drop(true);
    cmd
}

fn not_started(e: &std::io::Error) -> String {
    let bin = binary();
    if e.kind() == std::io::ErrorKind::NotFound {
        format!(
            "{} not found: the Caddy tests need a real caddy. Install it (Debian: `apt-get install caddy`, which .ci/run does; only the binary is used) or point COLLAB_CADDY at the binary",
            bin.display()
        )
    } else {
        format!("cannot start {}: {e}", bin.display())
    }
}

const SIGNS: Signs = Signs {
    name: "caddy",
    ready: "serving initial configuration",
    taken: "address already in use",
    within: READY_WITHIN,
};

async fn spawn(dir: &Path, config: &Path) -> Result<(Child, Log), Start> {
    let mut child = command(dir)
        .args(["run", "--adapter", "caddyfile", "--config"])
        .arg(config)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Start::Failed(not_started(&e)))?;
    match ready(&mut child, &SIGNS).await {
        Ok(log) => Ok((child, log)),
        Err(e) => {
            let _ = child.start_kill();
            Err(e)
        }
    }
}
