#!/usr/bin/env bash
# The RUM crash that t/util/rum-leaf-fix.py fixes, made to happen at will
# (needs gdb): on a store of its own (t/util/store.sh, data in DIR), a
# collection with msgbus's unique (p_q, k) and 2000 documents of one p_q,
# whose term then has a posting tree of one page.  Backend A inserts one
# more document; gdb stops A in entryGetNextItem (its exclusion check has
# read that page and holds only a pin) while a second session inserts
# 6000 more documents of the same p_q, which splits the root; then A goes
# on.  With Debian's rum.so A dies of SIGSEGV in rumDataPageLeafRead; with
# the fixed copy its insert succeeds.
#
#   t/util/rum-split-repro.sh DIR fixed|debian
#
# Says "crash" or "no crash" and leaves DIR (postgresql.log, a core) for
# inspection; t/util/store.sh destroy DIR removes it.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
dir=$1 which=$2
port=$("$top/t/util/store.sh" free-port)
STORE_CORE=1 STORE_FSYNC=off "$top/t/util/store.sh" start "$dir" "$port" > /dev/null
pgp=$(cat "$dir/pg.port")
P=(psql -X -q -At -h 127.0.0.1 -p "$pgp" -U postgres -d postgres)
if [ "$which" = debian ]; then
    "${P[@]}" -c "ALTER SYSTEM SET documentdb.rum_library_load_option = 'none'"
    root=$(cat "$dir/pg.root" 2>/dev/null || echo "$dir")
    runuser -u postgres -- /usr/lib/postgresql/15/bin/pg_ctl -D "$root/pg" -l "$root/postgresql.log" -w -c restart > /dev/null
    head -n1 "$root/pg/postmaster.pid" > "$dir/postgres.pid"  # for store.sh stop
fi
"${P[@]}" -c "SELECT documentdb_api.create_collection('db', 'q')" > /dev/null
"${P[@]}" -c "SELECT documentdb_api_internal.create_indexes_non_concurrently('db',
    '{\"createIndexes\": \"q\", \"indexes\": [{\"key\": {\"p_q\": 1, \"k\": 1}, \"name\": \"p_q_k\", \"unique\": true}]}', true)" > /dev/null
insert() { # insert FROM TO: documents {p_q: "X", k: FROM..TO}
    "${P[@]}" -c "SELECT count(documentdb_api.insert_one('db', 'q',
        ('{\"p_q\": \"X\", \"k\": ' || i || '}')::documentdb_core.bson)) FROM generate_series($1, $2) i" > /dev/null
}
insert 1 2000
fifo=$(mktemp -u /tmp/rum-repro-XXXXXX)
mkfifo "$fifo"
out=$fifo.out
"${P[@]}" < "$fifo" > "$out" 2>&1 &
exec 4> "$fifo"
echo "SELECT pg_backend_pid(); SELECT documentdb_api.insert_one('db', 'q', '{\"p_q\": \"warm\", \"k\": 1}');" >&4
sleep 2
pid=$(head -n1 "$out")
# entryGetNextItem's LockBuffer(entry->buffer, RUM_SHARE) (inlined in
# entryGetItem) at 0x20772 in both rum.so and msgbus_rum.so
read -r base off lib < <(awk '/(msgbus_rum|\/rum)\.so/ && $2 ~ /x/ { split($1, a, "-"); print a[1], $3, $6; exit }' "/proc/$pid/maps")
addr=$(printf '0x%x' $((0x$base - 0x$off + 0x20772)))
echo "backend A $pid runs $lib"
( sleep 3; echo "SELECT documentdb_api.insert_one('db', 'q', '{\"p_q\": \"X\", \"k\": 1000000}');" >&4 ) &
gdb -q -batch -p "$pid" -ex "break *$addr" -ex continue -ex "shell touch $fifo.hit" \
    -ex "shell while [ ! -f $fifo.go ]; do sleep 0.1; done" -ex delete -ex detach > /dev/null 2>&1 &
gdbpid=$!
# the second session's inserts, while A is stopped there
for _ in $(seq 1 600); do
    [ -f "$fifo.hit" ] && break
    sleep 0.1
done
[ -f "$fifo.hit" ] || { echo "A never reached the breakpoint" >&2; kill $gdbpid; exit 1; }
insert 2001 8000
touch "$fifo.go"
wait $gdbpid 2>/dev/null || true
sleep 2
exec 4>&-
rm -f "$fifo" "$out" "$fifo.hit" "$fifo.go"
if grep -q "terminated by signal 11" "$(cat "$dir/pg.root" 2>/dev/null || echo "$dir")/postgresql.log"; then
    echo crash
else
    echo "no crash"
fi
