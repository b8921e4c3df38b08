# What the bench/*/run.sh scripts share; sourced, with $top set to the
# repository's root.

# The store (t/util/store.sh) is FerretDB in front of a private PostgreSQL
# cluster with the DocumentDB extension: FerretDB translates, PostgreSQL's
# backends do the storage work.  What it costs is the sum of both.

# bench_store_version: what the store is made of, read from its binaries,
# e.g. "FerretDB v2.7.0 + DocumentDB 0.107-0 on PostgreSQL 15.20"
bench_store_version() {
    (
        # shellcheck source=t/util/store-env.sh
        . "$top/t/util/store-env.sh"
        f=$("$FERRETDB" --version 2>/dev/null | sed -n 's/^version: //p')
        control=$("$(pg_config_path)" --sharedir 2>/dev/null)/extension/documentdb.control
        d=$(sed -n "s/^default_version *= *'\\(.*\\)'.*/\\1/p" "$control" 2>/dev/null)
        p=$("$PGBIN/postgres" --version 2>/dev/null | awk '{ print $3 }')
        echo "FerretDB ${f:-?} + DocumentDB ${d:-?} on PostgreSQL ${p:-?}"
    )
}

# bench_store_cpu DIR: CPU seconds the whole store in DIR has used so far:
# FerretDB, the postmaster and every backend, live or ended (take it
# before and after a measurement)
bench_store_cpu() {
    "$top/t/util/store.sh" cpu "$1"
}

# bench_store_pids DIR: the store's processes now, one per line: FerretDB,
# the postmaster, and the postmaster's children (its backends come and go)
bench_store_pids() {
    local pm
    cat "$1/ferretdb.pid"
    pm=$(cat "$1/postgres.pid")
    echo "$pm"
    pgrep -P "$pm" || true
}

