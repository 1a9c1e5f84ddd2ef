//! API integration tests: the real server against real PostgreSQL, one database per test.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

mod access;
mod access_generations;
mod auth;
mod auth_oidc;
mod boards;
mod client_generation_ops;
mod client_ops;
mod fal;
mod generations;
mod generator_inputs;
mod health;
mod input_access;
mod json_scalar;
mod limits;
mod lineage;
mod members;
mod metrics_names;
mod not_found;
mod nul;
mod pipeline;
mod privacy;
mod process;
mod providers;
mod queries;
mod ratelimit;
mod sdl;
mod slow_clients;
mod sse_access;
mod storage;
mod tags;
mod transport;
mod uploads;
mod util;
mod worker_faults;
