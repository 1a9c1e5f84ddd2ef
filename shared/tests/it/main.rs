//! Shared-library integration tests against a real PostgreSQL and a real S3-compatible server.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

mod auth_providers;
mod events;
mod job_runs;
mod migrations;
mod s3;