# bench_apt PACKAGE...: installs the Debian packages that are missing
bench_apt() {
    local p missing=()
    for p in "$@"; do
        [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)" = "install ok installed" ] \
            || missing+=("$p")
    done
    [ ${#missing[@]} -gt 0 ] || return 0
    echo "bench: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    timeout 900 apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1 || {
        timeout 300 apt-get update -qq
        timeout 900 apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    }
}

# bench_mongoc_ping: builds .build/bench/mongoc_ping (bench/adapter/mongoc_ping.c)
# when missing or older than its source; prints its path
bench_mongoc_ping() {
    local pinger=$top/.build/bench/mongoc_ping src=$top/bench/adapter/mongoc_ping.c
    if [ ! -x "$pinger" ] || [ "$src" -nt "$pinger" ]; then
        mkdir -p "${pinger%/*}"
        # shellcheck disable=SC2046
        timeout 120 gcc -O2 -g -Wall -Wextra -Werror -o "$pinger" "$src" \
            $(pkg-config --cflags --libs libmongoc-1.0) -pthread >&2
        echo "bench: built $pinger" >&2
    fi
    echo "$pinger"
}

# bench_standin: builds .build/bench/msgbus-standin (bench/standin, Go's
# standard library only) when missing or older than its sources; prints
# its path
bench_standin() {
    bench_go_build "$top/.build/bench/msgbus-standin" "$top/bench/standin"
}

# bench_poster: builds bench/post (closed-loop producers) when stale; prints its path
bench_poster() {
    bench_go_build "$top/.build/bench/post" "$top/bench/post"
}

# bench_go_build BIN SRC: go build of SRC into BIN when a source is newer
bench_go_build() {
    local bin=$1 src=$2 f
    local stale=
    [ -x "$bin" ] || stale=1
    for f in "$src"/*.go "$src/go.mod"; do
        [ "$f" -nt "$bin" ] && stale=1
    done
    if [ -n "$stale" ]; then
        mkdir -p "${bin%/*}"
        (cd "$src" && GOFLAGS=-mod=mod timeout 300 go build -o "$bin" .) >&2
        echo "bench: built $bin" >&2
    fi
    echo "$bin"
}

# bench_nginx_conf RUN WORKERS CONNECTIONS URI PORT [LOCATIONS [HTTP]]: prints
# an nginx.conf for msgbus under RUN/nginx (the module copied to RUN), the
# store at URI, listening on 127.0.0.1:PORT, access log off; LOCATIONS go
# before "location /", HTTP directives after "access_log off"
bench_nginx_conf() {
    local run=$1 workers=$2 connections=$3 uri=$4 port=$5 extra=${6:-} http=${7:+$7$'\n'}
    cat <<EOF
load_module $run/ngx_http_msgbus_module.so;

worker_processes $workers;
error_log $run/nginx/logs/error.log warn;
pid $run/nginx/logs/nginx.pid;

events {
    worker_connections $connections;
}

http {
    access_log off;
$http
    client_body_temp_path $run/nginx/client_body_temp;
    proxy_temp_path $run/nginx/proxy_temp;
    fastcgi_temp_path $run/nginx/fastcgi_temp;
    uwsgi_temp_path $run/nginx/uwsgi_temp;
    scgi_temp_path $run/nginx/scgi_temp;

    msgbus_mongodb "$uri";

    server {
        listen 127.0.0.1:$port;
$extra
        location / {
            msgbus;
        }
    }
}
EOF
}

# --- what run.sh scripts that measure with wrk share ------------------------

# bench_stamp: the UTC time that names a run and its results,
# bench/results/<bench>-<stamp>.csv (e.g. adapter-20261126T004026Z.csv)
bench_stamp() {
    date -u +%Y%m%dT%H%M%SZ
}

# bench_facts NGINX: sets nproc, cpu_model, kernel, nginx_version,
# store_version, wrk_version and commit (the module's, "+dirty" when its
# sources have changes) for the results
bench_facts() {
    nproc=$(nproc)
    cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
    kernel=$(uname -r)
    nginx_version=$("$1" -V 2>&1 | sed -n 's/^nginx version: //p')
    store_version=$(bench_store_version)
    wrk_version=$( (wrk -v 2>&1 || true) | awk 'NR == 1 { print $2 }')
    commit=$(git -C "$top" rev-parse --short HEAD 2>/dev/null || echo unknown)
    if [ -n "$(git -C "$top" status --porcelain -- ngx_http_msgbus_module config 2>/dev/null)" ]; then
        commit="$commit+dirty"
    fi
}

# bench_csvq STRING: STRING as a quoted CSV field
bench_csvq() {
    local s=${1//\"/\"\"}
    printf '"%s"' "$s"
}

# bench_nginx_stop RUN PID: stops the nginx ($NGINX) under RUN/nginx (its master
# PID) gracefully, killed after 5 s
bench_nginx_stop() {
    local run=$1 pid=$2 i
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
    timeout 10 "$NGINX" -p "$run/nginx/" -c conf/nginx.conf -s quit \
        2>/dev/null || kill "$pid" 2>/dev/null || true
    for i in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
}

bench_tck=$(getconf CLK_TCK)

# bench_cpu_of PID...: CPU seconds used so far by processes (all their
# threads)
bench_cpu_of() {
    local p s=0
    for p in "$@"; do
        s=$(awk -v s="$s" -v t="$bench_tck" '{ sub(/^.*\) /, ""); printf "%.2f\n", s + ($12 + $13) / t }' "/proc/$p/stat")
    done
    echo "$s"
}

# bench_cpu_now: /proc/stat on one line, "cpuN busy total" for each CPU
# (jiffies; busy is all but idle and iowait)
bench_cpu_now() {
    awk '/^cpu[0-9]/ { t = $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9
                       printf "%s %d %d ", $1, t - $5 - $6, t }
         END { print "" }' /proc/stat
}

# bench_cpu_diff A B [D]: from two bench_cpu_now lines, "cpu0:B cpu1:B"
# (B: that CPU's busy %) or, with D, only the busy jiffies summed over the
# CPUs as % of one CPU over D seconds
bench_cpu_diff() {
    awk -v a="$1" -v b="$2" -v d="${3:-}" -v t="$bench_tck" 'BEGIN {
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

# bench_others_now STORE "PID..." "COMM...": "pid ticks" of every process
# but those measured (the store's processes at the time, the PIDs, and
# the load generators by name)
bench_others_now() {
    local skip
    skip=" $(bench_store_pids "$1" | tr '\n' ' ') $2 "
    { cat /proc/[0-9]*/stat 2>/dev/null || true; } | awk -v skip="$skip" -v comms=" $3 " '{
        pid = $1; comm = $0; sub(/^[^(]*\(/, "", comm); sub(/\) [^)]*$/, "", comm)
        rest = $0; sub(/^.*\) /, "", rest); split(rest, f, " ")
        if (index(skip, " " pid " ") || index(comms, " " comm " ")) next
        print pid, f[12] + f[13]
    }'
}

