//! `jetpack-sandbox`: serves the sandbox Jetpack partner API on a loopback address until
//! SIGTERM or SIGINT. The logic lives in the `jetpack_sandbox` library; this is only the CLI.

use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use jetpack_sandbox::{Sandbox, SandboxConfig, Spelling};

/// Sandbox of the Jetpack hosting-partner API, for tests, demos and benchmarks.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Loopback address to listen on.
    #[arg(long, env = "SANDBOX_LISTEN", default_value = "127.0.0.1:8787")]
    listen: SocketAddr,
    /// Accepted client credentials as ID:SECRET (repeatable).
    #[arg(
        long = "credentials",
        env = "SANDBOX_CREDENTIALS",
        value_name = "ID:SECRET",
        value_delimiter = ',',
        default_value = "demo-client:demo-secret",
        value_parser = parse_credentials
    )]
    credentials: Vec<(String, String)>,
    /// Latency added to every /rest/ request, in milliseconds.
    #[arg(long, env = "SANDBOX_LATENCY_MS", default_value_t = 0)]
    latency: u64,
    /// Latency added to every POST /oauth2/token, in milliseconds.
    #[arg(long, env = "SANDBOX_TOKEN_LATENCY_MS", default_value_t = 0)]
    token_latency: u64,
    /// Share (0.0 to 1.0) of /rest/ requests that get a random fault.
    #[arg(long, env = "SANDBOX_FAULT_RATE", default_value_t = 0.0)]
    fault_rate: f64,
    /// How long a "hang" fault sleeps before answering, in seconds.
    #[arg(long, env = "SANDBOX_HANG_SECS", default_value_t = 300)]
    hang_secs: u64,
    /// Host whose DNS does not resolve yet (repeatable).
    #[arg(
        long,
        env = "SANDBOX_UNRESOLVABLE",
        value_name = "HOST",
        value_delimiter = ','
    )]
    unresolvable: Vec<String>,
    /// Seed for the fault randomness.
    #[arg(long, env = "SANDBOX_SEED")]
    seed: Option<u64>,
    /// How the status endpoint spells products[].slug: wpcom, short, wpcom_monthly or
    /// hyphenated.
    #[arg(long, env = "SANDBOX_SPELLING", default_value_t = Spelling::Wpcom)]
    spelling: Spelling,
}

fn parse_credentials(raw: &str) -> Result<(String, String), String> {
    match raw.split_once(':') {
        Some((id, secret)) if !id.is_empty() && !secret.is_empty() => {
            Ok((id.to_owned(), secret.to_owned()))
        }
        _ => Err("expected ID:SECRET".to_owned()),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    if !args.listen.ip().is_loopback() {
        eprintln!(
            "jetpack-sandbox: refusing to listen on {}: only loopback addresses are allowed",
            args.listen
        );
        return ExitCode::from(2);
    }
    if !(0.0..=1.0).contains(&args.fault_rate) {
        eprintln!("jetpack-sandbox: --fault-rate must be between 0.0 and 1.0");
        return ExitCode::from(2);
    }
    let config = SandboxConfig {
        credentials: args.credentials,
        latency: Duration::from_millis(args.latency),
        token_latency: Duration::from_millis(args.token_latency),
        fault_rate: args.fault_rate,
        hang: Duration::from_secs(args.hang_secs),
        unresolvable: args.unresolvable,
        seed: args.seed,
        spelling: args.spelling,
        ..SandboxConfig::default()
    };
    let sandbox = match Sandbox::start(args.listen, config).await {
        Ok(sandbox) => sandbox,
        Err(error) => {
            eprintln!("jetpack-sandbox: cannot listen on {}: {error}", args.listen);
            return ExitCode::FAILURE;
        }
    };
    let mut stdout = std::io::stdout();
    let _ = writeln!(
        stdout,
        "jetpack-sandbox listening on {}",
        sandbox.base_url()
    );
    let _ = stdout.flush();
    wait_for_signal().await;
    tracing::info!("jetpack-sandbox shutting down");
    sandbox.shutdown().await;
    ExitCode::SUCCESS
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
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
