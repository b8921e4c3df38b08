#!/usr/bin/env bash
# Builds the embedded store once, idempotently (called by t/util/deps.sh,
# which installs the Debian packages of store-env.sh first):
# FerretDB v2 in front of PostgreSQL 15 (Debian's) with the DocumentDB
# extension.  Pinned sources no package registry has (DocumentDB, pgvector,
# libbson >= 1.28) come from ../shared/vendor when it is there, checked
# against its SHA256SUMS, otherwise from their upstream git repositories at
# the pinned commits (a commit id is a checksum of its tree).  FerretDB
# comes from the Go module proxy.  Everything is built in a cache outside
# the work tree; a second run checks stamps and takes a second or two.
#
# Run as root: the extension is installed into PostgreSQL's directories.
#
#   STORE_CACHE   where builds and the FerretDB binary live
#                 (default ~/.cache/msgbus/store)
#   VENDOR        the folder of pinned tarballs (default ../shared/vendor)
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=t/util/store-env.sh
. "$top/t/util/store-env.sh"

VENDOR=${VENDOR:-$top/../shared/vendor}
JOBS=${JOBS:-$(nproc)}

# name  tarball  upstream repository  commit (the one each tarball was made from)
DOCDB_TGZ=documentdb-0.107-0-ferretdb-3f80da90.tar.gz
DOCDB_GIT=https://github.com/FerretDB/documentdb.git
DOCDB_COMMIT=3f80da90a9e0b04f214183aa656c4fb0b4bc31e4
PGVECTOR_TGZ=pgvector-0.8.0.tar.gz
PGVECTOR_GIT=https://github.com/pgvector/pgvector.git
PGVECTOR_COMMIT=2627c5ff775ae6d7aef0c430121ccf857842d2f2
LIBBSON_TGZ=libbson-1.28.0.tar.gz
LIBBSON_GIT=https://github.com/mongodb/mongo-c-driver.git
LIBBSON_COMMIT=a463a46c38cb6b552f2da4b3ae63e393dfe0a9a6
LIBBSON_VERSION=1.28.0
# the same sums as ../shared/vendor/SHA256SUMS: a tarball that differs is refused
declare -A SHA256=(
    [$DOCDB_TGZ]=0e81b4cf9f27f6afe2df51dee337e1eb8310f34519282a24d7b8d774d8106457
    [$PGVECTOR_TGZ]=f735d37c1f8a32a0c46f29db63860bdc1ed06a423d4280767afbd38f1fe58778
    [$LIBBSON_TGZ]=b68d856e96e1a2af3af02d7e204e6cd8cea4ded47d858f0fb71d9c34ab93d8a7
)

# the Go that builds FerretDB: any go >= GO_MIN on PATH, else this toolchain
# module through the Go module proxy (what GOTOOLCHAIN does), fetched with
# Debian's go
GO_MIN=1.25
GO_TOOLCHAIN=go1.25.4

export PKG_CONFIG_PATH=$STORE_CACHE/deps/lib/pkgconfig:$STORE_CACHE/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}

mkdir -p "$STORE_CACHE"/{src,stamps,pkgconfig,logs,bin}

# step NAME FUNCTION: runs it, and says how long it took when that was over 10 s
step() {
    local name=$1 t0=$SECONDS
    shift
    "$@"
    local took=$((SECONDS - t0))
    [ $took -lt 10 ] || echo "store: $name took ${took} s"
}

# say WHAT: a step that may take a while says so first
say() { echo "store: $*"; }

# runs a command into LOG, saying every 30 s that it still runs; fails
# with the tail of LOG
run_logged() {
    local log=$1
    shift
    "$@" > "$log" 2>&1 &
    local pid=$! t0=$SECONDS next=30 rc=0
    while kill -0 "$pid" 2>/dev/null; do
        sleep 1
        if [ $((SECONDS - t0)) -ge $next ]; then
            echo "store: ... ${1##*/} still running after $next s (log: $log)"
            next=$((next + 30))
        fi
    done
    wait "$pid" || rc=$?
    [ $rc = 0 ] || {
        echo "store: failed: $*; the end of $log:" >&2
        tail -n 30 "$log" >&2
        return 1
    }
}

