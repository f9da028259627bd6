//! A real `redis-server` for tests: started on a free loopback port in a
//! temporary directory, killed when dropped.
//!
//! Readiness is an event, not a sleep: the server logs to its stdout, and
//! the helper reads it until "Ready to accept connections". Redis cannot be
//! told to pick its own port (`--port 0` turns TCP off), so the helper
//! takes a port the kernel just handed out and starts again on another one
//! when the server says it is in use (another test took it in between).
//!
//! It is shared by the integration tests (`tests/it`) and by the unit tests
//! of `src/cluster` (through `#[path]`), so it uses nothing but tokio, std
//! and tempfile.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// How long redis-server may take to say it is ready.
const READY_WITHIN: Duration = Duration::from_secs(10);

/// The binary, from `$COLLAB_REDIS_SERVER` or `PATH`.
fn binary() -> PathBuf {
    std::env::var_os("COLLAB_REDIS_SERVER")
        .map_or_else(|| PathBuf::from("redis-server"), PathBuf::from)
}

/// A running redis-server with its own directory.
pub struct RedisServer {
    pub port: u16,
    child: Option<Child>,
    dir: tempfile::TempDir,
    appendonly: bool,
}

impl RedisServer {
    /// A redis-server without persistence.
    pub async fn start() -> RedisServer {
        Self::start_with(false).await
    }

    /// A redis-server with `appendonly yes` (for restart tests).
    pub async fn start_persistent() -> RedisServer {
        Self::start_with(true).await
    }

    async fn start_with(appendonly: bool) -> RedisServer {
        let dir = tempfile::tempdir().expect("a temporary directory for redis-server");
        for _ in 0..10 {
            let port = free_port();
            match spawn(dir.path(), port, appendonly).await {
                Ok(child) => {
                    return RedisServer {
                        port,
                        child: Some(child),
                        dir,
                        appendonly,
                    };
                }
                Err(Start::PortTaken) => continue,
                Err(Start::Failed(why)) => panic!("{why}"),
            }
        }
        panic!("redis-server found no free port in 10 tries");
    }

    /// `redis://127.0.0.1:PORT/0`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Its working directory (the AOF lives there).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// SIGKILL, and wait for the process to be gone.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }

    /// Starts it again on the same port and directory (after [`kill`]):
    /// with `appendonly` it comes back with its data.
    ///
    /// [`kill`]: RedisServer::kill
    pub async fn restart(&mut self) {
        self.kill().await;
        // The port was ours a moment ago; a TIME_WAIT socket does not stop
        // redis (it sets SO_REUSEADDR), another process taking it would.
        match spawn(self.dir.path(), self.port, self.appendonly).await {
            Ok(child) => self.child = Some(child),
            Err(Start::PortTaken) => panic!("port {} was taken while redis was down", self.port),
            Err(Start::Failed(why)) => panic!("{why}"),
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
    }
}

enum Start {
    PortTaken,
    Failed(String),
}

/// A port the kernel considers free now.
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("its address").port()
}

async fn spawn(dir: &Path, port: u16, appendonly: bool) -> Result<Child, Start> {
    let bin = binary();
    let mut child = Command::new(&bin)
        .args(["--port", &port.to_string()])
        .args(["--bind", "127.0.0.1"])
        .args(["--save", ""])
        .args(["--appendonly", if appendonly { "yes" } else { "no" }])
        .args(["--logfile", ""])
        .args(["--daemonize", "no"])
        .arg("--dir")
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| {
            Start::Failed(if e.kind() == std::io::ErrorKind::NotFound {
                format!(
                    "{} not found: these tests need a real Redis. Install it (Debian: `apt-get install redis-server`, which .ci/run does) or point COLLAB_REDIS_SERVER at the binary",
                    bin.display()
                )
            } else {
                format!("cannot start {}: {e}", bin.display())
            })
        })?;
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(stdout).lines();
    let mut log = Vec::new();
    let ready = tokio::time::timeout(READY_WITHIN, async {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains("Ready to accept connections") {
                return Ok(());
            }
            let taken = line.contains("Address already in use");
            log.push(line);
            if taken {
                return Err(Start::PortTaken);
            }
        }
        Err(Start::Failed(format!(
            "redis-server exited before it was ready:\n{}",
            log.join("\n")
        )))
    })
    .await;
    match ready {
        Ok(Ok(())) => {
            // Keep draining its log so a full pipe never stalls it.
            tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
            Ok(child)
        }
        Ok(Err(e)) => {
            let _ = child.kill().await;
            Err(e)
        }
        Err(_) => {
            let _ = child.kill().await;
            Err(Start::Failed(format!(
                "redis-server was not ready within {READY_WITHIN:?}"
            )))
        }
    }
}
