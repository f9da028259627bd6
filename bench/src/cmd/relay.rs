//! `collab-bench relay`: run the baseline relay in the foreground (the
//! other commands start it as a child this way), until stdin closes, a
//! signal, or its time limit.

use std::time::Duration;

use collab_bench::relay::{self, RELAY_PATH};

use crate::RelayArgs;

pub(crate) fn run_relay(args: RelayArgs) -> Result<(), String> {
    if !args.bind.ip().is_loopback() {
        return Err("the relay listens on loopback only (127.0.0.1 or ::1)".into());
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.workers.max(1))
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind(args.bind)
            .await
            .map_err(|e| format!("cannot listen on {}: {e}", args.bind))?;
        let addr = listener
            .local_addr()
            .map_err(|e| format!("no local address: {e}"))?;
        println!("collab-bench relay listening on ws://{addr}{RELAY_PATH}");
        let stdin_eof = async {
            if args.exit_on_stdin_eof {
                use tokio::io::AsyncReadExt;
                let mut stdin = tokio::io::stdin();
                let mut buf = [0u8; 64];
                while matches!(stdin.read(&mut buf).await, Ok(n) if n > 0) {}
            } else {
                std::future::pending::<()>().await;
            }
        };
        let stop = async {
            tokio::select! {
                () = stdin_eof => {}
                _ = tokio::signal::ctrl_c() => {}
                () = terminate() => {}
                () = tokio::time::sleep(Duration::from_secs(args.max_secs)) => {}
            }
        };
        relay::run(listener, args.queue, stop).await;
        Ok::<(), String>(())
    })?;
    rt.shutdown_timeout(Duration::from_secs(1));
    Ok(())
}

async fn terminate() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            term.recv().await;
            return;
        }
    }
    std::future::pending::<()>().await;
}
