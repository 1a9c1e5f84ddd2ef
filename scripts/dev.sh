#!/usr/bin/env bash
# Runs the API and the worker in the foreground; Ctrl-C stops both.
set -euo pipefail
export BOARDS_LOG_FORMAT=${BOARDS_LOG_FORMAT:-term}
./target/debug/boards-api serve &
api=$!
./target/debug/boards-worker &
worker=$!
trap 'kill $api $worker 2>/dev/null; wait' INT TERM EXIT
port=${BOARDS_API_PORT:-8088}
for _ in $(seq 1 100); do
  if curl -fsS "http://127.0.0.1:$port/health" >/dev/null 2>&1; then break; fi
  sleep 0.1
done
echo
echo "  Boards API ready. GraphiQL: http://localhost:$port/graphql"
if curl -fsS -o /dev/null http://127.0.0.1:15672/ 2>/dev/null; then
  echo "  RabbitMQ dashboard: http://localhost:15672 (guest/guest)"
fi
echo
wait -n $api $worker
