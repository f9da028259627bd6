//! The local server the editor starts when none is running, like tmux's.
//!
//! When no server was named (no `--server`, no `$COLLAB_SERVER`) and
//! nothing listens on the default loopback address, the editor re-runs its
//! own binary as `collab-tui serve`, in a process group of its own, with
//! no terminal (null stdin/stdout/stderr) and ignoring SIGHUP, so it
//! outlives the editor that started it and the terminal it came from. A
//! second person on the machine who runs the same command joins that
//! server. The server listens on loopback only and stops by itself once it
//! has had no connection for its idle time.

use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The address used when no server is named.
pub const DEFAULT_ADDR: &str = "127.0.0.1:7878";
/// How long an autostarted server lives without connections.
pub const IDLE_SHUTDOWN: Duration = Duration::from_secs(30);

fn listening(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_millis(300)).is_ok()
}

/// Makes sure something listens on `addr`, starting a detached local
/// server if nothing does. `Err` is a sentence for the user.
pub fn ensure_local_server(addr: SocketAddr) -> Result<(), String> {
    if listening(addr) {
        return Ok(());
    }
    let exe = std::env::current_exe().map_err(|e| {
        format!("Cannot start a local server ({e}): run collab-server and pass --server.")
    })?;
    let mut child = Command::new(exe)
        .arg("serve")
        .arg("--bind")
        .arg(addr.to_string())
        .arg("--idle-shutdown")
        .arg(IDLE_SHUTDOWN.as_secs().to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(|e| {
            format!("Cannot start a local server ({e}): run collab-server and pass --server.")
        })?;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if listening(addr) {
            // The child is left running on purpose; it reaps itself as an
            // orphan of init once we exit.
            return Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            // Lost a race with another editor starting one: fine if it is up.
            if listening(addr) {
                return Ok(());
            }
            return Err(format!(
                "The local server could not start ({status}); is {addr} in use by another program? Pass --server to use another."
            ));
        }
        if Instant::now() > deadline {
            return Err(format!(
                "The local server did not start listening on {addr} within 5s: run collab-server yourself and pass --server."
            ));
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}
