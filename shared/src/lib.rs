//! Boards shared library: configuration, logging, database, identity and the domain rules
//! used by both the API server and the worker.

pub mod auth;
pub mod config;
pub mod db;
pub mod domain;
pub mod error;
pub mod events;
pub mod generators;
pub mod jobs;
pub mod logging;
pub mod media;
pub mod metrics;
pub mod net;
pub mod queue;
pub mod ratelimit;
pub mod readiness;
pub mod redis_pool;
pub mod relay;
pub mod storage;
pub mod telemetry;
#[cfg(feature = "test-helpers")]
pub mod testing;
pub mod trace;
pub mod webhooks;

pub use config::Config;
pub use error::{AppError, AppResult};
