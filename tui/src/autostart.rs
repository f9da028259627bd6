//! The local server the editor starts when none is running, like tmux's.
//!
//! When no server was named (no `--server`, no `$COLLAB_SERVER`) and
//! nothing listens on the default loopback address, the editor re-runs its
//! own binary as `collab-tui serve`, in a process group of its own, with
//! no terminal (null stdin/stdout/stderr) and ignoring SIGHUP, so it
//! outlives the editor that started it and the terminal it came from. A
//! second person on the machine who runs the same command joins that
//! server. The server listens on loopback only and stops by itself once it
//! has had no connection for its idle time. It keeps its rooms on disk, in
//! `local/` under the platform's data directory (`~/.local/share/collab/local`),
//! so a crash of it loses at most its last flush window; `local/` rather
//! than the directory itself, because a `collab-server` run with its
//! defaults holds that store's lock.
//!
//! The server can die under its users (killed, out of memory). Every editor
//! using the default address checks, when its connection drops, whether
//! anything still listens, and starts a new server if not (the first one to
//! try wins the address; the others find it listening). The editors then
//! reconnect at once and bring back their history, which the new server
//! merges with what it kept on disk.
//!
//! A spawned server is its editor's child: a thread waits for it, so one
//! that exits (it lost the race for the address to another editor's, or it
//! was killed) is reaped at once rather than left defunct until the editor
//! exits.

use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The address used when no server is named.
pub const DEFAULT_ADDR: &str = "127.0.0.1:7878";
/// How long an autostarted server lives without connections.
pub const IDLE_SHUTDOWN: Duration = Duration::from_secs(30);
/// Overrides [`DEFAULT_ADDR`] (a loopback address): for tests, which must
/// not share the machine's default server, and for a private one.
pub const ADDR_ENV: &str = "COLLAB_LOCAL_ADDR";

/// What [`ensure_local_server`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Local {
    /// Something already listened.
    Running,
    /// This editor started a server, which listens now.
    Started,
}

/// The local server's address: `$COLLAB_LOCAL_ADDR`, else [`DEFAULT_ADDR`].
pub fn local_addr() -> Result<SocketAddr, String> {
    parse_local_addr(std::env::var(ADDR_ENV).ok())
}

fn parse_local_addr(env: Option<String>) -> Result<SocketAddr, String> {
    let text = env
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_ADDR.to_owned());
    let addr: SocketAddr = text.trim().parse().map_err(|e| {
        format!("${ADDR_ENV} {text:?} is not an address ({e}): use 127.0.0.1:PORT.")
    })?;
    if !addr.ip().is_loopback() {
        return Err(format!(
            "${ADDR_ENV} {addr} is not a loopback address: the local server listens on loopback only."
        ));
    }
    Ok(addr)
}

fn listening(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_millis(300)).is_ok()
}

/// Makes sure something listens on `addr`, starting a detached local
/// server if nothing does. `Err` is a sentence for the user.
pub fn ensure_local_server(addr: SocketAddr) -> Result<Local, String> {
    if listening(addr) {
        return Ok(Local::Running);
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
            // Ours, or another editor's that won the race: either way ours
            // is reaped when it exits.
            reap(child);
            return Ok(Local::Started);
        }
        if let Ok(Some(status)) = child.try_wait() {
            // Lost a race with another editor starting one: fine if it is up.
            if listening(addr) {
                return Ok(Local::Running);
            }
            return Err(format!(
                "The local server could not start ({status}); is {addr} in use by another program? Pass --server to use another."
            ));
        }
        if Instant::now() > deadline {
            reap(child);
            return Err(format!(
                "The local server did not start listening on {addr} within 5s: run collab-server yourself and pass --server."
            ));
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// Waits for `child` on a thread of its own, so it never stays defunct.
fn reap(mut child: Child) {
    let spawned = std::thread::Builder::new()
        .name("reap-local-server".into())
        .spawn(move || {
            let _ = child.wait();
        });
    // Without a thread it is reaped when the editor exits, as before.
    drop(spawned);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_address_is_loopback_only() {
        assert_eq!(parse_local_addr(None), Ok(DEFAULT_ADDR.parse().unwrap()));
        assert_eq!(
            parse_local_addr(Some(" ".into())),
            Ok(DEFAULT_ADDR.parse().unwrap())
        );
        assert_eq!(
            parse_local_addr(Some("127.0.0.1:9000".into())),
            Ok("127.0.0.1:9000".parse().unwrap())
        );
        assert!(parse_local_addr(Some("10.0.0.1:9000".into())).is_err());
        assert!(parse_local_addr(Some("nonsense".into())).is_err());
    }

    #[test]
    fn a_spawned_server_that_exits_is_reaped_at_once() {
        // As a server that lost the race for the address: it exits at once.
        let child = Command::new("sh").args(["-c", "exit 1"]).spawn().unwrap();
        let proc = std::path::PathBuf::from(format!("/proc/{}", child.id()));
        reap(child);
        // Gone from the process table, not left defunct (a zombie keeps
        // its /proc entry until its parent waits for it).
        let until = Instant::now() + Duration::from_secs(10);
        while proc.exists() {
            assert!(Instant::now() < until, "{} stays defunct", proc.display());
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}
