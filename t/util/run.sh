#!/usr/bin/env bash
# make run / make stop: nginx serving the bus from this tree's module, with
# the embedded store or with any MongoDB.
#
#   t/util/run.sh start     nginx (and, without MONGODB_URI, the store)
#   t/util/run.sh stop      both, whichever runs
#
#   LISTEN        nginx's listen address (default 127.0.0.1:$HTTP_PORT);
#                 nginx's syntax: 8080 alone is every address
#   HTTP_PORT     the port of the default LISTEN (8080)
#   MONGODB_URI   a MongoDB connection string: nginx uses it and no
#                 embedded store is started
#   STORE_PORT    the embedded store's port (27017)
#   RESOLVER      the name servers a mongodb+srv:// string is looked up
#                 with (nginx's resolver syntax; default: the nameserver
#                 lines of /etc/resolv.conf)
#   RUN           where the configuration, logs and data go (.run)
#
# A port that is taken stops it before anything starts, naming the knob
# that moves it; when nginx does not start, the store it started is
# stopped again.
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
run=${RUN:-$top/.run}
nginx=${NGINX_BIN:-/usr/sbin/nginx}
# nginx reads NGINX as the sockets of a binary upgrade (and then stays in
# the foreground)
unset NGINX
module=${MODULE:-$top/.build/default/ngx_http_msgbus_module.so}
store_port=${STORE_PORT:-27017}
listen=${LISTEN:-127.0.0.1:${HTTP_PORT:-8080}}
prefix=$run/nginx
pidfile=$prefix/logs/nginx.pid

say() { echo "msgbus: $*"; }
fail() { echo "msgbus: $*" >&2; exit 1; }

running() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# host and port of an nginx listen address: 8080, host:8080, [::1]:8080
split_listen() {
    local a=$1
    case $a in
        \[*\]:*) host=${a%]:*}; host=${host#[}; port=${a##*]:} ;;
        *:*)     host=${a%:*}; port=${a##*:} ;;
        *)       host=; port=$a ;;
    esac
    [[ $port =~ ^[0-9]+$ ]] && [ "$port" -ge 1 ] && [ "$port" -le 65535 ] \
        || fail "LISTEN=$a: expected PORT, HOST:PORT or [IPv6]:PORT"
}

# bindable HOST PORT: nothing listens there (an empty host: every address)
bindable() {
    perl -MIO::Socket::IP -e '
        my ($h, $p) = @ARGV;
        my $s = IO::Socket::IP->new(Listen => 1, ReuseAddr => 1,
            LocalHost => ($h eq "" ? "0.0.0.0" : $h), LocalPort => $p);
        exit($s ? 0 : 1)' "$1" "$2"
}

