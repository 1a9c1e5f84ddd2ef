//! `boards-api`: serve the API (default), run migrations, or print the GraphQL schema.

use std::process::ExitCode;

use boards_api::Application;
use boards_shared::{logging, Config};
use clap::{Parser, Subcommand};
use slog::{error, info};

/// mimalloc: GraphQL responses are many small allocations (values, maps, strings); the system
/// allocator spent a fifth of the request time in malloc/free in profiles.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "boards-api", version, about = "Boards GraphQL API server")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Print the GraphQL schema (SDL) and exit.
    PrintSchema,
}

#[actix_web::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::PrintSchema) = cli.command {
        print!("{}", boards_api::graphql::sdl());
        return ExitCode::SUCCESS;
    }
    let config = match Config::load() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("boards-api: {e}");
            return ExitCode::from(2);
        }
    };
    let logger = logging::build(&config.log, "boards-api");
    let env: std::collections::BTreeMap<String, String> = std::env::vars().collect();
    logging::warn_unknown_env(&logger, &env);
    // Once per process, before the subcommand runs: one record, one field per key.
    info!(logger, "configuration"; logging::Fields(config.log_fields()));

    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Migrate => boards_shared::db::run_migrations(config.database.url.expose())
            .await
            .map(|applied| info!(logger, "migrations applied"; "count" => applied.len(), "names" => applied.join(","))),
        Command::Serve => {
            let signal = boards_api::shutdown_signal();
            match Application::build(config, logger.clone()).await {
                Ok(app) => app.run_until(signal).await.map_err(Into::into),
                Err(e) => Err(e),
            }
        }
        Command::PrintSchema => Ok(()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!(logger, "fatal"; "error" => format!("{e:#}"));
            // Give the async drain a moment to flush before exiting.
            std::thread::sleep(std::time::Duration::from_millis(100));
            eprintln!("boards-api: {e:#}");
            ExitCode::FAILURE
        }
    }
}
