//! `jetpack-worker`: check the settings, set up logging, run the command (see `app`).

use std::process::ExitCode;

use clap::Parser;
use jetpack_worker::{app, cli::Cli, config::Config, telemetry, text::Chain};

fn main() -> ExitCode {
    let config = match Config::try_from(Cli::parse()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("jetpack-worker: {e}");
            return ExitCode::from(2);
        }
    };
    telemetry::init(config.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("jetpack-worker: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(app::run(config)) {
        Ok(code) => code,
        Err(e) => {
            let said = Chain(e.as_ref()).to_string();
            tracing::error!(error = said, "jetpack-worker stopped");
            eprintln!("jetpack-worker: {said}");
            ExitCode::from(1)
        }
    }
}
