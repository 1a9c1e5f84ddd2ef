//! The root slog logger: JSON lines for machines, coloured text on a terminal.
//!
//! Built once in each binary's `main` and passed down; library code never logs through a global.

use std::io::IsTerminal;

use serde_json::Value;
use slog::{o, Drain, Level, Logger};

use crate::config::LogConfig;

/// Builds the root logger for a binary named `service`.
pub fn build(config: &LogConfig, service: &'static str) -> Logger {
    let level = parse_level(&config.level);
    let json = match config.format.as_str() {
        "json" => true,
        "term" => false,
        _ => !std::io::stderr().is_terminal(),
    };
    let drain: Box<dyn Drain<Ok = (), Err = slog::Never> + Send> = if json {
        let drain = slog_json::Json::new(std::io::stdout())
            .add_key_value(o!(
                "timestamp" => slog::PushFnValue(|_, ser| ser.emit(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true))),
                "level" => slog::FnValue(|rec| rec.level().as_str()),
                "message" => slog::PushFnValue(|rec, ser| ser.emit(rec.msg())),
            ))
            .build()
            // A closed stdout must not take the process down: drop the line instead.
            .ignore_res();
        Box::new(drain)
    } else {
        let decorator = slog_term::TermDecorator::new().stderr().build();
        Box::new(slog_term::FullFormat::new(decorator).build().ignore_res())
    };
    let drain = slog_async::Async::new(drain.filter_level(level).fuse())
        .chan_size(8192)
        .overflow_strategy(slog_async::OverflowStrategy::DropAndReport)
        .build()
        .fuse();
    Logger::root(drain, o!("service" => service))
}

/// Key/value pairs known only at run time (under static keys), logged as fields of one record:
/// `info!(logger, "configuration"; Fields(config.log_fields()))`. Scalars keep their JSON type;
/// lists and objects are written as compact JSON text.
pub struct Fields(pub Vec<(&'static str, Value)>);

impl slog::KV for Fields {
    fn serialize(
        &self,
        _record: &slog::Record<'_>,
        serializer: &mut dyn slog::Serializer,
    ) -> slog::Result {
        for (key, value) in &self.0 {
            match value {
                Value::Null => serializer.emit_none(key)?,
                Value::Bool(b) => serializer.emit_bool(key, *b)?,
                Value::Number(n) => match (n.as_u64(), n.as_i64()) {
                    (Some(u), _) => serializer.emit_u64(key, u)?,
                    (None, Some(i)) => serializer.emit_i64(key, i)?,
                    _ => serializer.emit_f64(key, n.as_f64().unwrap_or_default())?,
                },
                Value::String(s) => serializer.emit_str(key, s)?,
                other => serializer.emit_str(key, &other.to_string())?,
            }
        }
        Ok(())
    }
}

/// A logger that drops everything (tests that do not care about logs).
pub fn discard() -> Logger {
    Logger::root(slog::Discard, o!())
}

fn parse_level(level: &str) -> Level {
    match level {
        "trace" => Level::Trace,
        "debug" => Level::Debug,
        "warning" | "warn" => Level::Warning,
        "error" => Level::Error,
        "critical" => Level::Critical,
        _ => Level::Info,
    }
}

/// Warns of every `BOARDS_*` variable of `env` that is not read, saying what to set instead
/// when it is one of the original's.
pub fn warn_unknown_env(logger: &Logger, env: &std::collections::BTreeMap<String, String>) {
    for key in crate::config::unknown_env_keys(env) {
        match crate::config::replacement_of(&key) {
            Some(instead) => slog::warn!(logger, "configuration variable not read";
                "variable" => key, "instead" => instead),
            None => {
                slog::warn!(logger, "unknown configuration variable ignored"; "variable" => key)
            }
        }
    }
}
