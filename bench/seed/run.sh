#!/usr/bin/env bash
# The seed's benchmark with msgbus in it (bench/seed/README.md): installs
# what the contenders and the load need, builds mongoc_ping and the
# stand-in store (bench/standin), then runs bench/seed/run.py.
#
#   bench/seed/run.sh            the full run    (make bench)
#   bench/seed/run.sh --quick    a sanity pass   (make bench-quick)
#   bench/seed/run.sh --help     run.py's options
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/bench/lib.sh"
cd "$top"

# the load, the peers, OpenStack Zaqar under uwsgi, the graphs
bench_apt httperf python3-gevent python3-pymongo python3-tornado python3-motor \
    zaqar-server uwsgi-core uwsgi-plugin-python3 python3-matplotlib
# Node.js: the machine's own where it has one (its npm may not be Debian's)
command -v node >/dev/null && command -v npm >/dev/null || bench_apt nodejs npm
# Debian's zaqar-server starts its own service where it can; the bench
# runs its own Zaqar
if command -v service >/dev/null 2>&1; then
    service zaqar-server stop >/dev/null 2>&1 || true
fi

node=bench/peers/node
if [ ! -f "$node/node_modules/mongodb/package.json" ] \
   || [ "$node/package-lock.json" -nt "$node/node_modules/.package-lock.json" ]; then
    echo "bench: npm ci in $node"
    (cd "$node" && timeout 600 npm ci --no-audit --no-fund --loglevel=error)
fi

bench_mongoc_ping > /dev/null
bench_standin > /dev/null
bench_poster > /dev/null
[ -f .build/default/ngx_http_msgbus_module.so ] || { echo "bench: the module is not built: make build" >&2; exit 1; }

exec /usr/bin/python3 bench/seed/run.py "$@"
