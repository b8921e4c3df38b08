#!/usr/bin/env bash
# nginx worker CPU per reply of the seed's `get` workload (issue 18): msgbus
# next to static nginx answering the same bytes, one request per
# connection, side by side in one run.
#
#   bench/getcpu.sh                       (make build first)
#   RATE=500 DURATION=10 ROUNDS=3 bench/getcpu.sh
#   MODULES="base=/tmp/base.so new=.build/default/ngx_http_msgbus_module.so" \
#       bench/getcpu.sh                   two builds, interleaved
#
# One private store (t/util/store.sh) and, per build of the module, one
# nginx (2 workers, access_log off, the seed's msgbus_mongodb options and
# 4 partitions: bench/seed/run.py's nginx_conf), on free ports; files in
# bench/results/tmp/getcpu/.  The queue "page" of project "bench" gets 10
# small messages (bench/seed/run.py's prime).  Each nginx also has a
# location answering msgbus's page from `return 200 '...'`: "static" is
# that location of the first nginx.  Each round measures every build
# (GET /v2/queues/page/messages?limit=7&echo=true with Client-ID and
# X-Project-Id), then static: httperf at RATE connections/s for DURATION
# s, one call each, pinned to LOAD_CPU, after a warm-up of WARMUP s.
# Printed per measurement and as means: replies, errors, the workers'
# CPU seconds (their run time from /proc/PID/schedstat, exact, not
# sampled) and CPU microseconds per 2xx reply, in all and in user space
# (utime's share of utime + stime, /proc/PID/stat: sampled at ticks);
# the ratio of each build's mean to static's.  CPU time is robust to
# other load on the machine, not immune (the kernel's share least):
# compare builds in one run, interleaved; each measurement first waits
# up to QUIET_WAIT s for a second in which the rest of the machine uses
# at most QUIET_PCT % of a CPU.
#
# CALLGRIND=N: then, per build and for static, nginx with one worker
# (no master) under valgrind's callgrind, collecting inside
# ngx_process_events_and_timers only, answers N requests (httperf at 40/s
# after 5 to warm it): the user-space instructions per reply, the same
# from run to run whatever else the machine does (the kernel's work is
# not in them).  Its profile: bench/results/tmp/getcpu/callgrind-NAME.out
# (callgrind_annotate --inclusive=yes FILE).  ROUNDS=0: this alone.
#
# Settings (environment): RATE=500 DURATION=10 WARMUP=2 ROUNDS=2
#   LOAD_CPU=1 WORKERS=2 QUIET_PCT=10 QUIET_WAIT=10
#   MODULES="NAME=PATH ..." (default: msgbus=.build/default/...so)
#   PERF=1: perf record (PERF_OPTS, default -g) of the workers during the
#   first round's measurements: bench/results/tmp/getcpu/perf-NAME.data;
#   read with perf report --no-children -i FILE
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/bench/lib.sh"
cd "$top"

RATE=${RATE:-500}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
ROUNDS=${ROUNDS:-2}
LOAD_CPU=${LOAD_CPU:-1}
WORKERS=${WORKERS:-2}
MODULES=${MODULES:-msgbus=$top/.build/default/ngx_http_msgbus_module.so}
QUIET_PCT=${QUIET_PCT:-10}
QUIET_WAIT=${QUIET_WAIT:-10}
CALLGRIND=${CALLGRIND:-}
PERF=${PERF:-}
PERF_OPTS=${PERF_OPTS:--g}
NGINX=${NGINX:-/usr/sbin/nginx}

run=$top/bench/results/tmp/getcpu
client_id=3381af92-2b9e-11e3-b191-71861300734c
page_path="/v2/queues/page/messages?limit=7&echo=true"

say() { echo "getcpu: $*"; }
die() { echo "getcpu: $*" >&2; exit 1; }

command -v httperf >/dev/null || die "httperf missing (bench/seed/run.sh installs it)"

