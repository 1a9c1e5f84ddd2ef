#!/usr/bin/env bash
# Prints the diesel schema of the migrations: migrates a scratch database, runs
# `diesel print-schema` (configured by diesel.toml) and drops the database again.
set -euo pipefail
diesel=$1
root=$(cd "$(dirname "$0")/.." && pwd)
base=${BOARDS_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
name="boards_schema_$$"
url="${base%/*}/$name"
tmp=$(mktemp -d)
psql "$base" -qc "CREATE DATABASE $name" >/dev/null
trap 'psql "$base" -qc "DROP DATABASE IF EXISTS $name WITH (FORCE)" >/dev/null; rm -rf "$tmp"' EXIT
# A config without [print_schema], so that running migrations does not rewrite schema.rs.
printf '[migrations_directory]\ndir = "%s/migrations"\n' "$root" > "$tmp/diesel.toml"
DATABASE_URL=$url "$diesel" migration run --config-file "$tmp/diesel.toml" >/dev/null
cd "$root" && DATABASE_URL=$url "$diesel" print-schema
