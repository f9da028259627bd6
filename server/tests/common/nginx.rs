//! A real nginx for tests, in front of real nodes, configured by the file
//! we ship (`contrib/nginx-cluster.conf`).
//!
//! The shipped file is what the nginx image includes inside its `http`
//! block (compose mounts it as `conf.d/default.conf`). The helper writes it
//! to a temporary prefix with two substitutions only, the `node-X:7878`
//! upstream servers by the nodes' loopback addresses and `listen 7878` by a
//! free loopback port, and wraps it in a main file shaped like the image's
//! own `nginx.conf` (`worker_processes auto`, so several workers share the
//! upstream as they do there), with the pid file, temp paths and log under
//! the prefix: no root, nothing outside the temporary directory.
//!
//! Readiness is an event: the master logs "start worker processes" at
//! `notice` once its listening socket is bound. nginx cannot be given port
//! 0, so, as for redis-server, a port the kernel just handed out is tried and
//! another one taken when nginx says it is in use. nginx runs in a process
//! group of its own, killed as a whole when the guard drops (killing the
//! master alone would leave its workers serving).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

use super::daemon::{Log, Signs, Start, on_a_free_port, ready};

/// How long nginx may take to say it is ready.
const READY_WITHIN: Duration = Duration::from_secs(10);

/// The shipped configuration.
pub const SHIPPED: &str = include_str!("../../../contrib/nginx-cluster.conf");

/// The binary: `$COLLAB_NGINX`, else `nginx` on `PATH`, else Debian's
/// `/usr/sbin/nginx` (not on a user's `PATH`).
fn binary() -> PathBuf {
    if let Some(bin) = std::env::var_os("COLLAB_NGINX") {
        return PathBuf::from(bin);
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("nginx"))
            .find(|bin| bin.is_file())
    });
    on_path.unwrap_or_else(|| PathBuf::from("/usr/sbin/nginx"))
}

/// `shipped` with its upstream servers (`node-X:7878`, in order) replaced
/// by `nodes` and its `listen 7878;` by `listen`: every other directive
/// kept as it is.
pub fn site_config(shipped: &str, nodes: &[SocketAddr], listen: SocketAddr) -> String {
    let servers: Vec<&str> = shipped
        .split(|c: char| c.is_whitespace() || c == ';')
        .filter(|word| word.starts_with("node-") && word.ends_with(":7878"))
        .collect();
    assert_eq!(
        servers.len(),
        nodes.len(),
        "the shipped upstream names {servers:?}, the test starts {} nodes",
        nodes.len()
    );
    let mut site = shipped.to_owned();
    for (name, addr) in servers.iter().zip(nodes) {
        let at = format!("server {name} ");
        assert_eq!(site.matches(&at).count(), 1, "{at:?} once in the upstream");
        site = site.replacen(&at, &format!("server {addr} "), 1);
    }
    assert_eq!(
        site.matches("listen 7878;").count(),
        1,
        "one `listen 7878;` in the shipped file"
    );
    site.replacen("listen 7878;", &format!("listen {listen};"), 1)
}

/// The main file: the nginx image's `/etc/nginx/nginx.conf` (1.x), its
/// paths moved under the prefix, its access log off (the error log is
/// what the helper reads), `user` dropped (ignored unless root anyway).
const MAIN: &str = "\
worker_processes auto;
error_log stderr notice;
pid nginx.pid;

events {
    worker_connections 1024;
}

http {
    default_type application/octet-stream;
    access_log off;
    sendfile on;
    keepalive_timeout 65;
    client_body_temp_path temp/body;
    proxy_temp_path temp/proxy;
    fastcgi_temp_path temp/fastcgi;
    uwsgi_temp_path temp/uwsgi;
    scgi_temp_path temp/scgi;
    include conf.d/*.conf;
}
";

/// A running nginx with its own prefix directory.
pub struct Nginx {
    pub addr: SocketAddr,
    child: Child,
    log: Log,
    dir: tempfile::TempDir,
}

impl Nginx {
    /// nginx serving the shipped configuration in front of `nodes`.
    pub async fn start(nodes: &[SocketAddr]) -> Nginx {
        let dir = tempfile::tempdir().expect("a temporary directory for nginx");
        let prefix = dir.path();
        std::fs::create_dir_all(prefix.join("conf.d")).unwrap();
        std::fs::create_dir_all(prefix.join("temp")).unwrap();
        std::fs::write(prefix.join("nginx.conf"), MAIN).unwrap();
        let (addr, (child, log)) = on_a_free_port("nginx", |addr| {
            let site = site_config(SHIPPED, nodes, addr);
            std::fs::write(prefix.join("conf.d/default.conf"), site).unwrap();
            spawn(prefix)
        })
        .await;
        Nginx {
            addr,
            child,
            log,
            dir,
        }
    }

    /// `ws://ADDR` (the client adds `/ws`).
    pub fn url(&self) -> String {
        format!("ws://{}", self.addr)
    }

    /// What nginx logged so far (for a failing test's message).
    pub fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// Its prefix directory (configuration under `conf.d/`).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        kill_group(&mut self.child);
    }
}

/// SIGKILL to the process group `child` leads (nginx's master and its
/// workers), and the master reaped.
fn kill_group(child: &mut Child) {
    let pid = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .and_then(rustix::process::Pid::from_raw);
    if let Some(pid) = pid {
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
    // The master, had the group gone already; tokio reaps it.
    let _ = child.start_kill();
}

const SIGNS: Signs = Signs {
    name: "nginx",
    ready: "start worker processes",
    taken: "Address already in use",
    within: READY_WITHIN,
};

async fn spawn(prefix: &Path) -> Result<(Child, Log), Start> {
    let bin = binary();
    let mut child = Command::new(&bin)
        .arg("-p")
        .arg(prefix)
        .arg("-c")
        .arg(prefix.join("nginx.conf"))
        // The log before the configuration is read (the default path is
        // /var/log/nginx, not ours to write).
        .args(["-e", "stderr"])
        .args(["-g", "daemon off;"])
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| {
            Start::Failed(if e.kind() == std::io::ErrorKind::NotFound {
                format!(
                    "{} not found: the load balancer test needs a real nginx. Install it (Debian: `apt-get install nginx`, which .ci/run does; only the binary is used) or point COLLAB_NGINX at the binary",
                    bin.display()
                )
            } else {
                format!("cannot start {}: {e}", bin.display())
            })
        })?;
    match ready(&mut child, &SIGNS).await {
        Ok(log) => Ok((child, log)),
        Err(e) => {
            kill_group(&mut child);
            Err(e)
        }
    }
}
