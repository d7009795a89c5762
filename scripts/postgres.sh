#!/usr/bin/env bash
# A real PostgreSQL with pgvector for Attend's tests, benchmarks and anyone trying a `postgres://` index:
#   scripts/postgres.sh start   # prints the URL (postgres://attend@127.0.0.1:54329/attend)
#   scripts/postgres.sh stop
#   scripts/postgres.sh status  # exit 0 when it runs
#   scripts/postgres.sh url
# The server and pgvector come from PyPI's `pgserver` wheel (PostgreSQL 16 with pgvector 0.6, both built in), kept in
# .cache/pgserver. initdb refuses to run as root, so as root the server runs as the unprivileged system user
# `attend-pg` (created here). The cluster lives in ${ATTEND_PG_DIR:-/tmp/attend-postgres}, listens on 127.0.0.1 only,
# and trusts local connections: it is a test server, not a production one.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"
version=0.1.4
port="${ATTEND_PG_PORT:-54329}"
dir="${ATTEND_PG_DIR:-/tmp/attend-postgres}"
url="postgres://attend@127.0.0.1:${port}/attend"
command="${1:-start}"

if [ "$command" = url ]; then echo "$url"; exit 0; fi

as_server_user=()
server_user="$(id -un)"
if [ "$(id -u)" -eq 0 ]; then
  server_user=attend-pg
  id -u "$server_user" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$server_user"
  as_server_user=(runuser -u "$server_user" --)
fi

bin="$dir/pkg/pgserver/pginstall/bin"
if [ "$command" = status ]; then
  [ -x "$bin/pg_ctl" ] && "${as_server_user[@]}" "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1
  exit
fi
if [ "$command" = stop ]; then
  if [ -x "$bin/pg_ctl" ] && [ -f "$dir/data/postmaster.pid" ]; then
    "${as_server_user[@]}" "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
  fi
  exit 0
fi
[ "$command" = start ] || { echo "usage: scripts/postgres.sh start|stop|status|url" >&2; exit 2; }

# The binaries, from the wheel, copied where the server user can read them (the checkout may sit under /root).
wheel_dir="$root/.cache/pgserver"
if [ ! -x "$wheel_dir/pgserver/pginstall/bin/postgres" ]; then
  echo "postgres: installing pgserver $version from PyPI into $wheel_dir" >&2
  python3 -m pip install --quiet --disable-pip-version-check --no-deps --target "$wheel_dir" "pgserver==$version"
fi
mkdir -p "$dir"
chmod 755 "$dir"
if [ ! -x "$bin/postgres" ]; then
  # The whole wheel: the binaries find their libraries through an rpath into pgserver.libs beside them.
  rm -rf "$dir/pkg"
  cp -a "$wheel_dir" "$dir/pkg"
  chmod -R a+rX "$dir/pkg"
fi

if [ ! -f "$dir/data/PG_VERSION" ]; then
  rm -rf "$dir/data"
  mkdir -p "$dir/data"
  chown "$server_user" "$dir/data"
  chmod 700 "$dir/data"
  "${as_server_user[@]}" "$bin/initdb" -D "$dir/data" -U attend --auth=trust -E UTF8 --locale=C >"$dir/initdb.log" 2>&1 ||
    { cat "$dir/initdb.log" >&2; exit 1; }
fi
mkdir -p "$dir/run"; touch "$dir/server.log"; chown "$server_user" "$dir/server.log" "$dir/run"
if ! "${as_server_user[@]}" "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
  "${as_server_user[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-p $port -k $dir/run -c listen_addresses=127.0.0.1 -c max_connections=100 -c shared_buffers=256MB -c maintenance_work_mem=512MB" start >/dev/null ||
    { tail -20 "$dir/server.log" >&2; exit 1; }
fi
psql=("$bin/psql" -X -q -h 127.0.0.1 -p "$port" -U attend)
if ! "${psql[@]}" -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'attend'" | grep -q 1; then
  "${psql[@]}" -d postgres -c "CREATE DATABASE attend"
fi
PGOPTIONS="--client-min-messages=warning" "${psql[@]}" -d attend -c "CREATE EXTENSION IF NOT EXISTS vector"
echo "$url"
