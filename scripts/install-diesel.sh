#!/usr/bin/env bash
# Installs diesel_cli (PostgreSQL only), which `make schema` and `make schema-check` run, into a
# project-local folder (argument; default .cache/tools, binary in its bin/) instead of ~/.cargo.
# The Makefile calls it only when no `diesel` is on PATH and none was installed there before.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh
root=${1:-.cache/tools}
shown=${root#"$PWD"/}
echo "installing diesel_cli into $shown (once, about 2-3 minutes)"
# diesel_cli links libpq: on Debian that needs libpq-dev.
# shellcheck disable=SC2016 # ${Status} is dpkg-query's, not the shell's
if command -v dpkg-query >/dev/null 2>&1 &&
  ! dpkg-query -W -f='${Status}' libpq-dev 2>/dev/null | grep -q 'ok installed'; then
  apt_install libpq-dev
fi
cargo install --root "$root" --locked diesel_cli --version '^2.3' --no-default-features --features postgres
echo "diesel_cli installed: $shown/bin/diesel (make uses it from there; no PATH change needed)"
