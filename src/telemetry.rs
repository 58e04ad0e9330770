//! Process logging: tracing to stderr (journald takes it with stdout and adds timestamps and
//! levels), text or JSON, filtered by `RUST_LOG` (default `info`). Stdout carries only a
//! command's own output (`status --json`, `check`), so it can be piped into `jq` at any log
//! level. Secrets never reach a log line: nothing logs
//! credentials or tokens, and HTTP client internals are kept at `warn`.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Process-log format (`JETPACK_LOG_FORMAT`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Installs the global subscriber; call once at start.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info"))
        .add_directive(quiet("hyper"))
        .add_directive(quiet("hyper_util"))
        .add_directive(quiet("reqwest"))
        .add_directive(quiet("rustls"))
        .add_directive(quiet("h2"));
    // Colours only on a terminal: journald and files get plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.with_target(false).try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

fn quiet(target: &str) -> tracing_subscriber::filter::Directive {
    // The directive text is built from a fixed target name and always parses.
    format!("{target}=warn")
        .parse()
        .unwrap_or_else(|_| tracing_subscriber::filter::LevelFilter::WARN.into())
}
