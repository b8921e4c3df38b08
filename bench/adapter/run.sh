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
# (a ping goes through FerretDB to PostgreSQL and back).  Results are appended to
# bench/results/adapter-<UTC date>.csv and summed up on stdout.
#
# Settings (environment):
#   DURATION=10 WARMUP=2 CONCURRENCY=64 POOL=16 MONGOC_POOL=$POOL
#   WRK_THREADS=1 PIN=1 STORE_CPU=0 LOAD_CPU=1 NGINX_CPUS="0 1"
#   RESULTS=bench/results/adapter-<date>.csv KEEP_STORE=0
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
RESULTS=${RESULTS:-$top/bench/results/adapter-$(date -u +%Y%m%d).csv}

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
    local i
    if [ -n "$nginx_pid" ] && kill -0 "$nginx_pid" 2>/dev/null; then
        timeout 10 "$NGINX" -p "$run/nginx/" -c conf/nginx.conf -s quit \
            2>/dev/null || kill "$nginx_pid" 2>/dev/null || true
        for i in $(seq 50); do
            kill -0 "$nginx_pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$nginx_pid" 2>/dev/null || true
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

cat > "$run/nginx/conf/nginx.conf" <<EOF
# rendered by bench/adapter/run.sh
load_module $module;

worker_processes 1;
error_log $run/nginx/logs/error.log warn;
pid $run/nginx/logs/nginx.pid;

events {
    worker_connections 4096;
}

http {
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 75s;

    client_body_temp_path $run/nginx/client_body_temp;
    proxy_temp_path $run/nginx/proxy_temp;
    fastcgi_temp_path $run/nginx/fastcgi_temp;
    uwsgi_temp_path $run/nginx/uwsgi_temp;
    scgi_temp_path $run/nginx/scgi_temp;

    msgbus_mongodb "$store_uri";

    server {
        listen 127.0.0.1:$http_port;

        location = /static {
            return 204;
        }

        location / {
            msgbus;
        }
    }
}
EOF

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

nproc=$(nproc)
cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
kernel=$(uname -r)
nginx_version=$("$NGINX" -V 2>&1 | sed -n 's/^nginx version: //p')
"$NGINX" -V > "$run/nginx-V.txt" 2>&1
store_version=$(bench_store_version)
libmongoc_version=$(pkg-config --modversion libmongoc-1.0)
wrk_version=$( (wrk -v 2>&1 || true) | awk 'NR == 1 { print $2 }')
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(git status --porcelain -- ngx_http_msgbus_module config 2>/dev/null)" ]; then
    commit="$commit+dirty"
fi
run_id=$(date -u +%Y%m%dT%H%M%SZ)
tck=$(getconf CLK_TCK)

# CPU seconds used so far by a process (all its threads)
cpu_of() {
    awk -v t="$tck" '{ sub(/^.*\) /, ""); printf "%.2f\n", ($12 + $13) / t }' \
        "/proc/$1/stat"
}

# /proc/stat on one line: "cpuN busy total" for each CPU (jiffies; busy
# is all but idle and iowait)
cpu_now() {
    awk '/^cpu[0-9]/ { t = $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9
                       printf "%s %d %d ", $1, t - $5 - $6, t }
         END { print "" }' /proc/stat
}

# from two cpu_now lines: "cpu0:B cpu1:B" (B: that CPU's busy %) and,
# with a third argument, only the busy jiffies summed over the CPUs as %
# of one CPU over that many seconds
cpu_diff() {
    awk -v a="$1" -v b="$2" -v d="${3:-}" -v t="$tck" 'BEGIN {
        n = split(a, x, " "); split(b, y, " "); cores = ""; busy = 0
        for (i = 1; i < n; i += 3) {
            tot = y[i + 2] - x[i + 2]
            busy += y[i + 1] - x[i + 1]
            cores = cores (cores == "" ? "" : " ") x[i] ":" \
                    sprintf("%.0f", tot > 0 ? (y[i + 1] - x[i + 1]) / tot * 100 : 0)
        }
        if (d != "") printf "%.0f\n", busy / t / d * 100
        else print cores
    }'
}

# "pid ticks" of every process but those measured here (the store's
# processes at the time, the nginx master and worker, wrk and mongoc_ping
# by name)
others_now() {
    local skip
    skip=" $(bench_store_pids "$run/store" | tr '\n' ' ') $nginx_pid $worker_pid "
    { cat /proc/[0-9]*/stat 2>/dev/null || true; } | awk -v skip="$skip" '{
        pid = $1; comm = $0; sub(/^[^(]*\(/, "", comm); sub(/\) [^)]*$/, "", comm)
        rest = $0; sub(/^.*\) /, "", rest); split(rest, f, " ")
        if (index(skip, " " pid " ") || comm == "wrk" || comm == "mongoc_ping") next
        print pid, f[12] + f[13]
    }'
}

# CPU of those processes between two others_now files over D seconds, %
# of one CPU (processes that ended in between are not counted)
others_diff() {
    awk -v d="$3" -v t="$tck" 'FNR == NR { a[$1] = $2; next }
        { s += $2 - ($1 in a ? a[$1] : 0) }
        END { printf "%.0f\n", s / t / d * 100 }' "$1" "$2"
}