names=()
declare -A dir port pid workers
for m in $MODULES; do
    name=${m%%=*}
    so=${m#*=}
    [ -f "$so" ] || die "$so missing: make build"
    [ "$name" != static ] || die "\"static\" names the limit, not a build"
    names+=("$name")
    dir[$name]=$run/nginx-$name
    mkdir -p "${dir[$name]}/conf" "${dir[$name]}/logs"
    cp "$so" "${dir[$name]}/ngx_http_msgbus_module.so"
done

stop_all() {
    local n
    for n in "${names[@]}"; do
        NGINX=$NGINX bench_nginx_stop_dir "${dir[$n]}" "${pid[$n]:-}"
    done
    timeout 30 t/util/store.sh stop "$run/store" > /dev/null 2>&1 || true
}

# bench_nginx_stop wants RUN/nginx; here each nginx has a folder of its own
bench_nginx_stop_dir() {
    local d=$1 p=$2 i
    [ -n "$p" ] && kill -0 "$p" 2>/dev/null || return 0
    kill -QUIT "$p" 2>/dev/null || true
    for i in $(seq 50); do
        kill -0 "$p" 2>/dev/null || break
        sleep 0.1
    done
    kill -9 "$p" 2>/dev/null || true
}
trap stop_all EXIT

# what a run that was killed left
for d in "$run"/nginx-*; do
    [ -s "$d/logs/nginx.pid" ] && bench_nginx_stop_dir "$d" "$(cat "$d/logs/nginx.pid")"
done
timeout 30 t/util/store.sh stop "$run/store" > /dev/null 2>&1 || true
rm -rf "$run/store"

store_port=$(t/util/store.sh free-port)
timeout 120 t/util/store.sh start "$run/store" "$store_port" > /dev/null
uri="mongodb://127.0.0.1:$store_port/bench?maxPoolSize=32&waitQueueTimeoutMS=5000"

# nginx.conf as bench/seed/run.py's nginx_conf; $1 the build, $2 the
# static location, $3 extra main directives (callgrind's)
render() {
    local d=${dir[$1]}
    cat > "$d/conf/nginx.conf" <<EOF
load_module $d/ngx_http_msgbus_module.so;
${3:-worker_processes $WORKERS;}
worker_rlimit_nofile $(ulimit -Hn);
error_log $d/logs/error.log warn;
pid $d/logs/nginx.pid;
events {
    worker_connections 16384;
}
http {
    access_log off;
    client_body_temp_path $d/client_body_temp;
    proxy_temp_path $d/proxy_temp;
    fastcgi_temp_path $d/fastcgi_temp;
    uwsgi_temp_path $d/uwsgi_temp;
    scgi_temp_path $d/scgi_temp;
    msgbus_mongodb "$uri";
    msgbus_message_partitions 4;
    open_file_cache max=16;
    server {
        listen 127.0.0.1:${port[$1]} backlog=4096;
$2
        location / {
            msgbus;
        }
    }
}
EOF
}

# the workers of a build's nginx (after a start or a reload: the new ones)
workers_of() {
    local i w
    for i in $(seq 100); do
        w=$(ps -o pid=,args= --ppid "${pid[$1]}" \
            | awk '/worker process/ && !/shutting/ { print $1 }' | sort -n | tr '\n' ' ')
        if [ "$(echo "$w" | wc -w)" = "$WORKERS" ]; then
            echo "$w"
            return
        fi
        sleep 0.1
    done
    die "not $WORKERS nginx workers; see ${dir[$1]}/logs/error.log"
}

for n in "${names[@]}"; do
    port[$n]=$(t/util/store.sh free-port)
    render "$n" ""
    : > "${dir[$n]}/logs/error.log"
    timeout 30 "$NGINX" -p "${dir[$n]}/" -c conf/nginx.conf -e "${dir[$n]}/logs/error.log"
    for _ in $(seq 50); do
        [ -s "${dir[$n]}/logs/nginx.pid" ] && break
        sleep 0.1
    done
    pid[$n]=$(cat "${dir[$n]}/logs/nginx.pid")
    workers_of "$n" > /dev/null
done

first=${names[0]}
base=http://127.0.0.1:${port[$first]}
hdr=(-H "Client-ID: $client_id" -H "X-Project-ID: bench")

# the seed's page: 10 small messages, ttl 12 h (bench/seed/run.py prime)
code=$(timeout 10 curl -s -o /dev/null -w '%{http_code}' -X PUT "${hdr[@]}" "$base/v2/queues/page")
[ "$code" = 201 ] || die "PUT /v2/queues/page answered '$code'"
msgs=$(for i in $(seq 10); do printf '{"body": {"event": %d}, "ttl": 43200}' "$i"; done \
       | sed 's/}{/}, {/g')
code=$(timeout 10 curl -s -o "$run/post.json" -w '%{http_code}' -X POST "${hdr[@]}" \
    -H 'Content-Type: application/json' "$base/v2/queues/page/messages" \
    -d "{\"messages\": [$msgs]}")
[ "$code" = 201 ] || die "POST of the page answered '$code': $(cat "$run/post.json")"

# ages of 2 digits, as in a long run (the page's size then holds 90 s)
sleep 10
timeout 10 curl -s -D "$run/msgbus.headers" -o "$run/page.json" "${hdr[@]}" "$base$page_path"
grep -q '^HTTP/1.1 200' "$run/msgbus.headers" || die "GET $page_path: $(head -1 "$run/msgbus.headers")"
grep -q "[\\\\'\$]" "$run/page.json" && die "the page has a quote, backslash or \$"

for n in "${names[@]}"; do
    render "$n" "
        location = /static/get {
            default_type application/json;
            return 200 '$(cat "$run/page.json")';
        }"
    timeout 30 "$NGINX" -p "${dir[$n]}/" -c conf/nginx.conf -e "${dir[$n]}/logs/error.log" -s reload
done
sleep 0.5
for n in "${names[@]}"; do
    workers[$n]=$(workers_of "$n")
    timeout 10 curl -s -o "$run/$n.json" "${hdr[@]}" "http://127.0.0.1:${port[$n]}$page_path"
    cmp -s <(sed 's/"age": [0-9]*/"age": N/g' "$run/page.json") \
           <(sed 's/"age": [0-9]*/"age": N/g' "$run/$n.json") \
        || die "$n answers another page than $first (see $run/$n.json)"
done
timeout 10 curl -s -o "$run/static.json" "$base/static/get"
cmp -s "$run/page.json" "$run/static.json" || die "/static/get does not answer the page's bytes"
say "page $(wc -c < "$run/page.json") bytes; store $store_port; builds: $MODULES"
say "rate $RATE/s for ${DURATION}s, $ROUNDS rounds"

# httperf at RATE for $2 s against build $1's nginx, path $3
load() {
    timeout -s KILL $(($2 + 40)) taskset -c "$LOAD_CPU" \
        httperf --server 127.0.0.1 --port "${port[$1]}" --uri "$3" \
        --rate "$RATE" --num-conns $((RATE * $2)) --num-calls 1 --timeout 5 \
        --add-header "Client-ID: $client_id\\nX-Project-ID: bench\\n" 2>&1
}

# "run utime stime" of processes, in seconds: their run time
# (schedstat) and its ticks in user and kernel space (stat)
cpu_of() {
    local p
    for p in "$@"; do
        echo "$(cut -d' ' -f1 "/proc/$p/schedstat") $(sed 's/^.*) //' "/proc/$p/stat")"
    done | awk -v t="$bench_tck" '{ r += $1; u += $13; s += $14 }
                                  END { printf "%.6f %.2f %.2f\n", r / 1e9, u / t, s / t }'
}

# one measurement: $1 its label, $2 the build, $3 the path; prints
# "label replies 2xx errors cpu_s us_per_reply user_us_per_reply busy%"
measure() {
    local label=$1 n=$2 path=$3 perf_pid= c0 c1 out busy
    if [ "$WARMUP" != 0 ]; then
        load "$n" "$WARMUP" "$path" > /dev/null
    fi
    busy=$(bench_wait_quiet "$QUIET_PCT" "$QUIET_WAIT" 2>/dev/null)
    if [ -n "$PERF" ] && [ "$round" = 1 ]; then
        # shellcheck disable=SC2086
        perf record -q $PERF_OPTS -o "$run/perf-$label.data" \
            -p "$(echo ${workers[$n]} | tr ' ' ',')" > "$run/perf-$label.log" 2>&1 &
        perf_pid=$!
        sleep 0.5
    fi
    # shellcheck disable=SC2086
    c0=$(cpu_of ${workers[$n]})
    out=$(load "$n" "$DURATION" "$path")
    # shellcheck disable=SC2086
    c1=$(cpu_of ${workers[$n]})
    if [ -n "$perf_pid" ]; then
        kill -INT "$perf_pid"
        wait "$perf_pid" || true
    fi
    echo "$out" > "$run/httperf-$label.out"
    echo "$out" | awk -v c0="$c0" -v c1="$c1" -v label="$label" -v busy="$busy" '
        /^Total: / { replies = $5 }
        /^Reply status: / { ok = $4; sub(/^2xx=/, "", ok) }
        /^Errors: total / { errors = $3 }
        END { split(c0, a, " "); split(c1, b, " ")
              cpu = b[1] - a[1]; ticks = b[2] - a[2] + b[3] - a[3]
              u = ticks > 0 ? cpu * (b[2] - a[2]) / ticks : 0
              printf "%s %d %d %d %.3f %.1f %.1f %d\n", label, replies, ok, errors,
                     cpu, (ok > 0 ? cpu / ok * 1e6 : 0), (ok > 0 ? u / ok * 1e6 : 0),
                     busy }'
}

results=$run/results.txt
: > "$results"
for round in $(seq "$ROUNDS"); do
    for n in "${names[@]}"; do
        measure "$n" "$n" "$page_path" | tee -a "$results"
    done
    measure static "$first" /static/get | tee -a "$results"
done | awk '{ printf "%-10s replies %6d 2xx %6d errors %4d cpu %7.3f s %6.1f us/reply" \
                      " (user %5.1f), others busy before %d%%\n", $1, $2, $3, $4, $5, $6, $7, $8 }'

awk '{ cpu[$1] += $5; ok[$1] += $3; user[$1] += $7 * $3 / 1e6
       if (!($1 in seen)) { seen[$1] = 1; order[n++] = $1 } }
     END {
         s = ok["static"] ? cpu["static"] / ok["static"] * 1e6 : 0
         for (i = 0; i < n; i++) {
             k = order[i]; us = ok[k] ? cpu[k] / ok[k] * 1e6 : 0
             printf "mean %-10s %6.1f us/reply (user %5.1f)", k, us,
                    ok[k] ? user[k] / ok[k] * 1e6 : 0
             if (k != "static" && s > 0) printf "  %.2fx static", us / s
             printf "\n"
         }
     }' "$results"

