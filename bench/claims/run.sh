#!/usr/bin/env bash
# Claim-and-delete throughput next to post throughput (bench/claims/README.md).
#
#   bench/claims/run.sh          (make bench-claims: deps and build first)
#
# A private store (t/util/store.sh: FerretDB in front of PostgreSQL with
# DocumentDB) and nginx with the module, configured
# as 'make run' does (t/util/run.conf: worker_processes auto), on free
# ports; runtime files in bench/results/tmp/claims/.  Then
# t/util/claims.py bench: CONSUMERS producers post MESSAGES messages in
# batches of 10, then CONSUMERS consumers claim LIMIT at a time and delete
# each message with its claim id (Zaqar's consumer loop).  The summary
# line is appended, with the machine and versions, to
# bench/results/claims-<UTC time>.csv.
#
# Settings (environment): MESSAGES=1000 CONSUMERS=8 LIMIT=10
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/bench/lib.sh"
cd "$top"

MESSAGES=${MESSAGES:-1000}
CONSUMERS=${CONSUMERS:-8}
LIMIT=${LIMIT:-10}
NGINX=${NGINX:-/usr/sbin/nginx}
run_id=$(bench_stamp)
RESULTS=${RESULTS:-$top/bench/results/claims-$run_id.csv}

run=$top/bench/results/tmp/claims
module=$top/.build/default/ngx_http_msgbus_module.so

say() { echo "bench-claims: $*"; }
die() { echo "bench-claims: $*" >&2; exit 1; }

[ -f "$module" ] || die "$module missing: make build"
header=date_utc,messages,consumers,limit,post_per_s,claim_delete_per_s,ratio,nproc,cpu_model,nginx,store,msgbus_commit,summary
if [ -s "$RESULTS" ] && [ "$(head -1 "$RESULTS")" != "$header" ]; then
    die "$RESULTS has other columns (an older run.sh): set RESULTS=another.csv"
fi
/usr/bin/python3 -c 'import pymongo' 2>/dev/null \
    || die "/usr/bin/python3 with pymongo (python3-pymongo) missing: make deps"

stop_all() {
    if [ -f "$run/nginx/logs/nginx.pid" ]; then
        timeout 10 "$NGINX" -p "$run/nginx/" -c conf/nginx.conf -s quit \
            2>/dev/null || true
        sleep 1
    fi
    timeout 30 t/util/store.sh stop "$run/store" >/dev/null 2>&1 || true
}

stop_all
trap stop_all EXIT
rm -rf "$run"
mkdir -p "$run/nginx/conf" "$run/nginx/logs"
cp "$module" "$run/ngx_http_msgbus_module.so"

store_port=$(t/util/store.sh free-port)
timeout 120 t/util/store.sh start "$run/store" "$store_port"
http_port=$(t/util/store.sh free-port)

sed -e "s|@MODULE@|$run/ngx_http_msgbus_module.so|" \
    -e "s|@MONGODB_URI@|mongodb://127.0.0.1:$store_port/msgbus|" \
    -e "s|@LISTEN@|127.0.0.1:$http_port|" -e "s|@RESOLVER@||" \
    -e "s|@RUN@|$run/nginx|g" -e "s|error_log \(.*\) notice;|error_log \1 warn;|" \
    -e "s|access_log .*;|access_log off;|" \
    t/util/run.conf > "$run/nginx/conf/nginx.conf"
"$NGINX" -p "$run/nginx/" -c conf/nginx.conf

command=(/usr/bin/python3 t/util/claims.py --port "$http_port"
         --mongodb "mongodb://127.0.0.1:$store_port/msgbus"
         --project bench --messages "$MESSAGES" --claimers "$CONSUMERS"
         --limit "$LIMIT" --deadline 1800 bench)
say "${command[*]}"
out=$("${command[@]}")
echo "$out"
summary=$(echo "$out" | grep '^bench: ')
echo "$out" | grep -qx OK || die "the run failed"

[ -s "$RESULTS" ] || echo "$header" > "$RESULTS"
post=$(echo "$summary" | sed -n 's/.* \([0-9]*\) messages\/s; claim.*/\1/p')
claim=$(echo "$summary" | sed -n 's/.* \([0-9]*\) messages\/s; ratio.*/\1/p')
ratio=$(echo "$summary" | sed -n 's/.*ratio \([0-9.]*\).*/\1/p')
printf '%s,%s,%s,%s,%s,%s,%s,%s,"%s","%s","%s",%s,"%s"\n' \
    "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$MESSAGES" "$CONSUMERS" "$LIMIT" \
    "$post" "$claim" "$ratio" "$(nproc)" \
    "$(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)" \
    "$("$NGINX" -v 2>&1 | sed 's/.*: //')" \
    "$(bench_store_version)" \
    "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" \
    "$summary" >> "$RESULTS"
say "appended to $RESULTS"
