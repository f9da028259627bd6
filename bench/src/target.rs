//! The server under test: a child process the bench starts (collab-server,
//! or this binary's `relay`), pinned to a core with `taskset` when asked;
//! a server someone else started (`--url`, `--server-pid`); or
//! collab-server running inside the bench process (`--in-process`, for
//! tests: its CPU and memory figures then include the load generator).

use std::io::{BufRead, BufReader};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long a child has to print its address.
const START_TIMEOUT: Duration = Duration::from_secs(15);

/// A server process started by the bench; stopped (SIGTERM, then SIGKILL)
/// when dropped.
pub struct ChildServer {
    child: Child,
    pub pid: u32,
    pub addr: SocketAddr,
    pub pinned: Option<usize>,
    pub name: String,
}

/// Whether `taskset` can be run.
pub fn have_taskset() -> bool {
    Command::new("taskset")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The address in a line like `... listening on ws://127.0.0.1:4321/ws`.
pub fn parse_listening_line(line: &str) -> Option<SocketAddr> {
    let rest = &line[line.find("ws://")? + 5..];
    let host = rest.split('/').next()?;
    host.trim().parse().ok()
}

impl ChildServer {
    /// Starts `program args...` (under `taskset -c CPU` when `cpu` is set
    /// and taskset exists) and waits for the address line on its stdout.
    pub fn spawn(
        name: &str,
        program: &Path,
        args: &[String],
        cpu: Option<usize>,
    ) -> Result<ChildServer, String> {
        let pinned = cpu.filter(|_| have_taskset());
        let mut cmd = match pinned {
            Some(cpu) => {
                let mut c = Command::new("taskset");
                c.arg("-c").arg(cpu.to_string()).arg(program);
                c
            }
            None => Command::new(program),
        };
        cmd.args(args)
            .env("RUST_LOG", "error")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", program.display()))?;
        // taskset execs the program, so the pid is the server's.
        let pid = child.id();
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| format!("{name}: no stdout"))?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(first)) = lines.next() {
                let _ = tx.send(first);
            }
            // Keep draining so the child never blocks on a full pipe.
            for _ in lines {}
        });
        let line = match rx.recv_timeout(START_TIMEOUT) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "{name} ({}) printed no address within {START_TIMEOUT:?}",
                    program.display()
                ));
            }
        };
        let Some(addr) = parse_listening_line(&line) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("{name}: unexpected first line {line:?}"));
        };
        Ok(ChildServer {
            child,
            pid,
            addr,
            pinned,
            name: name.to_string(),
        })
    }

    /// Stops the child: SIGTERM, up to 5 s to exit, then SIGKILL.
    pub fn stop(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        // Closing stdin stops the relay; SIGTERM stops collab-server.
        drop(self.child.stdin.take());
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Whether the child is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// collab-server running on its own runtime in a thread of this process.
pub struct InProcess {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl InProcess {
    pub fn start(config: collab_server::Config, workers: usize) -> Result<InProcess, String> {
        let (addr_tx, addr_rx) = mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(workers.max(1))
                .enable_all()
                .build();
            let rt = match rt {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = addr_tx.send(Err(e.to_string()));
                    return;
                }
            };
            rt.block_on(async move {
                let listener = match tokio::net::TcpListener::bind("127.0.0.1:0").await {
                    Ok(l) => l,
                    Err(e) => {
                        let _ = addr_tx.send(Err(e.to_string()));
                        return;
                    }
                };
                match listener.local_addr() {
                    Ok(a) => {
                        let _ = addr_tx.send(Ok(a));
                    }
                    Err(e) => {
                        let _ = addr_tx.send(Err(e.to_string()));
                        return;
                    }
                }
                let _ = collab_server::run(listener, config, stopped).await;
            });
            rt.shutdown_timeout(Duration::from_secs(1));
        });
        let addr = addr_rx
            .recv_timeout(START_TIMEOUT)
            .map_err(|_| "the in-process server did not start".to_string())??;
        Ok(InProcess {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            // run() returns within its shutdown grace (3 s by default).
            let _ = t.join();
        }
    }
}

