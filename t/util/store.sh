#!/usr/bin/env bash
# Starts or stops the embedded store: FerretDB v2 speaking the MongoDB
# protocol, in front of a private PostgreSQL 15 cluster with DocumentDB
# (built by t/util/store-build.sh, 'make deps').
#
#   t/util/store.sh start DIR PORT [--user NAME:PASSWORD] [FERRETDB FLAGS...]
#         the cluster, logs and pid files in DIR; FerretDB on 127.0.0.1:PORT,
#         PostgreSQL on a free port of its own (DIR/pg.port).  --user: with
#         authentication on (SCRAM-SHA-256) and that user made in the
#         database "admin"; without: --no-auth.
#   t/util/store.sh stop DIR      both stopped cleanly; the data stay
#   t/util/store.sh kill DIR      SIGKILL to FerretDB and PostgreSQL, as a crash
#   t/util/store.sh destroy DIR   stopped, and its data removed (DIR too)
#   t/util/store.sh cpu DIR       CPU seconds the store has used so far:
#                                 FerretDB, PostgreSQL's postmaster and every
#                                 backend, live or ended (for benchmarks: take
#                                 it before and after)
#   t/util/store.sh pids DIR      FerretDB's pid, then PostgreSQL's postmaster
#   t/util/store.sh free-port     a free TCP port on 127.0.0.1
#
# A new cluster is a copy of a template cluster in the cache (made once:
# initdb and CREATE EXTENSION documentdb take seconds).  STORE_FSYNC=off
# (make test) trades durability after an OS crash for speed.
set -euo pipefail

# The sanitizers are nginx's (make test-asan preloads them for the suite):
# PostgreSQL started under them hangs.
unset LD_PRELOAD ASAN_OPTIONS UBSAN_OPTIONS

top=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=t/util/store-env.sh
. "$top/t/util/store-env.sh"

port_open() {
    perl -MIO::Socket::INET -e \
        'exit(IO::Socket::INET->new(PeerAddr => "127.0.0.1", PeerPort => $ARGV[0], Timeout => 1) ? 0 : 1)' "$1"
}

free_port() {
    perl -MIO::Socket::INET -e \
        'print IO::Socket::INET->new(Listen => 1, LocalAddr => "127.0.0.1", LocalPort => 0)->sockport, "\n"'
}

# PostgreSQL refuses to run as root: as root, its programs run as postgres
as_pg() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

pg_owner() { # pg_owner PATH...: the cluster's files belong to the user running it
    [ "$(id -u)" = 0 ] && chown -R postgres:postgres "$@"
    return 0
}

# running PID: the process exists and is not a zombie waiting for init to
# reap it (init can be slow to, in a container)
running() {
    local st
    st=$(sed -n 's/^[0-9]* ([^)]*) \(.\).*/\1/p' "/proc/$1/stat" 2>/dev/null) || return 1
    [ -n "$st" ] && [ "$st" != Z ]
}

alive() { [ -f "$1" ] && running "$(cat "$1")"; }

