//! `boards-worker`: the generation worker daemon.

use std::process::ExitCode;

use boards_shared::{logging, Config};
use clap::Parser;
use slog::error;

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
    match boards_worker::run(config, logger.clone(), boards_worker::shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!(logger, "fatal"; "error" => format!("{e:#}"));
            std::thread::sleep(std::time::Duration::from_millis(100));
            eprintln!("boards-worker: {e:#}");
            ExitCode::FAILURE
        }
    }
}
