#!/usr/bin/env bash
# Fan-out: msgbus next to Nchan (bench/realtime/README.md).
#
#   bench/realtime/run.sh       (make bench-realtime: deps and build first)
#
# Installs Debian's libnginx-mod-nchan when missing, builds the Go client
# (standard library only) into .build/bench/, then bench/realtime/run.py.
# Settings (environment): LONGPOLL=2000 SSE=2000 RATE=100 DURATION=20s
# POSTERS=1, and STEPS (extra "longpoll:sse:rate" runs, space-separated).
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
. bench/lib.sh

bench_apt libnginx-mod-nchan

client=$top/.build/bench/realtime-client
src=$top/bench/realtime/client
if [ ! -x "$client" ] || [ "$src/main.go" -nt "$client" ]; then
    mkdir -p "${client%/*}"
    (cd "$src" && GOFLAGS=-mod=mod timeout 300 go build -o "$client" .)
    echo "bench: built $client"
fi

exec /usr/bin/python3 bench/realtime/run.py --client "$client" "$@"