# unpack NAME GIT COMMIT DEST: the vendored tarball, checked, into DEST
# (one folder, no prefix); without ../shared/vendor, a clone at COMMIT
unpack() {
    local name=$1 git=$2 commit=$3 dest=$4
    rm -rf "$dest"
    mkdir -p "$dest"
    if [ -f "$VENDOR/$name" ]; then
        local sum
        sum=$(sha256sum "$VENDOR/$name" | cut -d' ' -f1)
        if [ "$sum" != "${SHA256[$name]}" ]; then
            echo "store: $VENDOR/$name: checksum $sum, expected ${SHA256[$name]}" >&2
            return 1
        fi
        tar xzf "$VENDOR/$name" -C "$dest" --strip-components=1
    else
        say "$VENDOR/$name not found: cloning $git at $commit"
        git clone -q "$git" "$dest"
        git -C "$dest" -c advice.detachedHead=false checkout -q "$commit"
        [ "$(git -C "$dest" rev-parse HEAD)" = "$commit" ]
    fi
}

# DocumentDB's build asks pkg-config for intelmathlib: Debian's
# libintelrdfpmath-dev is Intel's library built as DocumentDB's own script
# builds it (libbidgcc000.a), so a .pc naming it is all that is missing.
pc_step() {
    cat > "$STORE_CACHE/pkgconfig/intelmathlib.pc" <<'EOF'
Name: intelmathlib
Description: Intel Decimal Floating-Point Math Library (Debian's libintelrdfpmath-dev)
Version: 2.0u2
Cflags:
Libs: -lbidgcc000
EOF
}

# ---------------------------------------------------------------- libbson
# DocumentDB needs libbson >= 1.28 (Debian 12 has 1.23), static and PIC; it
# goes into the cache only, not over Debian's (the module uses Debian's).
libbson_step() {
    local stamp=$STORE_CACHE/stamps/libbson-$LIBBSON_COMMIT
    [ -f "$stamp" ] && [ -f "$STORE_CACHE/deps/lib/libbson-static-1.0.a" ] && return 0
    say "building libbson $LIBBSON_VERSION (about 20 s)"
    local src=$STORE_CACHE/src/libbson
    unpack "$LIBBSON_TGZ" "$LIBBSON_GIT" "$LIBBSON_COMMIT" "$src"
    run_logged "$STORE_CACHE/logs/libbson.log" \
        cmake -S "$src" -B "$src/_build" -DENABLE_MONGOC=OFF -DENABLE_TESTS=OFF \
            -DENABLE_EXAMPLES=OFF -DENABLE_UNINSTALL=OFF -DENABLE_STATIC=ON \
            -DENABLE_SHARED=OFF -DCMAKE_POSITION_INDEPENDENT_CODE=ON \
            -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX="$STORE_CACHE/deps" \
            -DBUILD_VERSION="$LIBBSON_VERSION"
    run_logged "$STORE_CACHE/logs/libbson-make.log" \
        make -C "$src/_build" -j"$JOBS" install
    rm -rf "$src"
    touch "$stamp"
}

# ---------------------------------------------------------------- pgvector
pgvector_step() {
    local stamp=$STORE_CACHE/stamps/pgvector-$PGVECTOR_COMMIT-pg$PG_MAJOR
    [ -f "$stamp" ] && [ -f "$PG_PKGLIB/vector.so" ] && return 0
    say "building pgvector 0.8.0 into PostgreSQL $PG_MAJOR (about 10 s)"
    local src=$STORE_CACHE/src/pgvector
    unpack "$PGVECTOR_TGZ" "$PGVECTOR_GIT" "$PGVECTOR_COMMIT" "$src"
    run_logged "$STORE_CACHE/logs/pgvector.log" \
        make -C "$src" -j"$JOBS" PG_CONFIG="$PG_CONFIG" OPTFLAGS=
    run_logged "$STORE_CACHE/logs/pgvector-install.log" \
        make -C "$src" install PG_CONFIG="$PG_CONFIG"
    rm -rf "$src"
    touch "$stamp"
}

# ---------------------------------------------------------------- DocumentDB
# Only pg_documentdb_core and pg_documentdb, what FerretDB needs.
documentdb_step() {
    local stamp=$STORE_CACHE/stamps/documentdb-$DOCDB_COMMIT-pg$PG_MAJOR
    [ -f "$stamp" ] && [ -f "$PG_PKGLIB/pg_documentdb.so" ] \
        && [ -f "$PG_PKGLIB/pg_documentdb_core.so" ] && return 0
    say "building DocumentDB 0.107-0 into PostgreSQL $PG_MAJOR (about 2 min)"
    local src=$STORE_CACHE/src/documentdb
    unpack "$DOCDB_TGZ" "$DOCDB_GIT" "$DOCDB_COMMIT" "$src"
    local d
    for d in pg_documentdb_core pg_documentdb; do
        run_logged "$STORE_CACHE/logs/$d.log" \
            make -C "$src/$d" -j"$JOBS" PG_CONFIG="$PG_CONFIG"
    done
    run_logged "$STORE_CACHE/logs/documentdb-install.log" \
        make -C "$src" install-no-distributed PG_CONFIG="$PG_CONFIG"
    rm -rf "$src"
    # a template cluster made with an older build must go
    rm -rf "$STORE_CACHE/template"
    touch "$stamp"
}

# ---------------------------------------------------------------- RUM
# Debian's rum.so (1.3.13) crashes when a posting tree's one page, its
# root, splits under a running scan (t/util/rum-leaf-fix.py): the fixed
# copy goes beside it as msgbus_rum.so, and DocumentDB loads it through
# pg_documentdb_extended_rum.so, the name its setting
# documentdb.rum_library_load_option = require_documentdb_extended_rum
# (t/util/store.sh) asks for.  Debian's rum.so itself is left as it is.
rum_step() {
    local fix=$top/t/util/rum-leaf-fix.py shim=$top/t/util/rum/pg_documentdb_extended_rum.c
    local stamp
    stamp=$STORE_CACHE/stamps/rum-$(cat "$fix" "$shim" "$PG_PKGLIB/rum.so" | sha256sum | cut -c1-16)-pg$PG_MAJOR
    [ -f "$stamp" ] && [ -f "$PG_PKGLIB/msgbus_rum.so" ] \
        && [ -f "$PG_PKGLIB/pg_documentdb_extended_rum.so" ] && return 0
    say "installing RUM with the posting-tree root-split fix"
    /usr/bin/python3 "$fix" "$PG_PKGLIB/rum.so" "$PG_PKGLIB/msgbus_rum.so.tmp"
    mv "$PG_PKGLIB/msgbus_rum.so.tmp" "$PG_PKGLIB/msgbus_rum.so"
    local inc
    inc=$("$PG_CONFIG" --includedir-server)
    run_logged "$STORE_CACHE/logs/rum-shim.log" \
        gcc -O2 -fPIC -shared -I"$inc" -o "$PG_PKGLIB/pg_documentdb_extended_rum.so.tmp" "$shim" \
            "$PG_PKGLIB/msgbus_rum.so" -Wl,-rpath,"$PG_PKGLIB"
    mv "$PG_PKGLIB/pg_documentdb_extended_rum.so.tmp" "$PG_PKGLIB/pg_documentdb_extended_rum.so"
    touch "$stamp"
}

# ---------------------------------------------------------------- Go
version_ge() { # version_ge A B: A >= B (dotted numbers)
    [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | head -n1)" = "$2" ]
}

go_version() { # the version a go binary reports, without "go"
    "$1" env GOVERSION 2>/dev/null | sed 's/^go//'
}

# prints the path of a go >= GO_MIN, getting one if need be
find_go() {
    local go v
    for go in "${GO:-}" "$(command -v go 2>/dev/null)" /usr/local/go/bin/go \
              "$STORE_CACHE/go/bin/go"; do
        [ -n "$go" ] && [ -x "$go" ] || continue
        v=$(go_version "$go")
        if [ -n "$v" ] && version_ge "$v" "$GO_MIN"; then
            echo "$go"
            return 0
        fi
    done
    # Debian's go (1.19 on Debian 12) can still fetch the toolchain module
    # that a newer go would switch to by itself.
    local debgo=/usr/lib/go/bin/go
    if [ ! -x "$debgo" ]; then
        say "installing Debian's golang-go to fetch Go $GO_TOOLCHAIN" >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends golang-go >&2
    fi
    [ -x "$debgo" ] || debgo=$(command -v go)
    local mod=golang.org/toolchain@v0.0.1-$GO_TOOLCHAIN.linux-$(dpkg --print-architecture)
    say "fetching the Go toolchain module $mod" >&2
    local dir
    dir=$(cd "$STORE_CACHE" && GOFLAGS=-mod=mod GOTOOLCHAIN=local "$debgo" mod download -json "$mod" \
          | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
    if [ -z "$dir" ] || [ ! -f "$dir/bin/go" ]; then
        echo "store: could not fetch $mod; install Go >= $GO_MIN and put it on PATH" >&2
        return 1
    fi
    rm -rf "$STORE_CACHE/go"
    cp -r "$dir" "$STORE_CACHE/go"
    chmod -R u+w "$STORE_CACHE/go"
    # module zips keep no mode bits: the toolchain's programs are made executable again
    chmod +x "$STORE_CACHE/go/bin/"* "$STORE_CACHE/go/pkg/tool/"*/*
    echo "$STORE_CACHE/go/bin/go"
}

# ---------------------------------------------------------------- FerretDB
# `go install` builds a FerretDB that panics at start: its release expects
# build/version/version.txt, which its own tooling writes.  So: a writable
# copy of the module with that file, built with go build.
ferretdb_step() {
    # (read whole first: with pipefail, a grep -q that leaves the pipe early
    # can fail it)
    local have
    have=$("$FERRETDB" --version 2>/dev/null || true)
    grep -qx "version: $FERRETDB_VERSION" <<< "$have" && return 0
    local go
    go=$(find_go)
    say "building FerretDB $FERRETDB_VERSION with $("$go" version | cut -d' ' -f3) (about 2 min cold)"
    local mod=github.com/FerretDB/FerretDB/v2 dir src=$STORE_CACHE/src/ferretdb
    dir=$(cd "$STORE_CACHE" && GOFLAGS=-mod=mod GOTOOLCHAIN=local "$go" mod download -json "$mod@$FERRETDB_VERSION" \
          | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
    [ -n "$dir" ] || { echo "store: could not fetch $mod@$FERRETDB_VERSION" >&2; return 1; }
    rm -rf "$src"
    cp -r "$dir" "$src"
    chmod -R u+w "$src"
    echo "$FERRETDB_VERSION" > "$src/build/version/version.txt"
    (cd "$src" && GOTOOLCHAIN=local GOFLAGS=-buildvcs=false \
        run_logged "$STORE_CACHE/logs/ferretdb-build.log" \
        "$go" build -trimpath -o "$FERRETDB.tmp" ./cmd/ferretdb)
    mv "$FERRETDB.tmp" "$FERRETDB"
    rm -rf "$src"
    have=$("$FERRETDB" --version)
    grep -qx "version: $FERRETDB_VERSION" <<< "$have"
}

PG_CONFIG=$(pg_config_path)
[ -x "$PG_CONFIG" ] || { echo "store: $PG_CONFIG missing: run 'make deps'" >&2; exit 1; }
PG_PKGLIB=$("$PG_CONFIG" --pkglibdir)
pc_step
step libbson libbson_step
step pgvector pgvector_step
step DocumentDB documentdb_step
step RUM rum_step
step FerretDB ferretdb_step