for n in "${names[@]}"; do
    if grep -qE '\[(alert|emerg|crit|error)\]' "${dir[$n]}/logs/error.log"; then
        say "$n: errors in ${dir[$n]}/logs/error.log"
    fi
done
# CALLGRIND=N: user-space instructions per reply, one worker under
# callgrind; $1 the label, $2 the build, $3 the path
callgrind() {
    local label=$1 n=$2 path=$3 vg out ok ir
    out=$run/callgrind-$label.out
    rm -f "$out" "$out".*
    render "$n" "
        location = /static/get {
            default_type application/json;
            return 200 '$(cat "$run/page.json")';
        }" "worker_processes 1; master_process off; daemon off;"
    valgrind --tool=callgrind --toggle-collect=ngx_process_events_and_timers \
        --callgrind-out-file="$out" \
        "$NGINX" -p "${dir[$n]}/" -c conf/nginx.conf -e "${dir[$n]}/logs/error.log" \
        > "$run/callgrind-$label.log" 2>&1 &
    vg=$!
    for _ in $(seq 100); do
        timeout 5 curl -s -o /dev/null "http://127.0.0.1:${port[$n]}/static/get" && break
        sleep 0.2
    done
    for _ in $(seq 5); do
        timeout 10 curl -s -o /dev/null "${hdr[@]}" "http://127.0.0.1:${port[$n]}$path"
    done
    callgrind_control -z "$vg" > /dev/null 2>&1
    RATE=40 load "$n" $(((CALLGRIND + 39) / 40)) "$path" > "$run/httperf-callgrind-$label.out"
    callgrind_control -d "$vg" > /dev/null 2>&1
    kill -QUIT "$vg"
    wait "$vg" || true
    ok=$(sed -n 's/^Reply status: .*2xx=\([0-9]*\).*/\1/p' "$run/httperf-callgrind-$label.out")
    ir=$(awk '/^(summary|totals):/ { print $2; exit }' "$(ls "$out".* | head -1)")
    awk -v l="$label" -v ok="$ok" -v ir="$ir" 'BEGIN {
        printf "callgrind %-10s %6d replies %9.0f instructions/reply\n", l, ok,
               (ok > 0 ? ir / ok : 0) }'
}

if [ -n "$CALLGRIND" ]; then
    command -v valgrind > /dev/null || die "valgrind missing (apt-get install valgrind)"
    for n in "${names[@]}"; do
        bench_nginx_stop_dir "${dir[$n]}" "${pid[$n]}"
        pid[$n]=
    done
    for n in "${names[@]}"; do
        callgrind "$n" "$n" "$page_path"
    done
    callgrind static "$first" /static/get
fi

exit 0