# the settings of every cluster (port and durability are added at start)
base_conf() {
    cat <<EOF
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
shared_preload_libraries = 'pg_cron,pg_documentdb_core,pg_documentdb'
cron.database_name = 'postgres'
# DocumentDB's jobs (TTL expiry, index builds) in background workers: with
# connections pg_cron would go through 'localhost', and this cluster
# listens on 127.0.0.1 only
cron.use_background_workers = on
max_worker_processes = 16
cron.log_run = off
cron.log_statement = off
documentdb.enableUserCrud = true
documentdb.maxUserLimit = 100
# Debian 12's pg_cron 1.4 takes cron syntax only: a schedule under 60 s
# fails CREATE EXTENSION ("invalid schedule")
documentdb.indexBuildScheduleInSec = 60
# A compound index as one composite term per document (p_q and k
# together) rather than one term per field: with a term per field, every
# message of a queue shares the p_q term, whose long posting tree the RUM
# access method (Debian's rum 1.3.13) misreads under concurrent writes
# (backends crash in rumDataPageLeafRead).
documentdb.defaultUseCompositeOpClass = on
# RUM from t/util/store-build.sh: Debian's rum.so 1.3.13 with upstream's
# fix for a crash (rum issue #144, fixed in 1.3.15) patched in, as
# pg_documentdb_extended_rum.  The crash: a backend or autovacuum dies of
# SIGSEGV in rumDataPageLeafRead <- scanPage <- entryGetNextItem <-
# entryGetItem <- scanGetItemRegular <- rumgettuple <- GetOneTupleCore <-
# index_getnext_slot <- ExecInsertIndexTuples, running
# documentdb_api.insert or .update: the exclusion check of a unique index
# (DocumentDB's unique (p_q, k) keeps a term per field, so p_q's term has
# a posting entry for every message of the queue).  A scan keeps the
# posting tree's page pinned between reads; while the tree has one page,
# that page is its root, and a concurrent insert that splits the root
# turns it into an internal page (in the core: flags RUM_DATA without
# RUM_LEAF, maxoff 2), which scanPage then decodes as leaf items.  Seen in
# 2 of 6 runs of t/024 and t/031 (16 concurrent posters, concurrent
# claims); after the crash and recovery, backends spun in rumFindLeafPage
# and autovacuum crashed on the index.  With the fix: no crash in 10 runs;
# t/util/rum-split-repro.sh makes that interleaving happen at will (Debian's
# rum.so: SIGSEGV; this one: the insert succeeds).
documentdb.rum_library_load_option = 'require_documentdb_extended_rum'
# DocumentDB makes a unique index an exclusion constraint: two inserts of
# one key at once wait for each other until the deadlock check (after
# deadlock_timeout, 1 s by default) fails one.  MongoDB answers such a
# loser at once with a duplicate key; a short timeout comes near that.
deadlock_timeout = 20ms
logging_collector = off
log_min_messages = warning
# DocumentDB logs each collection it creates at LOG level, a rank above
# ERROR: one line each, without the CONTEXT and STATEMENT lines
log_error_verbosity = terse
log_min_error_statement = panic
EOF
}

# The template: an initialised cluster with the extension created, made
# once per build of DocumentDB (store-build.sh removes it on a rebuild).
template() {
    local t=$STORE_CACHE/template
    [ -f "$t/.ready" ] && return 0
    [ -x "$PGBIN/initdb" ] && [ -x "$FERRETDB" ] \
        || { echo "store: the store is not built: run 'make deps'" >&2; return 1; }
    exec 9> "$STORE_CACHE/template.lock"
    flock 9
    [ -f "$t/.ready" ] && return 0
    echo "store: making the template cluster (once)"
    # made where the user postgres can reach (the cache may be in a private
    # home), then kept in the cache
    local work
    work=$(mktemp -d /tmp/msgbus-template-XXXXXX)
    chmod 755 "$work"
    local n=$work/pg
    mkdir -p "$n"
    pg_owner "$n"
    chmod 700 "$n"
    as_pg "$PGBIN/initdb" -D "$n" -U postgres -E UTF8 --locale=C.UTF-8 \
        --auth-local=trust --auth-host=trust > "$STORE_CACHE/logs/initdb.log" 2>&1 \
        || { cat "$STORE_CACHE/logs/initdb.log" >&2; rm -rf "$work"; return 1; }
    echo "include_if_exists = 'msgbus.conf'" >> "$n/postgresql.conf"
    local port
    port=$(free_port)
    { base_conf; echo "port = $port"; } > "$n/msgbus.conf"
    touch "$work/template.log"
    pg_owner "$n/msgbus.conf" "$work/template.log"
    local ok=0
    as_pg "$PGBIN/pg_ctl" -D "$n" -l "$work/template.log" -w -t 60 start > /dev/null || ok=$?
    [ $ok != 0 ] || PGOPTIONS=--client-min-messages=warning as_pg "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" \
        -U postgres -d postgres -c 'CREATE EXTENSION IF NOT EXISTS documentdb CASCADE' || ok=$?
    as_pg "$PGBIN/pg_ctl" -D "$n" -w -t 60 stop > /dev/null 2>&1 || true
    if [ $ok != 0 ]; then
        cat "$work/template.log" >&2
        rm -rf "$work"
        return 1
    fi
    rm -f "$n/msgbus.conf"
    touch "$n/.ready"
    rm -rf "$t"
    cp -a "$n" "$t"
    rm -rf "$work"
}

