#!/usr/bin/env bash
# A page of messages from msgbus next to the same bytes from static nginx,
# then the ordering stress run at scale (bench/messages/README.md).
#
#   bench/messages/run.sh          (make bench-messages: deps and build first)
#
# One nginx (WORKERS workers, the msgbus module) and a private store
# (t/util/store.sh: FerretDB in front of PostgreSQL with DocumentDB), on
# free ports; runtime files in bench/results/tmp/messages/.  The store's
# CPU is all of it: FerretDB, the postmaster and its backends.  In one
# run, one after the other:
#   msgbus   wrk, CONNECTIONS connections, "Connection: close" (one request
#            per connection) -> GET /v2/queues/page/messages?limit=10&echo=true
#            with 10 small messages in the queue: one store query each
#   static   the same wrk on a location of the same nginx that answers the
#            bytes msgbus answered (return 200 '...', application/json)
#   ordering t/util/ordering.py with ORDERING_MESSAGES messages (4
#            producers, a consumer, 2 observers) against the same nginx
# Results go to bench/results/messages-<UTC time>.csv and are summed up
# on stdout.
#
# Settings (environment):
#   DURATION=10 WARMUP=2 CONNECTIONS=64 WRK_THREADS=1 WORKERS=2
#   ORDERING_MESSAGES=50000 (0: no ordering run)
#   RESULTS=bench/results/messages-<UTC time>.csv
#   QUIET_PCT=10 QUIET_WAIT=10: before each wrk measurement, wait up to
#   QUIET_WAIT s for a second in which other work on the machine uses at
#   most QUIET_PCT % of one CPU (a warning, not a stop, when it never is)
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/bench/lib.sh"
cd "$top"

DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
CONNECTIONS=${CONNECTIONS:-64}
WRK_THREADS=${WRK_THREADS:-1}
WORKERS=${WORKERS:-2}
ORDERING_MESSAGES=${ORDERING_MESSAGES:-50000}
QUIET_PCT=${QUIET_PCT:-10}
QUIET_WAIT=${QUIET_WAIT:-10}
NGINX=${NGINX:-/usr/sbin/nginx}
run_id=$(bench_stamp)
RESULTS=${RESULTS:-$top/bench/results/messages-$run_id.csv}

run=$top/bench/results/tmp/messages
module=$top/.build/default/ngx_http_msgbus_module.so
project=bench
queue=q
client_id=3381af92-2b9e-11e3-b191-71861300734c
page_path="/v2/queues/$queue/messages?limit=10&echo=true"

say() { echo "bench-messages: $*"; }
die() { echo "bench-messages: $*" >&2; exit 1; }

[ "$WRK_THREADS" -le "$CONNECTIONS" ] || die "WRK_THREADS > CONNECTIONS"

header=run,date_utc,test,workers,connections,threads,duration_s,requests,errors,per_s,p50_ms,p99_ms,vs_static,response_bytes,nginx_cpu_pct,store_cpu_pct,load_cpu_pct,nginx_us_per_req,store_us_per_req,others_cpu_pct,busy_before_pct,cores_busy_pct,nproc,cpu_model,kernel,nginx,store,wrk,msgbus_commit,command,detail
if [ -s "$RESULTS" ] && [ "$(head -1 "$RESULTS")" != "$header" ]; then
    die "$RESULTS has other columns (an older run.sh): set RESULTS=another.csv"
fi

# --- tools -----------------------------------------------------------------

