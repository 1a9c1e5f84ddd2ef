//! Shared-library integration tests against a real PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

mod job_runs;
mod migrations;
