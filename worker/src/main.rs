//! `boards-worker`: the generation worker daemon.

use std::process::ExitCode;

use boards_shared::{generators, logging, Config};
use clap::Parser;
use slog::{error, info, warn};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "boards-worker", version, about = "Boards generation worker")]
struct Cli {}

#[tokio::main]
async fn main() -> ExitCode {
    let _cli = Cli::parse();
    let config = match Config::load() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("boards-worker: {e}");
            return ExitCode::from(2);
        }
    };
    let logger = logging::build(&config.log, "boards-worker");
    let env: std::collections::BTreeMap<String, String> = std::env::vars().collect();
    logging::warn_unknown_env(&logger, &env);
    info!(logger, "configuration"; logging::Fields(config.log_fields()));
    let loaded = match generators::config::load(&config) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("boards-worker: {e}");
            return ExitCode::from(2);
        }
    };
    for w in &loaded.warnings {
        warn!(logger, "generators config"; "warning" => w);
    }
    let stop = boards_worker::shutdown_signal();
    match boards_worker::Worker::start(config, logger.clone(), loaded.registry).await {
        Ok(worker) => {
            stop.await;
            worker.stop().await;
            std::thread::sleep(std::time::Duration::from_millis(50));
            ExitCode::SUCCESS
        }
        Err(e) => {
            error!(logger, "fatal"; "error" => format!("{e:#}"));
            std::thread::sleep(std::time::Duration::from_millis(100));
            eprintln!("boards-worker: {e:#}");
            ExitCode::FAILURE
        }
    }
}
