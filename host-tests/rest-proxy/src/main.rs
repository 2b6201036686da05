//! `adtap-rest-proxy`: see the library docs (`src/lib.rs`) for endpoints and error codes.
//!
//! Prints `listening 127.0.0.1:PORT` as the first stdout line once it accepts connections, logs
//! to stderr, and stops gracefully on SIGINT/SIGTERM (open requests get their delivery reports).

use std::io::Write;
use std::process::ExitCode;

use adtap_rest_proxy::{log, serve, Config};
use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let config = Config::parse();
    let bootstrap = config.bootstrap.clone();
    let cluster = config.cluster_id.clone();
    let handle = match serve(config).await {
        Ok(h) => h,
        Err(e) => {
            log!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let mut out = std::io::stdout();
    let _ = writeln!(out, "listening {}", handle.addr());
    let _ = out.flush();
    log!(
        "listening on http://{} (HTTP/1.1 + h2c), broker {bootstrap}, cluster id {cluster}",
        handle.addr()
    );
    wait_for_signal().await;
    log!("shutting down");
    handle.shutdown().await;
    ExitCode::SUCCESS
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