# How busy the machine is over one second, in % of one CPU (nothing of
# this benchmark runs between measurements: that is all other work).
busy_1s() {
    local c0 c1
    c0=$(cpu_now)
    sleep 1
    c1=$(cpu_now)
    cpu_diff "$c0" "$c1" 1
}

# Waits (at most QUIET_WAIT seconds) for the machine to be quiet: other
# work on a 2-core machine moves the numbers a lot.
wait_quiet() {
    local b waited=0
    while :; do
        b=$(busy_1s)
        waited=$((waited + 1))
        [ "$b" -le "$QUIET_PCT" ] && break
        if [ "$waited" -ge "$QUIET_WAIT" ]; then
            say "warning: the machine is busy (${b}% of a CPU used by others)" >&2
            break
        fi
    done
    echo "$b"
}

# wrk's percentile in ms ("1.23ms", "456.00us", "1.01s")
wrk_ms() {
    awk -v p="$1" '$1 == p {
        v = $2
        if (v ~ /us$/) { sub(/us$/, "", v); v /= 1000 }
        else if (v ~ /ms$/) { sub(/ms$/, "", v) }
        else if (v ~ /s$/) { sub(/s$/, "", v); v *= 1000 }
        printf "%.3f\n", v
    }' "$2"
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
        s0=$(bench_store_cpu "$run/store") n0=$(cpu_of "$worker_pid") c0=$(cpu_now)
        sleep "$DURATION"
        s1=$(bench_store_cpu "$run/store") n1=$(cpu_of "$worker_pid") c1=$(cpu_now)
        others_now > "$run/others.1"
        awk -v a="$s0" -v b="$s1" -v c="$n0" -v e="$n1" -v d="$DURATION" \
            'BEGIN { printf "%.0f %.0f ", (b - a) / d * 100, (e - c) / d * 100 }'
        others_diff "$run/others.0" "$run/others.1" "$DURATION" | tr '\n' ' '
        cpu_diff "$c0" "$c1"
    ) > "$run/$name.cpu" &
    sampler=$!
    CPU_OUT=$run/load-cpu perl -e '
        my $rc = system(@ARGV); my @t = times;
        open my $f, ">", $ENV{CPU_OUT} or die;
        printf $f "%.2f\n", $t[2] + $t[3];
        exit($rc == -1 ? 127 : $rc >> 8);' -- "$@" > "$run/$name.out"
    wait "$sampler" || true
    read -r "store_pct[$name]" "nginx_pct[$name]" "others[$name]" \
        "busy[$name]" < "$run/$name.cpu" || true
    cmdline[$name]="$*"
}

wrk_case() {
    local name=$1 url=$2 cpu=$3 f
    pin_nginx "$cpu"
    where[$name]=$(placement "$cpu")
    before[$name]=$(wait_quiet)
    say "$name (${where[$name]}): warm-up ${WARMUP}s, then wrk for ${DURATION}s"
    if [ "$WARMUP" != 0 ]; then
        timeout $((WARMUP + 30)) "${on_load[@]}" wrk -t"$WRK_THREADS" \
            -c"$CONCURRENCY" -d"${WARMUP}s" "$url" > /dev/null
    fi
    measure "$name" 0 timeout $((DURATION + 30)) "${on_load[@]}" \
        wrk -t"$WRK_THREADS" -c"$CONCURRENCY" -d"${DURATION}s" --timeout 5s \
        --latency "$url"
    f=$run/$name.out
    per_s[$name]=$(awk '/^Requests\/sec:/ { printf "%.1f", $2 }' "$f")
    reqs[$name]=$(awk '/ requests in / { print $1 }' "$f")
    errs[$name]=$(awk '/Non-2xx or 3xx responses:/ { n += $NF }
                       /Socket errors:/ { gsub(/,/, ""); n += $4 + $6 + $8 + $10 }
                       END { print n + 0 }' "$f")
    p50[$name]=$(wrk_ms 50% "$f")
    p99[$name]=$(wrk_ms 99% "$f")
    threads[$name]=$WRK_THREADS
    load_pct[$name]=$(awk -v c="$(cat "$run/load-cpu")" -v d="$DURATION" \
                      'BEGIN { printf "%.0f", c / d * 100 }')
}

mongoc_case() {
    local name=mongoc f
    local uri="mongodb://127.0.0.1:$store_port/bench?maxPoolSize=$MONGOC_POOL"
    where[$name]=$(placement "${nginx_cpus[0]}")
    before[$name]=$(wait_quiet)
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

csvq() { local s=${1//\"/\"\"}; printf '"%s"' "$s"; }

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
    echo "$run_id,$date_utc,$name,$CONCURRENCY,$pool,${threads[$name]},$DURATION,${reqs[$name]},${errs[$name]},${per_s[$name]},${p50[$name]},${p99[$name]},${vs_mongoc[$name]},${store_pct[$name]},${nginx_pct[$name]},${load_pct[$name]},${client_us[$name]},${store_us[$name]},${others[$name]},${before[$name]},$(csvq "${busy[$name]}"),$(csvq "${where[$name]}"),$nproc,$(csvq "$cpu_model"),$kernel,$nginx_version,$(csvq "$store_version"),$libmongoc_version,$wrk_version,$commit,$(csvq "$cmd")" >> "$RESULTS"
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