# Where DIR's cluster and its log really are: DIR itself, or, when the
# user running PostgreSQL cannot reach DIR (a parent folder is private,
# such as root's home), a folder in /tmp named in DIR/pg.root, with DIR/pg
# and DIR/postgresql.log links to it for people.
pg_root() {
    cat "$1/pg.root" 2>/dev/null || echo "$1"
}

pg_start() {
    local dir=$1 root pg
    alive "$dir/postgres.pid" && return 0
    root=$(pg_root "$dir")
    pg=$root/pg
    if [ ! -f "$pg/PG_VERSION" ]; then
        template
        if [ "$root" = "$dir" ] && ! as_pg test -x "$dir"; then
            root=$(mktemp -d /tmp/msgbus-store-XXXXXX)
            chmod 711 "$root"
            echo "$root" > "$dir/pg.root"
            pg=$root/pg
        fi
        rm -rf "$pg"
        cp -a "$STORE_CACHE/template" "$pg"
        rm -f "$pg/.ready"
        if [ "$root" != "$dir" ]; then
            ln -sfn "$pg" "$dir/pg"
            ln -sfn "$root/postgresql.log" "$dir/postgresql.log"
        fi
    fi
    local port
    port=$(cat "$dir/pg.port" 2>/dev/null || true)
    if [ -z "$port" ] || port_open "$port"; then
        port=$(free_port)
        echo "$port" > "$dir/pg.port"
    fi
    {
        base_conf
        echo "port = $port"
        if [ "${STORE_FSYNC:-on}" = off ]; then
            echo "fsync = off"
            echo "synchronous_commit = off"
            echo "full_page_writes = off"
        fi
    } > "$pg/msgbus.conf"
    touch "$root/postgresql.log"
    pg_owner "$pg" "$root/postgresql.log"
    as_pg "$PGBIN/pg_ctl" -D "$pg" -l "$root/postgresql.log" -w -t 120 ${STORE_CORE:+-c} start > "$dir/pg_ctl.log" 2>&1 \
        || { echo "store: PostgreSQL did not start; its log:" >&2; tail -n 20 "$root/postgresql.log" >&2; return 1; }
    head -n1 "$pg/postmaster.pid" > "$dir/postgres.pid"
}

ferretdb_start() { # ferretdb_start DIR PORT AUTH FLAGS...
    local dir=$1 port=$2 auth=$3
    shift 3
    mkdir -p "$dir/state"
    "$FERRETDB" --postgresql-url="postgres://postgres@127.0.0.1:$(cat "$dir/pg.port")/postgres" \
        --listen-addr="127.0.0.1:$port" "$auth" --state-dir="$dir/state" \
        --debug-addr=- --telemetry=disable --log-level=warn "$@" \
        >> "$dir/ferretdb.log" 2>&1 < /dev/null &
    echo $! > "$dir/ferretdb.pid"
    local _
    for _ in $(seq 1 300); do
        port_open "$port" && return 0
        alive "$dir/ferretdb.pid" || break
        sleep 0.1
    done
    echo "store: FerretDB did not start; its log:" >&2
    tail -n 30 "$dir/ferretdb.log" >&2
    return 1
}

stop_pid() { # stop_pid PIDFILE SIGNAL
    local pid
    [ -f "$1" ] || return 0
    pid=$(cat "$1")
    if kill -s "$2" "$pid" 2>/dev/null; then
        local _
        for _ in $(seq 1 100); do
            running "$pid" || break
            sleep 0.05
        done
        kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$1"
}

