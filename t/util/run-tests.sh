#!/usr/bin/env bash
# Runs the Test::Nginx suite against the built module and a store.
#
#   t/util/run-tests.sh [prove arguments]     default: -r t
#
# FLAVOUR=default|asan        which build to load (t/util/build.sh)
# TEST_NGINX_MONGODB_URI      use this MongoDB instead of a private store
#                             (FerretDB v2 on PostgreSQL with DocumentDB)
# TEST_NGINX_USE_VALGRIND     Test::Nginx's valgrind mode (see docs/testing.md)
# The real Test::Nginx::Socket is used when installed, else t/lib/compat.
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"

flavour=${FLAVOUR:-default}
module=$top/.build/$flavour/ngx_http_msgbus_module.so
[ -f "$module" ] || { echo "run-tests: $module missing: make build" >&2; exit 1; }

export TEST_NGINX_BINARY=${TEST_NGINX_BINARY:-$top/t/util/nginx}
export TEST_NGINX_LOAD_MODULES=$module
export TEST_NGINX_MASTER_PROCESS=${TEST_NGINX_MASTER_PROCESS:-on}
export TEST_NGINX_SERVROOT=${TEST_NGINX_SERVROOT:-$top/t/servroot}

run=$top/.run/test-$$
mkdir -p "$run"
cleanup() {
    [ -n "${store_started:-}" ] && t/util/store.sh destroy "$run/store"
    rm -rf "$run"
}
trap cleanup EXIT

if [ -z "${TEST_NGINX_MONGODB_URI:-}" ]; then
    port=$(t/util/store.sh free-port)
    STORE_FSYNC=off t/util/store.sh start "$run/store" "$port"
    store_started=1
    export TEST_NGINX_MONGODB_URI="mongodb://127.0.0.1:$port/msgbus_test"
else
    echo "run-tests: store $TEST_NGINX_MONGODB_URI"
fi

if [ "$flavour" = asan ]; then
    # Reports go to nginx's stderr, which is its error log: the suite
    # fails a block on any (t/lib/Msgbus/Test.pm).
    export LD_PRELOAD="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libubsan.so)"
    export ASAN_OPTIONS=detect_leaks=0
    export UBSAN_OPTIONS=print_stacktrace=1
fi

inc=()
if ! perl -MTest::Nginx::Socket -e1 2>/dev/null; then
    inc=(-I "$top/t/lib/compat")
    echo "run-tests: Test::Nginx is not installed; using t/lib/compat"
fi

[ $# -gt 0 ] || set -- -r t
prove "${inc[@]}" "$@"
