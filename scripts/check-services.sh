#!/usr/bin/env bash
# Checks that PostgreSQL, Redis and RabbitMQ answer at the configured URLs; names the missing one
# and how to start it.
set -u
fail=0
hostport() { # url default_port -> "host port"
  local rest=${1#*://}; rest=${rest#*@}; rest=${rest%%/*}; rest=${rest%%\?*}
  local host=${rest%%:*} port=${rest##*:}
  [ "$host" = "$rest" ] && port=$2
  echo "$host ${port:-$2}"
}
check() { # name url default_port how-to-start
  read -r host port <<<"$(hostport "$2" "$3")"
  if timeout 3 bash -c "exec 3<>/dev/tcp/$host/$port" 2>/dev/null; then
    echo "ok: $1 at $host:$port"
  else
    echo "MISSING: $1 is not reachable at $host:$port. Start it with: $4" >&2
    fail=1
  fi
}
check PostgreSQL "${BOARDS_DATABASE_URL:-postgres://127.0.0.1:5432/boards}" 5432 \
  'pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start'
check Redis "${BOARDS_REDIS_URL:-redis://127.0.0.1:6379}" 6379 \
  'redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no'
check RabbitMQ "${BOARDS_AMQP_URL:-amqp://127.0.0.1:5672}" 5672 'rabbitmq-server -detached'
exit $fail
