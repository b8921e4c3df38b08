#!/usr/bin/env bash
# A smoke check of msgbus on the stand-in store (bench/standin/README.md):
# starts the stand-in and nginx with the module (2 workers, 4 partitions,
# as bench/seed runs it) on free ports, then drives msgbus with real
# clients:
#
#   - the Zaqar client's scenario (t/util/zaqarclient_scenario.py): queues,
#     metadata, posts, pages, ids, deletes, pop, stats, claims, queue delete
#   - 8 competing claimers, each message in exactly one claim, the store
#     agreeing (t/util/claims.py exclusive)
#   - 4 producers and 2 observers: posting order, markers, nothing lost
#     (t/util/ordering.py)
#   - the seed bench's page: 10 messages posted, a GET of 7 answers them
#   - the status page: no 5xx, and the stand-in named no unknown command
#
#   bench/standin/check.sh          (the module built: make build)
#
# Exits 0 when all holds.  Logs: bench/results/tmp/standin-check/.
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
. bench/lib.sh

NGINX=${NGINX:-/usr/sbin/nginx}
run=$top/bench/results/tmp/standin-check
module=$top/.build/default/ngx_http_msgbus_module.so
[ -f "$module" ] || { echo "standin-check: the module is not built: make build" >&2; exit 1; }
standin=$(bench_standin)

free_port() {
    /usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_port() {
    local i
    for i in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

rm -rf "$run"
mkdir -p "$run/nginx/conf" "$run/nginx/logs"
cp "$module" "$run/"
store_port=$(free_port)
http_port=$(free_port)
uri="mongodb://127.0.0.1:$store_port/bench?maxPoolSize=32&waitQueueTimeoutMS=5000"

standin_pid=
nginx_pid=
stop() {
    if [ -n "$nginx_pid" ]; then
        bench_nginx_stop "$run" "$nginx_pid"
    fi
    if [ -n "$standin_pid" ]; then
        kill "$standin_pid" 2>/dev/null || true
        wait "$standin_pid" 2>/dev/null || true
    fi
}
trap stop EXIT

"$standin" -addr "127.0.0.1:$store_port" > "$run/standin.log" 2>&1 &
standin_pid=$!
wait_port "$store_port" || { echo "standin-check: the stand-in did not start" >&2; cat "$run/standin.log" >&2; exit 1; }

bench_nginx_conf "$run" 2 4096 "$uri" "$http_port" \
    "        location = /msgbus_status { msgbus_status; }" \
    "    msgbus_message_partitions 4;" > "$run/nginx/conf/nginx.conf"
"$NGINX" -p "$run/nginx/" -c conf/nginx.conf -g "daemon off;" > "$run/nginx.log" 2>&1 &
nginx_pid=$!
wait_port "$http_port" || { echo "standin-check: nginx did not start" >&2; cat "$run/nginx.log" >&2; exit 1; }
echo "standin-check: stand-in on 127.0.0.1:$store_port (pid $standin_pid), msgbus on 127.0.0.1:$http_port"

failed=0
step() {
    local what=$1
    shift
    if timeout 300 "$@" > "$run/$what.log" 2>&1; then
        echo "ok - $what"
    else
        echo "not ok - $what (exit $?): tail of $run/$what.log:"
        tail -15 "$run/$what.log" | sed 's/^/    /'
        failed=1
    fi
}

step ping bash -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:$http_port/v2/ping)\" = 204 ]"
step zaqarclient /usr/bin/python3 t/util/zaqarclient_scenario.py "http://127.0.0.1:$http_port" check-zaqarclient
step claims-exclusive /usr/bin/python3 t/util/claims.py --port "$http_port" --mongodb "$uri" \
    --project check-claims --queue exclusive --messages 500 --claimers 8 exclusive
step ordering /usr/bin/python3 t/util/ordering.py --port "$http_port" --mongodb "$uri" \
    --partitions 4 --project check-ordering --messages 1000
step seed-page /usr/bin/python3 - "$http_port" <<'EOF'
import json, sys
sys.path.insert(0, "bench")
import benchlib
port = int(sys.argv[1])
h = {"Client-ID": "3381af92-2b9e-11e3-b191-71861300734c", "X-Project-ID": "bench"}
assert benchlib.http(port, "PUT", "/v2/queues/page", h)[0] in (201, 204)
msgs = [{"body": {"event": i}, "ttl": 43200} for i in range(1, 11)]
code, body, _ = benchlib.http(port, "POST", "/v2/queues/page/messages", h, {"messages": msgs})
assert code == 201, (code, body)
code, body, _ = benchlib.http(port, "GET", "/v2/queues/page/messages?limit=7&echo=true", h)
page = json.loads(body)
assert code == 200 and [m["body"]["event"] for m in page["messages"]] == list(range(1, 8)), body
code, body, _ = benchlib.http(port, "GET", "/v2/queues/page/stats", h)
assert code == 200 and json.loads(body)["messages"]["total"] == 10, body
print("a page of 7 of the 10 messages posted, %d bytes" % len(body))
EOF
step status bash -c "curl -s http://127.0.0.1:$http_port/msgbus_status \
    | /usr/bin/python3 -c 'import json, sys; s = json.load(sys.stdin); t = s.get(\"total\", s); \
print(t); sys.exit(t.get(\"errors_5xx\", 0) != 0)'"
if grep -q 'no such command\|not supported' "$run/standin.log"; then
    echo "not ok - the stand-in was asked what it does not answer:"
    grep 'no such command\|not supported' "$run/standin.log" | sed 's/^/    /'
    failed=1
else
    echo "ok - the stand-in answered every command"
fi
if [ "$failed" = 0 ]; then
    echo OK
else
    echo FAILED
fi
exit "$failed"