/// The server a run talks to.
pub enum Server {
    Child(ChildServer),
    Attached { addr: SocketAddr, pid: Option<u32> },
    InProcess(InProcess),
}

impl Server {
    pub fn addr(&self) -> SocketAddr {
        match self {
            Server::Child(c) => c.addr,
            Server::Attached { addr, .. } => *addr,
            Server::InProcess(p) => p.addr,
        }
    }

    /// The pid whose CPU and memory are the server's.
    pub fn pid(&self) -> Option<u32> {
        match self {
            Server::Child(c) => Some(c.pid),
            Server::Attached { pid, .. } => *pid,
            Server::InProcess(_) => Some(std::process::id()),
        }
    }

    /// How the server runs, for the report.
    pub fn describe(&self) -> String {
        match self {
            Server::Child(c) => match c.pinned {
                Some(cpu) => format!("{} pid {} pinned to CPU {cpu}", c.name, c.pid),
                None => format!("{} pid {} (not pinned)", c.name, c.pid),
            },
            Server::Attached { addr, pid } => match pid {
                Some(pid) => format!("attached to {addr}, pid {pid}"),
                None => format!("attached to {addr} (no --server-pid: no CPU/RSS figures)"),
            },
            Server::InProcess(p) => format!(
                "in-process at {} (CPU and RSS include the load generator)",
                p.addr
            ),
        }
    }
}

/// The `host:port` of a `ws://` URL, refusing anything but loopback: the
/// bench only ever loads this machine.
pub fn loopback_addr(url: &str) -> Result<SocketAddr, String> {
    let rest = url
        .strip_prefix("ws://")
        .ok_or_else(|| format!("{url:?}: expected ws://127.0.0.1:PORT/ws"))?;
    let host = rest.split('/').next().unwrap_or(rest);
    let addr: SocketAddr = host
        .replace("localhost", "127.0.0.1")
        .parse()
        .map_err(|_| format!("{url:?}: expected ws://127.0.0.1:PORT/ws (an IP and a port)"))?;
    let loopback = match addr.ip() {
        IpAddr::V4(ip) => ip.is_loopback(),
        IpAddr::V6(ip) => ip.is_loopback(),
    };
    if !loopback {
        return Err(format!(
            "{url:?}: collab-bench only loads servers on this machine (127.0.0.0/8 or ::1)"
        ));
    }
    Ok(addr)
}

/// `collab-server` next to this executable (target/release/ when the bench
/// was built with `cargo build --release -p collab-bench -p collab-server`).
pub fn default_server_bin() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?;
    let candidates = [
        dir.join("collab-server"),
        // Under `cargo test` the bench runs from target/*/deps.
        dir.parent()
            .map(|d| d.join("collab-server"))
            .unwrap_or_default(),
    ];
    candidates.into_iter().find(|p| p.is_file())
}

/// The soft limit on open files of `pid` (`/proc/<pid>/limits`).
pub fn nofile_soft_limit(pid: u32) -> Option<u64> {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_address_lines() {
        assert_eq!(
            parse_listening_line("collab-server listening on ws://127.0.0.1:4321/ws"),
            Some(SocketAddr::from(([127, 0, 0, 1], 4321)))
        );
        assert_eq!(
            parse_listening_line("collab-bench relay listening on ws://127.0.0.1:9/relay/"),
            Some(SocketAddr::from(([127, 0, 0, 1], 9)))
        );
        assert_eq!(parse_listening_line("hello"), None);
    }

    #[test]
    fn only_loopback_urls() {
        assert!(loopback_addr("ws://127.0.0.1:7878/ws").is_ok());
        assert!(loopback_addr("ws://localhost:7878/ws").is_ok());
        assert!(loopback_addr("ws://[::1]:7878/ws").is_ok());
        assert!(loopback_addr("ws://10.0.0.1:7878/ws").is_err());
        assert!(loopback_addr("ws://example.com:7878/ws").is_err());
        assert!(loopback_addr("http://127.0.0.1:7878/ws").is_err());
    }
}
