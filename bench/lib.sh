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

# bench_nginx_conf RUN WORKERS CONNECTIONS URI PORT [LOCATIONS]: prints an
# nginx.conf for msgbus under RUN/nginx (the module copied to RUN), the store
# at URI, listening on 127.0.0.1:PORT, access log off; LOCATIONS go before
# "location /"
bench_nginx_conf() {
    local run=$1 workers=$2 connections=$3 uri=$4 port=$5 extra=${6:-}
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