# the resolver line a mongodb+srv:// string needs: RESOLVER, else the
# system's name servers (IPv6 ones in brackets, as nginx wants them)
resolver_line() {
    local ns=${RESOLVER:-}
    [[ $1 == mongodb+srv://* ]] || return 0
    [ -n "$ns" ] || ns=$(awk '$1 == "nameserver" { a = $2; if (a ~ /:/) a = "[" a "]"; printf "%s ", a }' /etc/resolv.conf)
    [ -n "${ns// }" ] || fail "MONGODB_URI is a mongodb+srv:// string: name its name servers with RESOLVER= (none in /etc/resolv.conf)"
    echo "resolver $ns;"
}

# render URI: the configuration, with the values substituted verbatim
render() {
    MODULE="$module" URI="$1" LISTEN_AT="$listen" PREFIX="$prefix" RESOLVER_LINE="$2" perl -pe '
        s/\@MODULE\@/$ENV{MODULE}/g; s/\@MONGODB_URI\@/$ENV{URI}/g;
        s/\@LISTEN\@/$ENV{LISTEN_AT}/g; s/\@RUN\@/$ENV{PREFIX}/g;
        s/\@RESOLVER\@/$ENV{RESOLVER_LINE}/g' "$top/t/util/run.conf"
}

start() {
    local host port uri started_store= reload=
    [ -f "$module" ] || fail "$module missing: make build"
    split_listen "$listen"

    if running "$pidfile"; then
        reload=1
        [ "$(cat "$prefix/listen" 2>/dev/null)" = "$listen" ] || bindable "$host" "$port" \
            || fail "$listen is taken by another process: choose another address with make run LISTEN=${host:+$host:}$((port + 1))"
    elif ! bindable "$host" "$port"; then
        fail "$listen is taken by another process: choose another address with make run LISTEN=${host:+$host:}$((port + 1))"
    fi

    if [ -n "${MONGODB_URI:-}" ]; then
        uri=$MONGODB_URI
        [[ $uri =~ ^mongodb(\+srv)?:// ]] || fail "MONGODB_URI=$uri: expected a mongodb:// or mongodb+srv:// connection string"
        [[ $uri == *\"* || $uri == *\\* ]] && fail "MONGODB_URI: a connection string has no \" or \\"
    else
        if ! running "$run/store/ferretdb.pid"; then
            bindable 127.0.0.1 "$store_port" \
                || fail "127.0.0.1:$store_port is taken by another process. If it is a MongoDB, use it: make run MONGODB_URI=mongodb://127.0.0.1:$store_port/msgbus; or move the embedded store: make run STORE_PORT=$((store_port + 1))"
            started_store=1
        fi
        "$top/t/util/store.sh" start "$run/store" "$store_port"
        uri="mongodb://127.0.0.1:$store_port/msgbus"
    fi

    mkdir -p "$prefix/conf" "$prefix/logs"
    local resolver
    resolver=$(resolver_line "$uri")
    render "$uri" "$resolver" > "$prefix/conf/nginx.conf.new"
    local out ok=0
    out=$("$nginx" -t -q -p "$prefix/" -c conf/nginx.conf.new 2>&1) || ok=$?
    if [ $ok = 0 ]; then
        mv "$prefix/conf/nginx.conf.new" "$prefix/conf/nginx.conf"
        # (into a file: the daemon keeps its output open, a pipe's reader
        # would wait for it)
        "$nginx" -p "$prefix/" -c conf/nginx.conf ${reload:+-s reload} \
            > "$prefix/logs/start.out" 2>&1 || ok=$?
        out=$(cat "$prefix/logs/start.out")
    fi
    if [ $ok != 0 ]; then
        rm -f "$prefix/conf/nginx.conf.new"
        [ -z "$started_store" ] || "$top/t/util/store.sh" stop "$run/store"
        echo "$out" | grep -v '^nginx: \[emerg\] bind() to .* failed' | tail -n 3 >&2
        fail "nginx did not start${started_store:+; the store it needed was stopped again}"
    fi
    echo "$listen" > "$prefix/listen"

    local url=http://${host:-127.0.0.1}:$port
    [ "$host" != 0.0.0.0 ] && [ "$host" != "::" ] || url=http://127.0.0.1:$port
    [[ $host != *:* ]] || url=http://[$host]:$port
    # the first ping: nginx is up and the store answers
    local code= i
    for i in $(seq 1 50); do
        code=$(curl -s -o /dev/null -w '%{http_code}' "$url/v2/ping" || true)
        [ "$code" != 204 ] || break
        # a store that still refuses after 3 s: the user is told now
        [ "$code" != 503 ] || [ "$i" -lt 15 ] || break
        sleep 0.2
    done
    say "$url/v2/ (store ${uri%%\?*}; ${reload:+reloaded; }config $prefix/conf/nginx.conf, logs $prefix/logs/; make stop stops it)"
    if [ "$code" != 204 ]; then
        echo "msgbus: nginx runs but GET /v2/ping answers ${code:-nothing}: the store at ${uri%%\?*} does not answer; the error log says:" >&2
        grep '\[error\]' "$prefix/logs/error.log" | tail -n 2 >&2 || true
    fi
}

stop() {
    if running "$pidfile"; then
        "$nginx" -p "$prefix/" -c conf/nginx.conf -s quit 2>/dev/null || true
        local _
        for _ in $(seq 1 50); do [ -f "$pidfile" ] || break; sleep 0.1; done
    fi
    [ ! -d "$run/store" ] || "$top/t/util/store.sh" stop "$run/store"
    say "stopped"
}

case ${1:-} in
    start) start ;;
    stop) stop ;;
    *) echo "usage: $0 start | stop" >&2; exit 2 ;;
esac
