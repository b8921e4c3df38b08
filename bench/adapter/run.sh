#!/usr/bin/env bash
# Store round trips per second through the adapter, next to libmongoc.
#
#   bench/adapter/run.sh          (make bench-adapter: deps and build first)
#
# One run, measurements one after the other, all at the same concurrency:
#   adapter@cpuN  wrk, keep-alive, CONCURRENCY connections -> GET /v2/ping
#            on an nginx with ONE worker (msgbus module) placed on CPU N:
#            one "ping" to the store per request over the adapter's pool
#            (maxPoolSize=POOL)
#   mongoc   .build/bench/mongoc_ping: libmongoc's blocking client, one
#            process, mongoc_client_pool_t (maxPoolSize=MONGOC_POOL) and
#            CONCURRENCY threads doing pop/ping/push
#   static   wrk on "location = /static { return 204; }" of the same
#            nginx: the ceiling of HTTP alone on this machine
# A private store (t/util/store.sh: FerretDB in front of PostgreSQL with
# DocumentDB) and nginx on free ports, runtime files in .run/bench-adapter/.
# The store's CPU is all of it: FerretDB, the postmaster and its backends
# (a ping goes through FerretDB to PostgreSQL and back).  Results go to
# bench/results/adapter-<UTC time>.csv and are summed up on stdout.
#
# Settings (environment):
#   DURATION=10 WARMUP=2 CONCURRENCY=64 POOL=16 MONGOC_POOL=$POOL
#   WRK_THREADS=1 PIN=1 STORE_CPU=0 LOAD_CPU=1 NGINX_CPUS="0 1"
#   RESULTS=bench/results/adapter-<UTC time>.csv KEEP_STORE=0
#   QUIET_PCT=10 QUIET_WAIT=10: before each measurement, wait up to
#   QUIET_WAIT s for a second in which the machine's other work uses at
#   most QUIET_PCT % of one CPU (a warning, not a stop, when it never is)
# PIN=1 (taskset): the whole store (FerretDB, PostgreSQL's postmaster and
# its processes, backends forked later inherit it) on STORE_CPU, the load
# generators (wrk,
# mongoc_ping) on LOAD_CPU, and the adapter is measured once for each
# CPU in NGINX_CPUS with the nginx master and worker moved there: by
# default once on the store's core and once on the load generator's.
# The static ceiling runs with nginx on the first of NGINX_CPUS.
# PIN=0: no pinning, the adapter measured once.
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/bench/lib.sh"
cd "$top"

DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
CONCURRENCY=${CONCURRENCY:-64}
POOL=${POOL:-16}
MONGOC_POOL=${MONGOC_POOL:-$POOL}
WRK_THREADS=${WRK_THREADS:-1}
PIN=${PIN:-1}
STORE_CPU=${STORE_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
NGINX_CPUS=${NGINX_CPUS:-"$STORE_CPU $LOAD_CPU"}
KEEP_STORE=${KEEP_STORE:-0}
QUIET_PCT=${QUIET_PCT:-10}
QUIET_WAIT=${QUIET_WAIT:-10}
NGINX=${NGINX:-/usr/sbin/nginx}
run_id=$(bench_stamp)
RESULTS=${RESULTS:-$top/bench/results/adapter-$run_id.csv}

run=$top/.run/bench-adapter
module=$top/.build/default/ngx_http_msgbus_module.so

say() { echo "bench-adapter: $*"; }
die() { echo "bench-adapter: $*" >&2; exit 1; }

[ "$WRK_THREADS" -le "$CONCURRENCY" ] || die "WRK_THREADS > CONCURRENCY"

header=run,date_utc,test,concurrency,pool,threads,duration_s,requests,errors,per_s,p50_ms,p99_ms,vs_mongoc,store_cpu_pct,nginx_cpu_pct,load_cpu_pct,client_cpu_us_per_op,store_cpu_us_per_op,others_cpu_pct,busy_before_pct,cores_busy_pct,pinning,nproc,cpu_model,kernel,nginx,store,libmongoc,wrk,msgbus_commit,command
if [ -s "$RESULTS" ] && [ "$(head -1 "$RESULTS")" != "$header" ]; then
    die "$RESULTS has other columns (an older run.sh): set RESULTS=another.csv"
fi

# --- tools -----------------------------------------------------------------

bench_apt wrk

[ -f "$module" ] || die "$module missing: run 't/util/build.sh' (make build)"

pinger=$(bench_mongoc_ping)

read -r -a nginx_cpus <<< "$NGINX_CPUS"
if [ "$PIN" = 1 ]; then
    [ ${#nginx_cpus[@]} -gt 0 ] || die "NGINX_CPUS is empty"
    on_store=(taskset -c "$STORE_CPU")
    on_nginx=(taskset -c "${nginx_cpus[0]}")
    on_load=(taskset -c "$LOAD_CPU")
else
    on_store=() on_nginx=() on_load=()
    nginx_cpus=(any)
fi

# the placement of one measurement, for the CSV and the summary
placement() {
    if [ "$PIN" = 1 ]; then
        echo "store:cpu$STORE_CPU nginx:cpu$1 load:cpu$LOAD_CPU"
    else
        echo "none"
    fi
}

# moves the nginx master and worker (all their threads) to a CPU
pin_nginx() {
    [ "$PIN" = 1 ] || return 0
    taskset -a -p -c "$1" "$nginx_pid" >/dev/null
    taskset -a -p -c "$1" "$worker_pid" >/dev/null
}

mkdir -p "$run"

# --- the store -------------------------------------------------------------

started_store=0
nginx_pid=
worker_pid=

stop_all() {
    if [ -n "$nginx_pid" ] && kill -0 "$nginx_pid" 2>/dev/null; then
        bench_nginx_stop "$run" "$nginx_pid"
        [ -z "$worker_pid" ] || kill -9 "$worker_pid" 2>/dev/null || true
    fi
    if [ "$started_store" = 1 ] && [ "$KEEP_STORE" != 1 ]; then
        timeout 30 t/util/store.sh stop "$run/store" || true
    fi
}
trap stop_all EXIT

if [ -f "$run/store/ferretdb.pid" ] && [ -f "$run/store/postgres.pid" ] \
        && [ -f "$run/store/port" ] \
        && kill -0 "$(cat "$run/store/ferretdb.pid")" 2>/dev/null \
        && kill -0 "$(cat "$run/store/postgres.pid")" 2>/dev/null; then
    store_port=$(cat "$run/store/port")
    say "reusing the store on 127.0.0.1:$store_port"
else
    timeout 30 t/util/store.sh stop "$run/store" >/dev/null 2>&1 || true
    store_port=$(t/util/store.sh free-port)
    "${on_store[@]}" timeout 120 t/util/store.sh start "$run/store" "$store_port"
    echo "$store_port" > "$run/store/port"
    started_store=1
fi
if [ "$PIN" = 1 ]; then
    # all of the store, also when reused: the backends PostgreSQL forks
    # later inherit its postmaster's CPU
    for p in $(bench_store_pids "$run/store"); do
        taskset -a -p -c "$STORE_CPU" "$p" >/dev/null 2>&1 || true
    done
fi

# --- nginx -----------------------------------------------------------------

# a master left by a run that was killed
if [ -f "$run/nginx/logs/nginx.pid" ]; then
    old=$(cat "$run/nginx/logs/nginx.pid")
    if kill -0 "$old" 2>/dev/null; then
        kill -QUIT "$old" 2>/dev/null || true
        sleep 1
        kill -9 "$old" 2>/dev/null || true
    fi
    rm -f "$run/nginx/logs/nginx.pid"
fi

http_port=$(t/util/store.sh free-port)
mkdir -p "$run/nginx/conf" "$run/nginx/logs"
store_uri="mongodb://127.0.0.1:$store_port/bench?maxPoolSize=$POOL"

# the module as it is now: a build running meanwhile does not change it
cp "$module" "$run/ngx_http_msgbus_module.so"
bench_nginx_conf "$run" 1 4096 "$store_uri" "$http_port" "
        location = /static {
            return 204;
        }
" "    keepalive_requests 1000000;
    keepalive_timeout 75s;" > "$run/nginx/conf/nginx.conf"

"${on_nginx[@]}" timeout 30 "$NGINX" -p "$run/nginx/" -c conf/nginx.conf \
    -e "$run/nginx/logs/error.log"
for _ in $(seq 50); do
    [ -s "$run/nginx/logs/nginx.pid" ] && break
    sleep 0.1
done
nginx_pid=$(cat "$run/nginx/logs/nginx.pid")
worker_pid=
for _ in $(seq 50); do
    worker_pid=$(pgrep -P "$nginx_pid" | head -1 || true)
    [ -n "$worker_pid" ] && break
    sleep 0.1
done
[ -n "$worker_pid" ] || die "no nginx worker; see $run/nginx/logs/error.log"

base=http://127.0.0.1:$http_port
for path in /v2/ping /static; do
    code=$(timeout 10 curl -s -o /dev/null -w '%{http_code}' "$base$path" || true)
    [ "$code" = 204 ] || die "GET $path answered '$code', not 204; see $run/nginx/logs/error.log"
done

# --- facts -----------------------------------------------------------------

bench_facts "$NGINX"
"$NGINX" -V > "$run/nginx-V.txt" 2>&1
libmongoc_version=$(pkg-config --modversion libmongoc-1.0)

# "pid ticks" of every process but those measured here (the store's
# processes at the time, the nginx master and worker, wrk and mongoc_ping)
others_now() {
    bench_others_now "$run/store" "$nginx_pid $worker_pid" "wrk mongoc_ping"
}

declare -A per_s p50 p99 reqs errs threads cmdline store_pct nginx_pct load_pct
declare -A before others busy where
tests=()

# One measurement: runs the load generator (its CPU seconds, children
# included, go to $run/load-cpu) while a sampler takes the CPU of the store
# and the nginx worker over the DURATION seconds that start after DELAY.
measure() {
    local name=$1 delay=$2 sampler
    shift 2
    tests+=("$name")
    (
        set +e
        sleep "$delay"
        others_now > "$run/others.0"
        s0=$(bench_store_cpu "$run/store") n0=$(bench_cpu_of "$worker_pid") c0=$(bench_cpu_now)
        sleep "$DURATION"
        s1=$(bench_store_cpu "$run/store") n1=$(bench_cpu_of "$worker_pid") c1=$(bench_cpu_now)
        others_now > "$run/others.1"
        awk -v a="$s0" -v b="$s1" -v c="$n0" -v e="$n1" -v d="$DURATION" \
            'BEGIN { printf "%.0f %.0f ", (b - a) / d * 100, (e - c) / d * 100 }'
        bench_others_diff "$run/others.0" "$run/others.1" "$DURATION" | tr '\n' ' '
        bench_cpu_diff "$c0" "$c1"
    ) > "$run/$name.cpu" &
    sampler=$!
    bench_timed "$run/load-cpu" "$@" > "$run/$name.out"
    wait "$sampler" || true
    read -r "store_pct[$name]" "nginx_pct[$name]" "others[$name]" \
        "busy[$name]" < "$run/$name.cpu" || true
    cmdline[$name]="$*"
}

wrk_case() {
    local name=$1 url=$2 cpu=$3 f
    pin_nginx "$cpu"
    where[$name]=$(placement "$cpu")
    before[$name]=$(bench_wait_quiet "$QUIET_PCT" "$QUIET_WAIT")
    say "$name (${where[$name]}): warm-up ${WARMUP}s, then wrk for ${DURATION}s"
    if [ "$WARMUP" != 0 ]; then
        timeout $((WARMUP + 30)) "${on_load[@]}" wrk -t"$WRK_THREADS" \
            -c"$CONCURRENCY" -d"${WARMUP}s" "$url" > /dev/null
    fi
    measure "$name" 0 timeout $((DURATION + 30)) "${on_load[@]}" \
        wrk -t"$WRK_THREADS" -c"$CONCURRENCY" -d"${DURATION}s" --timeout 5s \
        --latency "$url"
    f=$run/$name.out
    per_s[$name]=$(bench_wrk_per_s "$f")
    reqs[$name]=$(bench_wrk_requests "$f")
    errs[$name]=$(bench_wrk_errors "$f")
    p50[$name]=$(bench_wrk_ms 50% "$f")
    p99[$name]=$(bench_wrk_ms 99% "$f")
    threads[$name]=$WRK_THREADS
    load_pct[$name]=$(awk -v c="$(cat "$run/load-cpu")" -v d="$DURATION" \
                      'BEGIN { printf "%.0f", c / d * 100 }')
}

mongoc_case() {
    local name=mongoc f
    local uri="mongodb://127.0.0.1:$store_port/bench?maxPoolSize=$MONGOC_POOL"
    where[$name]=$(placement "${nginx_cpus[0]}")
    before[$name]=$(bench_wait_quiet "$QUIET_PCT" "$QUIET_WAIT")
    say "mongoc (${where[$name]}): warm-up ${WARMUP}s, then mongoc_ping for ${DURATION}s"
    # mongoc_ping warms up in its own process: sample after the warm-up
    measure "$name" "$WARMUP" timeout $((WARMUP + DURATION + 60)) \
        "${on_load[@]}" "$pinger" -u "$uri" -t "$CONCURRENCY" \
        -d "$DURATION" -w "$WARMUP"
    f=$run/$name.out
    kv() { tr ' ' '\n' < "$f" | sed -n "s/^$1=//p"; }
    per_s[$name]=$(kv pings_per_s)
    reqs[$name]=$(kv pings)
    errs[$name]=$(kv errors)
    p50[$name]=$(kv p50_ms)
    p99[$name]=$(kv p99_ms)
    threads[$name]=$(kv threads)
    # its own CPU in the window (getrusage), without the warm-up
    load_pct[$name]=$(awk -v c="$(kv cpu_s)" -v d="$DURATION" \
                      'BEGIN { printf "%.0f", c / d * 100 }')
}

say "store 127.0.0.1:$store_port, nginx $base (1 worker), concurrency $CONCURRENCY, pool $POOL, ${DURATION}s each"

adapters=()
for cpu in "${nginx_cpus[@]}"; do
    name=adapter
    [ ${#nginx_cpus[@]} -gt 1 ] && name=adapter@cpu$cpu
    adapters+=("$name")
    wrk_case "$name" "$base/v2/ping" "$cpu"
done
mongoc_case
wrk_case static "$base/static" "${nginx_cpus[0]}"

declare -A vs_mongoc client_us store_us
for name in "${tests[@]}"; do
    vs_mongoc[$name]=$(awk -v a="${per_s[$name]}" -v m="${per_s[mongoc]}" \
                       'BEGIN { printf "%.2f", (m > 0 ? a / m : 0) }')
    # CPU microseconds per operation: of the client (the nginx worker, or
    # mongoc_ping) and of the store
    c=${nginx_pct[$name]}
    [ "$name" = mongoc ] && c=${load_pct[$name]}
    client_us[$name]=$(awk -v c="$c" -v r="${per_s[$name]}" \
                       'BEGIN { printf "%.0f", (r > 0 ? c / 100 / r * 1e6 : 0) }')
    store_us[$name]=$(awk -v c="${store_pct[$name]}" -v r="${per_s[$name]}" \
                      'BEGIN { printf "%.0f", (r > 0 ? c / 100 / r * 1e6 : 0) }')
done

# --- results ---------------------------------------------------------------

mkdir -p "$(dirname "$RESULTS")"
if [ ! -s "$RESULTS" ]; then
    echo "$header" > "$RESULTS"
fi
date_utc=$(date -u +%FT%TZ)
for name in "${tests[@]}"; do
    pool=$POOL
    [ "$name" = mongoc ] && pool=$MONGOC_POOL
    [ "$name" = static ] && pool=
    cmd=${cmdline[$name]//$top\//}
    echo "$run_id,$date_utc,$name,$CONCURRENCY,$pool,${threads[$name]},$DURATION,${reqs[$name]},${errs[$name]},${per_s[$name]},${p50[$name]},${p99[$name]},${vs_mongoc[$name]},${store_pct[$name]},${nginx_pct[$name]},${load_pct[$name]},${client_us[$name]},${store_us[$name]},${others[$name]},${before[$name]},$(bench_csvq "${busy[$name]}"),$(bench_csvq "${where[$name]}"),$nproc,$(bench_csvq "$cpu_model"),$kernel,$nginx_version,$(bench_csvq "$store_version"),$libmongoc_version,$wrk_version,$commit,$(bench_csvq "$cmd")" >> "$RESULTS"
done

echo
printf '%-13s %9s %9s %7s %7s %6s %-14s %-12s %-17s %s\n' test per_s \
    vs_mongoc p50_ms p99_ms errors "cpu% s/n/l/o" "us/op cl/st" \
    "cores busy %" placement
for name in "${tests[@]}"; do
    printf '%-13s %9s %9s %7s %7s %6s %-14s %-12s %-17s %s\n' "$name" \
        "${per_s[$name]}" "${vs_mongoc[$name]}" "${p50[$name]}" \
        "${p99[$name]}" "${errs[$name]}" \
        "${store_pct[$name]}/${nginx_pct[$name]}/${load_pct[$name]}/${others[$name]}" \
        "${client_us[$name]}/${store_us[$name]}" "${busy[$name]}" \
        "${where[$name]}"
done
echo "(cpu% s/n/l/o: store, nginx worker, load generator, all other processes,"
echo " in % of one CPU; us/op cl/st: CPU microseconds per operation of the"
echo " client, i.e. the nginx worker or mongoc_ping, and of the store; cores"
echo " busy also counts the kernel's network work, charged to no process)"
echo
for name in "${adapters[@]}"; do
    echo "$name/mongoc = ${vs_mongoc[$name]}  (${where[$name]})"
done
echo "($nproc x $cpu_model, nginx $nginx_version, $store_version, libmongoc $libmongoc_version, wrk $wrk_version)"
echo "results: ${RESULTS#$top/} (run $run_id)"
