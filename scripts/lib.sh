# shellcheck shell=bash
# Helpers shared by scripts/services.sh and scripts/install-diesel.sh (sourced, not run).

# Runs a command as root: directly when we are root, else through sudo.
as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    echo "needs root (and sudo is not installed): $*" >&2
    return 1
  fi
}

# Installs Debian packages with apt-get (nothing to do without arguments).
apt_install() {
  [ $# -gt 0 ] || return 0
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "missing: $* (no apt-get on this machine: install them with its package manager)" >&2
    return 1
  fi
  echo "installing Debian packages: $*"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"
}
