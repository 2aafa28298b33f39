#!/usr/bin/env bash
# Brings a fresh Debian machine to the point where Troupe runs: npm dependencies, the web
# dashboard's build, PostgreSQL, Redis and a Docker engine (installed from Debian's packages when
# missing, started when not running), the database, migrations and the sandbox images; for
# --test also Chromium (the dashboard's browser tests).
#
# Services a user points DATABASE_URL / REDIS_URL / DOCKER_HOST at are never touched: setup only
# manages the local defaults. Idempotent: a second run finds everything in place and takes seconds.
#
#   bash scripts/setup.sh          # what `npm start` runs
#   bash scripts/setup.sh --test   # what `npm test` runs: also creates the test database
set -euo pipefail
cd "$(dirname "$0")/.."

MODE="${1:-start}"
LOG_DIR="${TROUPE_STATE_DIR:-$PWD/.troupe}"
mkdir -p "$LOG_DIR"
step() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }
die() { printf '[setup] ERROR: %s\n' "$*" >&2; exit 1; }

SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi

APT_UPDATED=0
apt_install() {
  command -v apt-get >/dev/null || die "apt-get not found: install $* yourself, or point the matching *_URL / DOCKER_HOST variable at a running service"
  if [ "$APT_UPDATED" = 0 ]; then
    step "apt-get update"
    $SUDO apt-get update -qq
    APT_UPDATED=1
  fi
  step "installing $* from Debian's packages"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >"$LOG_DIR/apt.log" 2>&1 \
    || { tail -20 "$LOG_DIR/apt.log" >&2; die "apt-get install $* failed (log: $LOG_DIR/apt.log)"; }
}

# --- npm dependencies -------------------------------------------------------------------------
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  step "installing npm dependencies"
  if [ -f package-lock.json ]; then npm ci --no-audit --no-fund; else npm install --no-audit --no-fund; fi
fi

# --- the client package and its `troupe` CLI (packages/client) --------------------------------------
# Built to packages/client/dist when that is missing or older than its sources; the workspace links
# the bin into node_modules/.bin, so `npx troupe` works from the repository root.
CLIENT=packages/client
if [ -d "$CLIENT" ]; then
  if [ ! -f "$CLIENT/dist/cli.js" ] || [ -n "$(find "$CLIENT/src" "$CLIENT/package.json" "$CLIENT/tsconfig.json" -newer "$CLIENT/dist/cli.js" -print -quit)" ]; then
    step "building the client package and the troupe CLI ($CLIENT)"
    npm run --silent build -w @troupe/client
  fi
  if [ ! -e node_modules/.bin/troupe ]; then npm rebuild --silent @troupe/client >/dev/null; fi
fi

# --- the web dashboard (served by the api at /) ----------------------------------------------------
# Built when dist/ is missing or any source is newer than its build.
DASH=packages/dashboard
if [ -d "$DASH" ]; then
  if [ ! -f "$DASH/dist/index.html" ] || [ -n "$(find "$DASH/src" "$CLIENT/src" "$DASH/index.html" "$DASH/vite.config.ts" "$DASH/package.json" -newer "$DASH/dist/index.html" -print -quit)" ]; then
    step "building the web dashboard ($DASH/dist)"
    npm run --silent build -w "$DASH" >"$LOG_DIR/dashboard-build.log" 2>&1 \
      || { tail -20 "$LOG_DIR/dashboard-build.log" >&2; die "the dashboard build failed (log: $LOG_DIR/dashboard-build.log)"; }
  fi
fi

# --- Chromium, for the dashboard's browser tests (npm test) ------------------------------------
if [ "$MODE" = "--test" ] && [ -z "${CHROMIUM_PATH:-}" ] && [ ! -x /usr/bin/chromium ]; then
  apt_install chromium
fi