# bench_others_diff A B D: the CPU of those processes between two
# bench_others_now files over D seconds, % of one CPU (processes that
# ended in between are not counted)
bench_others_diff() {
    awk -v d="$3" -v t="$bench_tck" 'FNR == NR { a[$1] = $2; next }
        { s += $2 - ($1 in a ? a[$1] : 0) }
        END { printf "%.0f\n", s / t / d * 100 }' "$1" "$2"
}

# bench_busy_1s: how busy the machine is over one second, in % of one CPU
# (nothing of a benchmark runs between measurements: that is all other
# work)
bench_busy_1s() {
    local c0 c1
    c0=$(bench_cpu_now)
    sleep 1
    c1=$(bench_cpu_now)
    bench_cpu_diff "$c0" "$c1" 1
}

# bench_wait_quiet PCT WAIT: waits (at most WAIT seconds) for a second in
# which other work uses at most PCT % of one CPU: on a 2-core machine it
# moves the numbers a lot.  Prints the last second's %.
bench_wait_quiet() {
    local b waited=0
    while :; do
        b=$(bench_busy_1s)
        waited=$((waited + 1))
        [ "$b" -le "$1" ] && break
        if [ "$waited" -ge "$2" ]; then
            echo "bench: warning: the machine is busy (${b}% of a CPU used by others)" >&2
            break
        fi
    done
    echo "$b"
}

# bench_timed CPU_OUT COMMAND...: runs COMMAND, writes the CPU seconds it
# and its children used to CPU_OUT; COMMAND's exit status
bench_timed() {
    CPU_OUT=$1 perl -e '
        my $rc = system(@ARGV); my @t = times;
        open my $f, ">", $ENV{CPU_OUT} or die;
        printf $f "%.2f\n", $t[2] + $t[3];
        exit($rc == -1 ? 127 : $rc >> 8);' -- "${@:2}"
}

# bench_wrk_ms P FILE: wrk's percentile P ("50%") in ms, from its
# --latency output ("1.23ms", "456.00us", "1.01s")
bench_wrk_ms() {
    awk -v p="$1" '$1 == p {
        v = $2
        if (v ~ /us$/) { sub(/us$/, "", v); v /= 1000 }
        else if (v ~ /ms$/) { sub(/ms$/, "", v) }
        else if (v ~ /s$/) { sub(/s$/, "", v); v *= 1000 }
        printf "%.3f\n", v
    }' "$2"
}

# bench_wrk_per_s FILE, bench_wrk_requests FILE, bench_wrk_errors FILE:
# requests per second, requests, and errors (non-2xx/3xx answers and
# socket errors) from wrk's output
bench_wrk_per_s() {
    awk '/^Requests\/sec:/ { printf "%.1f", $2 }' "$1"
}

bench_wrk_requests() {
    awk '/ requests in / { print $1 }' "$1"
}

bench_wrk_errors() {
    awk '/Non-2xx or 3xx responses:/ { n += $NF }
         /Socket errors:/ { gsub(/,/, ""); n += $4 + $6 + $8 + $10 }
         END { print n + 0 }' "$1"
}
