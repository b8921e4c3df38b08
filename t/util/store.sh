#!/usr/bin/env bash
# Starts or stops the embedded store: FerretDB with its SQLite backend.
#
#   t/util/store.sh start DIR PORT [FERRETDB FLAGS...]
#                                    data, log and pid file in DIR
#   t/util/store.sh stop DIR         (kill DIR: SIGKILL, as a crash)
#   t/util/store.sh free-port        prints a free TCP port on 127.0.0.1
set -euo pipefail

FERRETDB_VERSION=${FERRETDB_VERSION:-v1.24.2}
FERRETDB=${FERRETDB:-${XDG_CACHE_HOME:-$HOME/.cache}/msgbus/ferretdb-$FERRETDB_VERSION/ferretdb}

port_open() {
    perl -MIO::Socket::INET -e \
        'exit(IO::Socket::INET->new(PeerAddr => "127.0.0.1", PeerPort => $ARGV[0], Timeout => 1) ? 0 : 1)' "$1"
}

case ${1:-} in
start)
    dir=$2 port=$3
    shift 3
    mkdir -p "$dir/data"
    dir=$(cd "$dir" && pwd)
    if [ -f "$dir/ferretdb.pid" ] && kill -0 "$(cat "$dir/ferretdb.pid")" 2>/dev/null; then
        echo "store: FerretDB already running (pid $(cat "$dir/ferretdb.pid"))"
        exit 0
    fi
    if port_open "$port"; then
        echo "store: 127.0.0.1:$port is taken by another process" >&2
        exit 1
    fi
    [ -x "$FERRETDB" ] || { echo "store: $FERRETDB missing: run 'make deps'" >&2; exit 1; }
    "$FERRETDB" --handler=sqlite --sqlite-url="file:$dir/data/" \
        --listen-addr="127.0.0.1:$port" --state-dir="$dir" \
        --debug-addr=- --telemetry=disable --log-level=warn "$@" \
        > "$dir/ferretdb.log" 2>&1 < /dev/null &
    echo $! > "$dir/ferretdb.pid"
    for _ in $(seq 1 200); do
        if port_open "$port"; then
            echo "store: FerretDB $FERRETDB_VERSION on 127.0.0.1:$port (data in $dir/data)"
            exit 0
        fi
        kill -0 "$(cat "$dir/ferretdb.pid")" 2>/dev/null || break
        sleep 0.1
    done
    echo "store: FerretDB did not start; its log:" >&2
    cat "$dir/ferretdb.log" >&2
    exit 1
    ;;
stop|kill)
    dir=$2
    [ "$1" = kill ] && sig=KILL || sig=TERM
    [ -f "$dir/ferretdb.pid" ] || exit 0
    pid=$(cat "$dir/ferretdb.pid")
    if kill -s $sig "$pid" 2>/dev/null; then
        for _ in $(seq 1 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$dir/ferretdb.pid"
    ;;
free-port)
    perl -MIO::Socket::INET -e \
        'print IO::Socket::INET->new(Listen => 1, LocalAddr => "127.0.0.1", LocalPort => 0)->sockport, "\n"'
    ;;
*)
    echo "usage: $0 start DIR PORT [FLAGS] | stop DIR | kill DIR | free-port" >&2
    exit 2
    ;;
esac