bench_apt wrk
command -v curl >/dev/null || die "curl missing"
[ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import pymongo' 2>/dev/null \
    || die "/usr/bin/python3 with pymongo (python3-pymongo) missing: make deps"
[ -f "$module" ] || die "$module missing: run 't/util/build.sh' (make build)"

mkdir -p "$run"
# the module as it is now: a build running meanwhile does not change it
cp "$module" "$run/ngx_http_msgbus_module.so"

# --- the store and nginx -----------------------------------------------------

nginx_pid=
started_store=0

stop_all() {
    bench_nginx_stop "$run" "$nginx_pid"
    if [ "$started_store" = 1 ]; then
        timeout 30 t/util/store.sh stop "$run/store" || true
    fi
}
trap stop_all EXIT

# what a run that was killed left
if [ -f "$run/nginx/logs/nginx.pid" ]; then
    old=$(cat "$run/nginx/logs/nginx.pid")
    if kill -0 "$old" 2>/dev/null; then
        kill -QUIT "$old" 2>/dev/null || true
        sleep 1
        kill -9 "$old" 2>/dev/null || true
    fi
    rm -f "$run/nginx/logs/nginx.pid"
fi
timeout 30 t/util/store.sh stop "$run/store" || true
rm -rf "$run/store"

store_port=$(t/util/store.sh free-port)
timeout 120 t/util/store.sh start "$run/store" "$store_port"
started_store=1
store_uri="mongodb://127.0.0.1:$store_port/bench"

http_port=$(t/util/store.sh free-port)
mkdir -p "$run/nginx/conf" "$run/nginx/logs"
: > "$run/nginx/logs/error.log"

# nginx.conf; $1: the static location (empty at first)
render() {
    bench_nginx_conf "$run" "$WORKERS" 4096 "$store_uri" "$http_port" "$1" \
        > "$run/nginx/conf/nginx.conf"
}

# the nginx workers' pids (after a start or a reload: the new ones)
workers_now() {
    local i w
    for i in $(seq 100); do
        w=$(ps -o pid=,args= --ppid "$nginx_pid" | awk '/worker process/ && !/shutting/ { print $1 }' | sort -n | tr '\n' ' ')
        if [ "$(echo "$w" | wc -w)" = "$WORKERS" ]; then
            echo "$w"
            return
        fi
        sleep 0.1
    done
    die "not $WORKERS nginx workers; see $run/nginx/logs/error.log"
}

render ""
timeout 30 "$NGINX" -p "$run/nginx/" -c conf/nginx.conf -e "$run/nginx/logs/error.log"
for _ in $(seq 50); do
    [ -s "$run/nginx/logs/nginx.pid" ] && break
    sleep 0.1
done
nginx_pid=$(cat "$run/nginx/logs/nginx.pid")
workers_now > /dev/null

base=http://127.0.0.1:$http_port
hdr=(-H "Client-ID: $client_id" -H "X-Project-ID: $project")

# --- the page ----------------------------------------------------------------

code=$(timeout 10 curl -s -o /dev/null -w '%{http_code}' -X PUT "${hdr[@]}" "$base/v2/queues/$queue")
[ "$code" = 201 ] || die "PUT /v2/queues/$queue answered '$code'; see $run/nginx/logs/error.log"
# 10 messages with the smallest bodies: ids, hrefs, ttl and age alone make
# 1.4 KB, as close to 1 KB as a page of 10 gets
code=$(timeout 10 curl -s -o "$run/post.json" -w '%{http_code}' -X POST "${hdr[@]}" \
    -H 'Content-Type: application/json' "$base/v2/queues/$queue/messages" \
    -d '{"messages": [{"body": 1}, {"body": 2}, {"body": 3}, {"body": 4}, {"body": 5}, {"body": 6}, {"body": 7}, {"body": 8}, {"body": 9}, {"body": 10}]}')
[ "$code" = 201 ] || die "POST of the page answered '$code': $(cat "$run/post.json")"

# the ages in the page go from 1 to 2 digits at 10 s: wait for that, the
# page then keeps its size for 90 s
say "waiting 10 s for the messages' ages to have 2 digits"
sleep 10
timeout 10 curl -s -D "$run/msgbus.headers" -o "$run/page.json" "${hdr[@]}" "$base$page_path"
grep -q '^HTTP/1.1 200' "$run/msgbus.headers" || die "GET $page_path: $(head -1 "$run/msgbus.headers")"
n=$(/usr/bin/python3 -c 'import json, sys; print(len(json.load(open(sys.argv[1]))["messages"]))' "$run/page.json")
[ "$n" = 10 ] || die "the page has $n messages, not 10"
if grep -q "[\\\\'\$]" "$run/page.json"; then
    die "the page has a quote, backslash or \$: it cannot go in return '...'"
fi
page_bytes=$(wc -c < "$run/page.json")

render "
        location = /static {
            default_type application/json;
            return 200 '$(cat "$run/page.json")';
        }
"
timeout 30 "$NGINX" -p "$run/nginx/" -c conf/nginx.conf -e "$run/nginx/logs/error.log" -s reload
sleep 0.5
workers=$(workers_now)
timeout 10 curl -s -D "$run/static.headers" -o "$run/static.json" "$base/static"
cmp -s "$run/page.json" "$run/static.json" || die "/static does not answer the page's bytes"
# the same headers but Date
if ! diff <(grep -v '^Date:' "$run/msgbus.headers") <(grep -v '^Date:' "$run/static.headers") > "$run/headers.diff"; then
    say "warning: the headers differ (see $run/headers.diff)" >&2
fi
say "the page: $page_bytes bytes of JSON, $(wc -c < "$run/msgbus.headers") of headers"

# --- facts -------------------------------------------------------------------

bench_facts "$NGINX"

# "pid ticks" of every process but the store's (those at the time),
# nginx and wrk
others_now() {
    bench_others_now "$run/store" "$nginx_pid $workers" wrk
}

declare -A per_s p50 p99 reqs errs cmdline nginx_pct store_pct load_pct
declare -A nginx_us store_us
declare -A before others busy
tests=()

# one wrk measurement, the CPU of nginx's workers, the store, wrk and the
# rest sampled over the same DURATION seconds
wrk_case() {
    local name=$1 url=$2 f
    shift 2
    local cmd=(wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -H "Connection: close" "$@")
    tests+=("$name")
    before[$name]=$(bench_wait_quiet "$QUIET_PCT" "$QUIET_WAIT")
    say "$name: warm-up ${WARMUP}s, then wrk for ${DURATION}s"
    if [ "$WARMUP" != 0 ]; then
        timeout $((WARMUP + 30)) "${cmd[@]}" -d"${WARMUP}s" "$url" > /dev/null
    fi
    (
        set +e
        others_now > "$run/others.0"
        n0=$(bench_cpu_of $workers) s0=$(bench_store_cpu "$run/store") c0=$(bench_cpu_now)
        sleep "$DURATION"
        n1=$(bench_cpu_of $workers) s1=$(bench_store_cpu "$run/store") c1=$(bench_cpu_now)
        others_now > "$run/others.1"
        awk -v a="$n0" -v b="$n1" -v c="$s0" -v e="$s1" -v d="$DURATION" \
            'BEGIN { printf "%.0f %.0f ", (b - a) / d * 100, (e - c) / d * 100 }'
        bench_others_diff "$run/others.0" "$run/others.1" "$DURATION" | tr '\n' ' '
        bench_cpu_diff "$c0" "$c1"
    ) > "$run/$name.cpu" &
    local sampler=$!
    bench_timed "$run/load-cpu" \
        timeout $((DURATION + 30)) "${cmd[@]}" -d"${DURATION}s" --timeout 5s \
        --latency "$url" > "$run/$name.out"
    wait "$sampler" || true
    read -r "nginx_pct[$name]" "store_pct[$name]" "others[$name]" \
        "busy[$name]" < "$run/$name.cpu" || true
    f=$run/$name.out
    per_s[$name]=$(bench_wrk_per_s "$f")
    reqs[$name]=$(bench_wrk_requests "$f")
    errs[$name]=$(bench_wrk_errors "$f")
    p50[$name]=$(bench_wrk_ms 50% "$f")
    p99[$name]=$(bench_wrk_ms 99% "$f")
    load_pct[$name]=$(awk -v c="$(cat "$run/load-cpu")" -v d="$DURATION" \
                      'BEGIN { printf "%.0f", c / d * 100 }')
    # CPU microseconds per request of nginx's workers and of the store
    nginx_us[$name]=$(awk -v c="${nginx_pct[$name]}" -v r="${per_s[$name]}" \
                      'BEGIN { printf "%.0f", (r > 0 ? c / 100 / r * 1e6 : 0) }')
    store_us[$name]=$(awk -v c="${store_pct[$name]}" -v r="${per_s[$name]}" \
                      'BEGIN { printf "%.0f", (r > 0 ? c / 100 / r * 1e6 : 0) }')
    cmdline[$name]="${cmd[*]} -d${DURATION}s --timeout 5s --latency $url"
}

say "store 127.0.0.1:$store_port, nginx $base ($WORKERS workers), $CONNECTIONS connections, one request each, ${DURATION}s each"

wrk_case msgbus "$base$page_path" -H "Client-ID: $client_id" -H "X-Project-ID: $project"
wrk_case static "$base/static"

# the page is still what static answers but for the ages (no message
# expired or went, no age went to 3 digits)
timeout 10 curl -s -o "$run/page.after.json" "${hdr[@]}" "$base$page_path"
if ! cmp -s <(sed 's/"age": [0-9]*/"age": N/g' "$run/page.json") \
            <(sed 's/"age": [0-9]*/"age": N/g' "$run/page.after.json") \
   || [ "$(wc -c < "$run/page.after.json")" != "$page_bytes" ]; then
    say "warning: the page changed during the run (see $run/page.after.json)" >&2
fi

# --- the ordering run ----------------------------------------------------------

ordering_line=
ordering_rc=
if [ "$ORDERING_MESSAGES" -gt 0 ]; then
    say "ordering: $ORDERING_MESSAGES messages (t/util/ordering.py), a few minutes"
    o0=$(date +%s.%N)
    set +e
    ORDERING_MESSAGES=$ORDERING_MESSAGES timeout $((600 + ORDERING_MESSAGES / 20)) \
        /usr/bin/python3 t/util/ordering.py --port "$http_port" \
        --mongodb "$store_uri" --project ordering --verbose \
        > "$run/ordering.out" 2>&1
    ordering_rc=$?
    set -e
    o1=$(date +%s.%N)
    ordering_line=$(grep -m1 '^ordering: ' "$run/ordering.out" || echo "ordering: no summary (exit $ordering_rc)")
    verdict=$(grep -m1 -E '^(OK|FAILED)' "$run/ordering.out" || echo "exit $ordering_rc")
    ordering_secs=$(awk -v a="$o0" -v b="$o1" 'BEGIN { printf "%.0f", b - a }')
    ordering_acked=$(echo "$ordering_line" | awk '{ print $2 }')
    ordering_rate=$(echo "$ordering_line" | sed -n 's/.* (\([0-9.]*\) msg\/s).*/\1/p')
    ordering_refused=$(echo "$ordering_line" | sed -n 's/.*, \([0-9]*\) posts refused.*/\1/p')
fi

# --- results -----------------------------------------------------------------

vs_static=$(awk -v a="${per_s[msgbus]}" -v s="${per_s[static]}" \
            'BEGIN { printf "%.3f", (s > 0 ? a / s : 0) }')

mkdir -p "$(dirname "$RESULTS")"
[ -s "$RESULTS" ] || echo "$header" > "$RESULTS"
date_utc=$(date -u +%FT%TZ)
resp_bytes=$(( page_bytes + $(wc -c < "$run/msgbus.headers") ))
for name in "${tests[@]}"; do
    vs=$vs_static
    [ "$name" = static ] && vs=1.000
    cmd=${cmdline[$name]//$top\//}
    echo "$run_id,$date_utc,$name,$WORKERS,$CONNECTIONS,$WRK_THREADS,$DURATION,${reqs[$name]},${errs[$name]},${per_s[$name]},${p50[$name]},${p99[$name]},$vs,$resp_bytes,${nginx_pct[$name]},${store_pct[$name]},${load_pct[$name]},${nginx_us[$name]},${store_us[$name]},${others[$name]},${before[$name]},$(bench_csvq "${busy[$name]}"),$nproc,$(bench_csvq "$cpu_model"),$kernel,$nginx_version,$(bench_csvq "$store_version"),$wrk_version,$commit,$(bench_csvq "$cmd"),$(bench_csvq "$page_bytes bytes of JSON: 10 messages")" >> "$RESULTS"
done
if [ -n "$ordering_line" ]; then
    echo "$run_id,$date_utc,ordering,$WORKERS,7,,$ordering_secs,$ordering_acked,$ordering_refused,$ordering_rate,,,,,,,,,,,,,$nproc,$(bench_csvq "$cpu_model"),$kernel,$nginx_version,$(bench_csvq "$store_version"),$wrk_version,$commit,$(bench_csvq "ORDERING_MESSAGES=$ORDERING_MESSAGES /usr/bin/python3 t/util/ordering.py --port P --mongodb $store_uri --project ordering"),$(bench_csvq "$verdict: $ordering_line")" >> "$RESULTS"
fi

echo
printf '%-8s %9s %7s %7s %7s %6s %-16s %-11s %s\n' test per_s vs p50_ms p99_ms \
    errors "cpu% n/s/l/o" "us/req n/s" "cores busy %"
for name in "${tests[@]}"; do
    vs=$vs_static
    [ "$name" = static ] && vs=1.000
    printf '%-8s %9s %7s %7s %7s %6s %-16s %-11s %s\n' "$name" "${per_s[$name]}" \
        "$vs" "${p50[$name]}" "${p99[$name]}" "${errs[$name]}" \
        "${nginx_pct[$name]}/${store_pct[$name]}/${load_pct[$name]}/${others[$name]}" \
        "${nginx_us[$name]}/${store_us[$name]}" "${busy[$name]}"
done
echo "(cpu% n/s/l/o: nginx's $WORKERS workers, the store (FerretDB and PostgreSQL),"
echo " wrk, all other processes, in % of one CPU; us/req n/s: CPU microseconds per"
echo " request of nginx's workers and of the store; one request per connection;"
echo " a $resp_bytes-byte answer)"
echo
echo "msgbus/static = $vs_static"
if [ -n "$ordering_line" ]; then
    echo
    echo "$ordering_line"
    echo "$verdict (full output: ${run#$top/}/ordering.out)"
fi
echo "($nproc x $cpu_model, nginx $nginx_version, $store_version, wrk $wrk_version, msgbus $commit)"
echo "results: ${RESULTS#$top/} (run $run_id)"