case ${1:-} in
start)
    [ $# -ge 3 ] || { echo "usage: $0 start DIR PORT [--user NAME:PASSWORD] [FLAGS]" >&2; exit 2; }
    dir=$2 port=$3
    shift 3
    user=
    if [ "${1:-}" = --user ]; then user=$2; shift 2; fi
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    if alive "$dir/ferretdb.pid"; then
        echo "store: already running (FerretDB pid $(cat "$dir/ferretdb.pid"))"
        exit 0
    fi
    if port_open "$port"; then
        echo "store: 127.0.0.1:$port is taken by another process" >&2
        exit 1
    fi
    [ -x "$FERRETDB" ] || { echo "store: $FERRETDB missing: run 'make deps'" >&2; exit 1; }
    # the fixed RUM that base_conf makes DocumentDB require (store-build.sh)
    rum=$("$(pg_config_path)" --pkglibdir)/pg_documentdb_extended_rum.so
    [ -f "$rum" ] || { echo "store: $rum missing: run 'make deps'" >&2; exit 1; }
    pg_start "$dir"
    if [ -n "$user" ] && [ ! -f "$dir/user.made" ]; then
        # a user is made through the MongoDB protocol, once: FerretDB without
        # authentication, createUser, then FerretDB again with it
        ferretdb_start "$dir" "$port" --no-auth "$@"
        /usr/bin/python3 - "$port" "$user" <<'_PY_'
import sys, pymongo
port, user = sys.argv[1], sys.argv[2]
name, pwd = user.split(':', 1)
c = pymongo.MongoClient('mongodb://127.0.0.1:%s/' % port, serverSelectionTimeoutMS=10000)
c.admin.command('createUser', name, pwd=pwd, roles=[{'role': 'readWriteAnyDatabase', 'db': 'admin'}])
_PY_
        touch "$dir/user.made"
        stop_pid "$dir/ferretdb.pid" TERM
    fi
    ferretdb_start "$dir" "$port" "$([ -n "$user" ] && echo --auth || echo --no-auth)" "$@"
    echo "store: FerretDB $FERRETDB_VERSION on 127.0.0.1:$port, PostgreSQL $PG_MAJOR + DocumentDB on 127.0.0.1:$(cat "$dir/pg.port") (data in $(pg_root "$dir")/pg)"
    ;;
stop)
    dir=$2
    stop_pid "$dir/ferretdb.pid" TERM
    if alive "$dir/postgres.pid"; then
        as_pg "$PGBIN/pg_ctl" -D "$(pg_root "$dir")/pg" -w -t 60 -m fast stop > /dev/null || true
    fi
    rm -f "$dir/postgres.pid"
    ;;
kill)
    dir=$2
    stop_pid "$dir/ferretdb.pid" KILL
    if [ -f "$dir/postgres.pid" ]; then
        # the postmaster and its children at once: a restart then finds the
        # shared memory free and recovers from the WAL, as after a crash
        pids="$(cat "$dir/postgres.pid") $(pgrep -P "$(cat "$dir/postgres.pid")" | tr '\n' ' ')"
        kill -9 $pids 2>/dev/null || true
        for p in $pids; do
            for _ in $(seq 1 100); do
                running "$p" || break
                sleep 0.05
            done
        done
        # a dead postmaster can stay a zombie until init reaps it, and
        # PostgreSQL takes a zombie's pid in its lock file for a live one
        rm -f "$dir/postgres.pid" "$(pg_root "$dir")/pg/postmaster.pid"
    fi
    ;;
destroy)
    dir=$2
    "$0" stop "$dir"
    root=$(pg_root "$dir")
    [ "$root" = "$dir" ] || rm -rf "$root"
    rm -rf "$dir"
    ;;
cpu)
    dir=$2
    # utime+stime of each process, plus cutime+cstime: what its children
    # used until they ended and were reaped (backends, by the postmaster)
    pm=$(cat "$dir/postgres.pid")
    { cat "$dir/ferretdb.pid"; echo "$pm"; pgrep -P "$pm"; } | while read -r p; do
        cat "/proc/$p/stat" 2>/dev/null || true
    done | sed 's/^.*) //' | awk -v hz="$(getconf CLK_TCK)" \
        '{ t += $12 + $13 + $14 + $15 } END { printf "%.2f\n", t / hz }'
    ;;
pids)
    dir=$2
    cat "$dir/ferretdb.pid" "$dir/postgres.pid"
    ;;
free-port)
    free_port
    ;;
*)
    echo "usage: $0 start DIR PORT [--user NAME:PASSWORD] [FLAGS] | stop DIR | kill DIR | free-port" >&2
    exit 2
    ;;
esac
