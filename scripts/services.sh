#!/usr/bin/env bash
# Sets up the services Boards-rs needs; run by `make dev`, `make test` and `.ci/run`.
#
# Reads BOARDS_DATABASE_URL, BOARDS_TEST_DATABASE_URL, BOARDS_REDIS_URL and BOARDS_AMQP_URL
# (same defaults as the Makefile). For a URL on 127.0.0.1, localhost or ::1 it
#   - installs the Debian packages that are missing (apt-get; through sudo when not root),
#   - starts PostgreSQL (pg_ctlcluster), Redis (nothing kept on disk) or RabbitMQ when stopped,
#   - lets PostgreSQL's user postgres (the URLs' default) log in over local TCP without a password
#     (trust lines at the top of pg_hba.conf) when it cannot log in,
#   - enables RabbitMQ's management plugin: the dashboard at http://localhost:15672 (guest/guest),
#     listening on 127.0.0.1 only unless rabbitmq.conf configures it otherwise.
# A URL naming another host is only checked. When everything runs it changes nothing (< 1 s).
#
# Usage: scripts/services.sh [--check]    --check: only report; install, start and change nothing.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

check_only=false
case "${1:-}" in
  "") ;;
  --check) check_only=true ;;
  *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

# Same defaults as the Makefile.
db_url=${BOARDS_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/boards}
test_db_url=${BOARDS_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
redis_url=${BOARDS_REDIS_URL:-redis://127.0.0.1:6379}
amqp_url=${BOARDS_AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}
amqp_port=5672
[[ $amqp_url == amqps://* ]] && amqp_port=5671

rabbit_conf=${RABBITMQ_CONFIG_FILE:-/etc/rabbitmq/rabbitmq.conf}
[[ $rabbit_conf == *.conf ]] || rabbit_conf+=.conf
marker="# Added by Boards-rs scripts/services.sh"
how_to="scripts/services.sh (run by make dev and make test) installs and starts it"

problems=0
problem() { echo "$*" >&2; problems=$((problems + 1)); }

# parse_url URL DEFAULT_PORT: sets url_user, url_pass, url_host and url_port.
parse_url() {
  local rest=${1#*://} auth=""
  rest=${rest%%[/?#]*}
  if [[ $rest == *@* ]]; then auth=${rest%@*}; rest=${rest##*@}; fi
  url_user=${auth%%:*}
  url_pass=""
  if [[ $auth == *:* ]]; then url_pass=${auth#*:}; fi
  if [[ $rest == \[* ]]; then # [IPv6]:port
    url_host=${rest%%]*}; url_host=${url_host#[}; rest=${rest#*]}; url_port=${rest#:}
  else
    url_host=${rest%%:*}; url_port=""
    if [[ $rest == *:* ]]; then url_port=${rest##*:}; fi
  fi
  url_host=${url_host:-127.0.0.1}
  url_port=${url_port:-$2}
}

addr() { if [[ $1 == *:* ]]; then echo "[$1]:$2"; else echo "$1:$2"; fi; }
is_local() { case $1 in 127.0.0.1 | localhost | ::1) return 0 ;; *) return 1 ;; esac; }
# shellcheck disable=SC2016 # $0 and $1 expand in the inner bash
tcp_open() { timeout 3 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$1" "$2" 2>/dev/null; }
# wait_for SECONDS COMMAND...: retries COMMAND every 0.2 s until it succeeds.
wait_for() {
  local n=$(($1 * 5))
  shift
  until "$@"; do
    n=$((n - 1))
    [ "$n" -gt 0 ] || return 1
    sleep 0.2
  done
}

# A service on another host: only say whether it answers.
not_local() { # name variable host port
  if tcp_open "$3" "$4"; then
    echo "ok: $1 at $(addr "$3" "$4") ($2 is not 127.0.0.1/localhost: checked only, not managed here)"
  else
    problem "MISSING: $1 is not reachable at $(addr "$3" "$4") ($2). That is not 127.0.0.1/localhost, so this" \
      "script does not install or start it: start it there, or point $2 at a local port."
  fi
}

# ---------------------------------------------------------------------------------------------
# Packages: clients always, a server only when its local URL does not answer.

pkgs=()
want() { [[ " ${pkgs[*]} " == *" $1 "* ]] || pkgs+=("$1"); }
command -v psql >/dev/null 2>&1 || want postgresql-client
command -v curl >/dev/null 2>&1 || want curl
# The S3 provider (rusoto with native-tls) links OpenSSL.
pkg-config --exists openssl 2>/dev/null || { want libssl-dev; want pkg-config; }
if $check_only; then
  [ ${#pkgs[@]} -eq 0 ] || problem "MISSING: psql, curl or OpenSSL's headers, which the build and make use (Debian packages: ${pkgs[*]})."
  pkgs=()
fi
for url in "$db_url" "$test_db_url"; do
  parse_url "$url" 5432
  if is_local "$url_host" && ! tcp_open "$url_host" "$url_port" &&
    ! compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null; then
    want postgresql
  fi
done
parse_url "$redis_url" 6379
if is_local "$url_host" && ! tcp_open "$url_host" "$url_port"; then
  command -v redis-server >/dev/null 2>&1 || want redis-server
fi
parse_url "$amqp_url" "$amqp_port"
if is_local "$url_host" && ! tcp_open "$url_host" "$url_port"; then
  command -v rabbitmq-server >/dev/null 2>&1 || want rabbitmq-server
fi
if ! $check_only && [ ${#pkgs[@]} -gt 0 ] && ! apt_install "${pkgs[@]}"; then
  echo "could not install ${pkgs[*]}" >&2
  exit 1
fi

# ---------------------------------------------------------------------------------------------
# PostgreSQL

pg_cluster_on() { # port -> "version name status" of the Debian cluster on that port
  command -v pg_lsclusters >/dev/null 2>&1 || return 1
  pg_lsclusters -h 2>/dev/null | awk -v p="$1" '$3 == p { print $1, $2, $4; found = 1; exit }
    END { exit !found }'
}

pg_login() { # url: logs in once; prints psql's error
  # shellcheck disable=SC2069 # stderr to the caller, stdout dropped
  LC_ALL=C PGCONNECT_TIMEOUT=5 psql -wXq "$1" -tAc 'SELECT 1' 2>&1 >/dev/null
}

start_postgres() { # host port where variable
  local host=$1 ver name status
  shift
  if ! read -r ver name status < <(pg_cluster_on "$1"); then
    if command -v pg_lsclusters >/dev/null 2>&1 && [ -z "$(pg_lsclusters -h 2>/dev/null)" ]; then
      ver=$(find /usr/lib/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' | sort -V | tail -n1)
      name=main
      echo "creating PostgreSQL cluster $ver/$name on port $1"
      as_root pg_createcluster "$ver" "$name" -p "$1" >/dev/null || {
        problem "could not create a PostgreSQL cluster on port $1"
        return 1
      }
      status=down
    else
      problem "MISSING: no PostgreSQL cluster is set up for port $1 ($2, $3). Create one" \
        "(pg_createcluster <version> boards -p $1 --start) or point $3 at a running one."
      return 1
    fi
  fi
  if [ "$status" = online ]; then
    problem "PostgreSQL $ver/$name runs but does not answer at $2 ($3): see listen_addresses" \
      "in /etc/postgresql/$ver/$name/postgresql.conf."
    return 1
  fi
  echo "starting PostgreSQL $ver/$name on port $1"
  as_root pg_ctlcluster --skip-systemctl-redirect "$ver" "$name" start
  wait_for 60 tcp_open "$host" "$1" || {
    problem "PostgreSQL did not start at $2 (log: /var/log/postgresql/postgresql-$ver-$name.log)."
    return 1
  }
}

trust_local() { # port user: trust the user on local TCP (127.0.0.1 and ::1) in that cluster
  local ver name status hba tmp
  read -r ver name status < <(pg_cluster_on "$1") || return 1
  hba=/etc/postgresql/$ver/$name/pg_hba.conf
  as_root test -f "$hba" || return 1
  if as_root grep -Eq "^host[[:space:]]+all[[:space:]]+$2[[:space:]]+127\.0\.0\.1/32[[:space:]]+trust" "$hba"; then
    return 1 # already there: something else refuses the login
  fi
  echo "letting PostgreSQL user $2 log in over local TCP without a password (trust, in $hba)"
  tmp=$(mktemp)
  {
    echo "$marker: $2 logs in over local TCP without a password (development)."
    echo "host    all    $2    127.0.0.1/32    trust"
    echo "host    all    $2    ::1/128         trust"
    echo
    as_root cat "$hba"
  } >"$tmp" && as_root cp "$tmp" "$hba"
  rm -f "$tmp"
  as_root pg_ctlcluster --skip-systemctl-redirect "$ver" "$name" reload
}

pg_seen=" "
ensure_postgres() { # url variable
  local url=$1 var=$2 host port user pass where admin err
  parse_url "$url" 5432
  host=$url_host port=$url_port pass=$url_pass user=${url_user:-$(id -un)}
  [[ $pg_seen == *" $host:$port:$user "* ]] && return 0
  pg_seen+="$host:$port:$user "
  where=$(addr "$host" "$port")
  local note=""
  if ! is_local "$host"; then
    if ! tcp_open "$host" "$port"; then
      not_local PostgreSQL "$var" "$host" "$port"
      return
    fi
    note="; $var is not 127.0.0.1/localhost: checked only, not managed here"
  elif ! tcp_open "$host" "$port"; then
    if $check_only; then
      problem "MISSING: PostgreSQL does not answer at $where ($var); $how_to."
      return
    fi
    start_postgres "$host" "$port" "$where" "$var" || return
  fi
  if ! command -v psql >/dev/null 2>&1; then
    echo "ok: PostgreSQL answers at $where (psql is missing, login not checked$note)"
    return
  fi
  # Log in to the server's "postgres" database, keeping the URL's user, password and options.
  admin=${url%%\?*}
  admin=${admin%/*}/postgres
  [[ $url == *\?* ]] && admin+="?${url#*\?}"
  local ok=false
  if err=$(pg_login "$admin"); then
    ok=true
  elif ! $check_only && is_local "$host" && [ "$user" = postgres ] && [ -z "$pass" ] &&
    [[ $err =~ password|authentication|pg_hba ]] && trust_local "$port" "$user"; then
    for _ in $(seq 1 25); do
      if err=$(pg_login "$admin"); then ok=true; break; fi
      sleep 0.2
    done
  fi
  if ! $ok; then
    problem "PostgreSQL at $where refuses user $user ($var): ${err:-login failed}"
    return
  fi
  echo "ok: PostgreSQL at $where (user $user$note)"
}

# ---------------------------------------------------------------------------------------------
# Redis

ensure_redis() {
  local host port where
  parse_url "$redis_url" 6379
  host=$url_host port=$url_port where=$(addr "$url_host" "$url_port")
  if ! is_local "$host"; then
    not_local Redis BOARDS_REDIS_URL "$host" "$port"
    return
  fi
  if tcp_open "$host" "$port"; then
    echo "ok: Redis at $where"
    return
  fi
  local start=(redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$port" --save "" --appendonly no)
  if $check_only; then
    problem "MISSING: Redis does not answer at $where (BOARDS_REDIS_URL); $how_to. By hand:" \
      "redis-server --daemonize yes --bind 127.0.0.1 -::1 --port $port --save \"\" --appendonly no"
    return
  fi
  echo "starting Redis at $where (nothing kept on disk)"
  if "${start[@]}" >/dev/null && wait_for 30 tcp_open "$host" "$port"; then
    echo "ok: Redis at $where"
  else
    problem "Redis did not start at $where: run $(printf '%q ' "${start[@]}")to see why."
  fi
}

# ---------------------------------------------------------------------------------------------
# RabbitMQ and its management dashboard

conf_value() { # key -> last value set in rabbitmq.conf
  [ -r "$rabbit_conf" ] || return 0
  sed -nE "s/^[[:space:]]*${1//./\\.}[[:space:]]*=[[:space:]]*([^[:space:]#]+).*/\1/p" \
    "$rabbit_conf" | tail -n1
}

# Unless rabbitmq.conf configures the dashboard's listener, make it listen on 127.0.0.1 only.
dashboard_conf() {
  if [ -r "$rabbit_conf" ] && grep -Eq '^[[:space:]]*management\.(tcp|ssl|listener)\.' "$rabbit_conf"; then
    return 0
  fi
  echo "RabbitMQ dashboard: listening on 127.0.0.1 only (management.tcp.ip in $rabbit_conf)"
  printf '\n%s: the management dashboard listens on this machine only.\nmanagement.tcp.ip = 127.0.0.1\n' \
    "$marker" | as_root tee -a "$rabbit_conf" >/dev/null
}

ensure_rabbitmq() {
  local host port where started=false
  parse_url "$amqp_url" "$amqp_port"
  host=$url_host port=$url_port where=$(addr "$url_host" "$url_port")
  if ! is_local "$host"; then
    not_local RabbitMQ BOARDS_AMQP_URL "$host" "$port"
    return
  fi
  if ! tcp_open "$host" "$port"; then
    if $check_only; then
      problem "MISSING: RabbitMQ does not answer at $where (BOARDS_AMQP_URL); $how_to. By hand:" \
        "rabbitmq-server -detached"
      return
    fi
    if as_root rabbitmq-diagnostics -q ping >/dev/null 2>&1; then
      problem "RabbitMQ runs on this machine but does not listen at $where (BOARDS_AMQP_URL): its" \
        "listeners are set in $rabbit_conf (listeners.tcp.*)."
      return
    fi
    # Enable the dashboard first, so that the node starts with it.
    dashboard_conf
    as_root rabbitmq-plugins enable --offline rabbitmq_management >/dev/null
    echo "starting RabbitMQ (takes a few seconds)"
    as_root rabbitmq-server -detached
    if ! wait_for 90 tcp_open "$host" "$port"; then
      problem "RabbitMQ did not start at $where (logs: /var/log/rabbitmq/)."
      return
    fi
    started=true
  fi
  echo "ok: RabbitMQ at $where"

  local mport mip dashboard
  mport=$(conf_value management.tcp.port)
  mport=${mport:-15672}
  mip=$(conf_value management.tcp.ip)
  case ${mip:-0.0.0.0} in 0.0.0.0 | :: | "::0") mip=127.0.0.1 ;; esac
  dashboard="http://localhost:$mport (guest/guest)"
  if $started && wait_for 30 tcp_open "$mip" "$mport" || tcp_open "$mip" "$mport"; then
    echo "ok: RabbitMQ dashboard at $dashboard"
    return
  fi
  if $check_only; then
    echo "note: RabbitMQ's dashboard is off; scripts/services.sh enables it" \
      "(rabbitmq-plugins enable rabbitmq_management)."
    return
  fi
  if ! command -v rabbitmq-plugins >/dev/null 2>&1; then
    echo "note: rabbitmq-plugins not found: RabbitMQ's dashboard is not enabled."
    return
  fi
  dashboard_conf
  mip=$(conf_value management.tcp.ip)
  mip=${mip:-127.0.0.1}
  if [ -r "$rabbit_conf" ] && grep -qF "$marker" "$rabbit_conf"; then
    # The running node read rabbitmq.conf when it booted: hand it the listener address now.
    as_root rabbitmqctl -q eval "application:set_env(rabbitmq_management, tcp_config, \
[{ip, \"$mip\"}, {port, $mport}], [{persistent, true}])." >/dev/null
  fi
  echo "enabling RabbitMQ's management plugin (the dashboard)"
  as_root rabbitmq-plugins enable rabbitmq_management >/dev/null
  if wait_for 30 tcp_open "$mip" "$mport"; then
    echo "ok: RabbitMQ dashboard at $dashboard"
  else
    echo "warning: RabbitMQ's dashboard does not answer at $(addr "$mip" "$mport") (logs: /var/log/rabbitmq/)." >&2
  fi
}

ensure_postgres "$db_url" BOARDS_DATABASE_URL
ensure_postgres "$test_db_url" BOARDS_TEST_DATABASE_URL
ensure_redis
ensure_rabbitmq

if [ "$problems" -gt 0 ]; then
  echo "services: $problems problem(s), see above." >&2
  exit 1
fi
