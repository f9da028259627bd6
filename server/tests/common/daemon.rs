//! Starting a real server program for a test (nginx, Caddy): a port to try,
//! and readiness read from its log as an event, never a sleep.
//!
//! Neither program can be given port 0, so the caller tries a port the
//! kernel just handed out and takes another when the program says it is in
//! use ([`Start::PortTaken`]).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Child;

/// Why a start did not give a ready program.
pub enum Start {
    PortTaken,
    Failed(String),
}

/// The program's log lines so far (for a failing test's message).
pub type Log = Arc<Mutex<Vec<String>>>;

/// A port the kernel considers free now.
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("its address").port()
}

/// Starts a program by `start` on a loopback address with a free port,
/// another one each time the port was taken meanwhile (10 tries): the
/// address and what `start` gave.
pub async fn on_a_free_port<T, Fut>(
    name: &str,
    mut start: impl FnMut(SocketAddr) -> Fut,
) -> (SocketAddr, T)
where
    Fut: Future<Output = Result<T, Start>>,
{
    for _ in 0..10 {
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
        match start(addr).await {
            Ok(t) => return (addr, t),
            Err(Start::PortTaken) => continue,
            Err(Start::Failed(why)) => panic!("{why}"),
        }
    }
    panic!("{name} found no free port in 10 tries");
}

/// What the program's log says when it is ready, and when its port is
/// taken.
pub struct Signs {
    pub name: &'static str,
    pub ready: &'static str,
    pub taken: &'static str,
    pub within: Duration,
}

/// Reads `child`'s stderr (piped) until a line says it is ready, its port
/// is taken, it exits or `signs.within` passes; once ready, goes on reading
/// it in a task so a full pipe never stalls the program. On an `Err` the
/// caller ends the program (nginx's workers need their group killed).
pub async fn ready(child: &mut Child, signs: &Signs) -> Result<Log, Start> {
    let stderr = child.stderr.take().expect("piped stderr");
    let mut lines = BufReader::new(stderr).lines();
    let log: Log = Arc::default();
    let name = signs.name;
    let outcome = tokio::time::timeout(signs.within, async {
        while let Ok(Some(line)) = lines.next_line().await {
            let ready = line.contains(signs.ready);
            let taken = line.contains(signs.taken);
            log.lock().unwrap().push(line);
            if ready {
                return Ok(());
            }
            if taken {
                return Err(Start::PortTaken);
            }
        }
        Err(Start::Failed(format!(
            "{name} exited before it was ready:\n{}",
            log.lock().unwrap().join("\n")
        )))
    })
    .await;
    match outcome {
        Ok(Ok(())) => {
            let keep = Arc::clone(&log);
            tokio::spawn(async move {
                while let Ok(Some(line)) = lines.next_line().await {
                    keep.lock().unwrap().push(line);
                }
            });
            Ok(log)
        }
        Ok(Err(e)) => Err(e),
        Err(_) => Err(Start::Failed(format!(
            "{name} was not ready within {:?}:\n{}",
            signs.within,
            log.lock().unwrap().join("\n")
        ))),
    }
}