# --- PostgreSQL -------------------------------------------------------------------------------
DEFAULT_DB_URL="postgres://troupe:troupe@127.0.0.1:5432/troupe"
if [ -z "${DATABASE_URL:-}" ] || [ "${DATABASE_URL}" = "$DEFAULT_DB_URL" ]; then
  if ! command -v pg_lsclusters >/dev/null; then apt_install postgresql; fi
  if ! pg_lsclusters -h | awk '{print $4}' | grep -q online; then
    CLUSTER=$(pg_lsclusters -h | head -1 | awk '{print $1" "$2}')
    if [ -z "$CLUSTER" ]; then
      VER=$(ls /usr/lib/postgresql | sort -n | tail -1)
      step "creating PostgreSQL $VER cluster"
      $SUDO pg_createcluster "$VER" main >/dev/null
      CLUSTER="$VER main"
    fi
    step "starting PostgreSQL ($CLUSTER)"
    $SUDO pg_ctlcluster $CLUSTER start
  fi
  for i in $(seq 1 30); do pg_isready -q -h 127.0.0.1 && break; sleep 1; done
  pg_isready -q -h 127.0.0.1 || die "PostgreSQL did not become ready on 127.0.0.1:5432"
  psql_admin() { $SUDO -u postgres psql -v ON_ERROR_STOP=1 -qtAc "$1" 2>/dev/null || su postgres -c "psql -v ON_ERROR_STOP=1 -qtAc \"$1\""; }
  if [ "$(psql_admin "SELECT 1 FROM pg_roles WHERE rolname='troupe'")" != "1" ]; then
    step "creating database role troupe"
    psql_admin "CREATE ROLE troupe LOGIN PASSWORD 'troupe' CREATEDB" >/dev/null
  fi
  if [ "$MODE" = "--test" ] && [ -z "${TEST_DATABASE_URL:-}" ]; then
    # Every test run starts from an empty, freshly migrated database.
    psql_admin "DROP DATABASE IF EXISTS troupe_test WITH (FORCE)" >/dev/null
  fi
  for db in troupe $( [ "$MODE" = "--test" ] && echo troupe_test ); do
    if [ "$(psql_admin "SELECT 1 FROM pg_database WHERE datname='$db'")" != "1" ]; then
      step "creating database $db"
      psql_admin "CREATE DATABASE $db OWNER troupe" >/dev/null
    fi
  done
else
  step "using DATABASE_URL as given (not managed by setup)"
fi

# --- Redis ------------------------------------------------------------------------------------
if [ -z "${REDIS_URL:-}" ] || [ "${REDIS_URL}" = "redis://127.0.0.1:6379" ]; then
  if ! command -v redis-server >/dev/null; then apt_install redis-server; fi
  if ! redis-cli -h 127.0.0.1 ping >/dev/null 2>&1; then
    step "starting Redis (append-only persistence, data in $LOG_DIR/redis)"
    mkdir -p "$LOG_DIR/redis"
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --appendonly yes \
      --dir "$LOG_DIR/redis" --logfile "$LOG_DIR/redis/redis.log"
    for i in $(seq 1 30); do redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 && break; sleep 0.5; done
    redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 || die "Redis did not start (log: $LOG_DIR/redis/redis.log)"
  fi
else
  step "using REDIS_URL as given (not managed by setup)"
fi

# --- Docker engine ----------------------------------------------------------------------------
if [ -z "${DOCKER_HOST:-}" ]; then
  if ! command -v dockerd >/dev/null; then apt_install docker.io; fi
  if ! docker info >/dev/null 2>&1; then
    step "starting dockerd in its own session (log: $LOG_DIR/dockerd.log)"
    # setsid: the engine must not share npm start's process group, or stopping that group (a
    # process manager, kill -- -PGID) would take the engine and every sandbox down with it.
    setsid nohup dockerd >"$LOG_DIR/dockerd.log" 2>&1 < /dev/null &
    for i in $(seq 1 60); do [ -S /var/run/docker.sock ] && docker info >/dev/null 2>&1 && break; sleep 0.5; done
    docker info >/dev/null 2>&1 || { tail -20 "$LOG_DIR/dockerd.log" >&2; die "dockerd did not start"; }
  fi
else
  step "using DOCKER_HOST=$DOCKER_HOST as given (not managed by setup)"
fi

# --- migrations and images ----------------------------------------------------------------------
step "running migrations"
npx tsx scripts/migrate.ts latest
if [ "$MODE" = "--test" ]; then
  DATABASE_URL="${TEST_DATABASE_URL:-postgres://troupe:troupe@127.0.0.1:5432/troupe_test}" npx tsx scripts/migrate.ts latest
fi
bash scripts/build-images.sh
step "ready"
