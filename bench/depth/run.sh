#!/usr/bin/env bash
# What a queue's depth costs: a tail page, a post and a claim against one
# queue of 100, 10,000 and 100,000 messages (bench/depth/README.md).
#
#   bench/depth/run.sh                  (make bench-depth: deps and build first)
#   DEPTHS="100 1000" DURATION=3 bench/depth/run.sh      a quick pass
#
# Starts a private store (t/util/store.sh) and nginx with the module (WORKERS
# workers) on free ports, runtime files in bench/results/tmp/depth/, then
# bench/depth/run.py does the measuring and writes
# bench/results/depth-<UTC time>.{csv,md,png} and -plans.txt.  Everything
# started here is stopped on exit.
#
# Settings (environment; run.py's --help has the rest):
#   DEPTHS="100 10000 100000" DURATION=10 WARMUP=2 CONNECTIONS=8 WRK_THREADS=2
#   WORKERS=2 FILL_JOBS=2 SHAPES=1 QUIET_PCT=15 QUIET_WAIT=20
#   STORE_SET="guc=value ..."  PostgreSQL settings (ALTER SYSTEM) made before
#       msgbus creates its indexes, e.g.
#       STORE_SET=documentdb.defaultUseCompositeOpClass=on (ordered indexes)
#   RESULTS_DIR=bench/results  TIMEOUT=7200 (the whole of run.py, seconds)
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/bench/lib.sh"
cd "$top"

WORKERS=${WORKERS:-2}
NGINX=${NGINX:-/usr/sbin/nginx}
TIMEOUT=${TIMEOUT:-7200}
STORE_SET=${STORE_SET:-}
export DEPTHS=${DEPTHS:-100 10000 100000}

run=$top/bench/results/tmp/depth
module=$top/.build/default/ngx_http_msgbus_module.so
PY=/usr/bin/python3

say() { echo "bench-depth: $*"; }
die() { echo "bench-depth: $*" >&2; exit 1; }

[ -f "$module" ] || die "$module missing: make build"
bench_apt wrk python3-matplotlib
command -v wrk > /dev/null || die "wrk missing"
"$PY" -c 'import pymongo, matplotlib' 2> /dev/null \
    || die "$PY needs pymongo and matplotlib (python3-pymongo, python3-matplotlib)"

nginx_up=0
store_up=0

stop_all() {
    if [ "$nginx_up" = 1 ] && [ -s "$run/nginx/logs/nginx.pid" ]; then
        bench_nginx_stop "$run" "$(cat "$run/nginx/logs/nginx.pid")"
        nginx_up=0
    fi
    if [ "$store_up" = 1 ]; then
        timeout 60 t/util/store.sh stop "$run/store" > /dev/null 2>&1 || true
        store_up=0
    fi
}
trap stop_all EXIT
trap 'exit 130' INT TERM

# what a run that was killed may have left
if [ -s "$run/nginx/logs/nginx.pid" ]; then
    old=$(cat "$run/nginx/logs/nginx.pid")
    if [ "$(ps -o comm= -p "$old" 2> /dev/null)" = nginx ]; then
        kill -QUIT "$old" 2> /dev/null || true
        sleep 1
        kill -9 "$old" 2> /dev/null || true
    fi
fi
timeout 60 t/util/store.sh stop "$run/store" > /dev/null 2>&1 || true
rm -rf "$run"
mkdir -p "$run/nginx/conf" "$run/nginx/logs"
# the module as built now: a build meanwhile does not change what is measured
cp "$module" "$run/ngx_http_msgbus_module.so"

# --- the store -----------------------------------------------------------------

store_port=$(t/util/store.sh free-port)
store_up=1
timeout 180 t/util/store.sh start "$run/store" "$store_port"
pg_port=$(cat "$run/store/pg.port")

psql_store() {
    local psql=(/usr/lib/postgresql/15/bin/psql -X -q -v ON_ERROR_STOP=1
                -h 127.0.0.1 -p "$pg_port" -U postgres -d postgres)
    if [ "$(id -u)" = 0 ]; then
        timeout 60 runuser -u postgres -- "${psql[@]}" "$@"
    else
        timeout 60 "${psql[@]}" "$@"
    fi
}

if [ -n "$STORE_SET" ]; then
    for kv in $STORE_SET; do
        [[ $kv == *=* ]] || die "STORE_SET: '$kv' is not guc=value"
        psql_store -c "ALTER SYSTEM SET ${kv%%=*} = '${kv#*=}'"
    done
    psql_store -c 'SELECT pg_reload_conf()' > /dev/null
    sleep 0.5
    for kv in $STORE_SET; do
        say "store: ${kv%%=*} = $(psql_store -At -c "SHOW ${kv%%=*}")"
    done
fi

# --- nginx -----------------------------------------------------------------------

http_port=$(t/util/store.sh free-port)
bench_nginx_conf "$run" "$WORKERS" 1024 "mongodb://127.0.0.1:$store_port/depth" "$http_port" \
    > "$run/nginx/conf/nginx.conf"
nginx_up=1
timeout 30 "$NGINX" -p "$run/nginx/" -c conf/nginx.conf -e "$run/nginx/logs/error.log"
for _ in $(seq 50); do
    [ -s "$run/nginx/logs/nginx.pid" ] && break
    sleep 0.1
done
[ -s "$run/nginx/logs/nginx.pid" ] || die "nginx did not start: see $run/nginx/logs/error.log"

# --- versions and the measuring ------------------------------------------------------

. t/util/store-env.sh
commit=$(git rev-parse --short HEAD 2> /dev/null || echo unknown)
if [ -n "$(git status --porcelain -- ngx_http_msgbus_module config 2> /dev/null)" ]; then
    commit="$commit+dirty"
fi
documentdb=$(psql_store -At -c "SELECT extversion FROM pg_extension WHERE extname = 'documentdb'")
pg_version=$(psql_store -At -c 'SHOW server_version')

say "store 127.0.0.1:$store_port (PostgreSQL $pg_port), nginx 127.0.0.1:$http_port ($WORKERS workers)"
timeout "$TIMEOUT" "$PY" bench/depth/run.py \
    --http-port "$http_port" --store-port "$store_port" --store-dir "$run/store" \
    --pg-port "$pg_port" --nginx-pid "$(cat "$run/nginx/logs/nginx.pid")" \
    --workers "$WORKERS" --run-dir "$run" \
    --version "msgbus=$commit" \
    --version "nginx=$("$NGINX" -v 2>&1 | sed 's|.*nginx/||')" \
    --version "ferretdb=$("$FERRETDB" --version 2> /dev/null | sed -n 's/^version: //p')" \
    --version "documentdb=$documentdb" \
    --version "postgresql=$pg_version" \
    --version "wrk=$( (wrk -v 2>&1 || true) | awk 'NR == 1 { print $2 }')" \
    --store-set "$STORE_SET"
