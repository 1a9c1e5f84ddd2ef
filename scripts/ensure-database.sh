#!/usr/bin/env bash
# Creates the database named in the URL ($1) if it does not exist yet.
set -euo pipefail
url=$1
db=${url##*/}; db=${db%%\?*}
admin=${url%/*}/postgres
if ! psql "$admin" -tAc "SELECT 1 FROM pg_database WHERE datname = '$db'" | grep -q 1; then
  psql "$admin" -c "CREATE DATABASE \"$db\"" >/dev/null
  echo "created database $db"
fi
