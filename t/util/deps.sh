#!/usr/bin/env bash
# Installs what msgbus needs on Debian 12, idempotently: Debian packages
# (only when one is missing), then the embedded store (FerretDB v2,
# PostgreSQL 15 with DocumentDB: t/util/store-build.sh), built once into a
# cache that outlives the work tree.  Run as root (make deps).
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=t/util/store-env.sh
. "$top/t/util/store-env.sh"

packages=(
    nginx nginx-dev libmongoc-dev libbson-dev libjansson-dev libssl-dev
    pkg-config gcc make perl curl
    libtest-base-perl libtext-diff-perl liblist-moreutils-perl
    libtest-longstring-perl libhttp-message-perl liburi-perl
    libipc-run-perl libjson-pp-perl python3-pymongo
    python3-zaqarclient python3-zaqar
    "${STORE_PACKAGES[@]}"
)

missing=()
for p in "${packages[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    [ "$status" = "install ok installed" ] || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
    t0=$SECONDS
    echo "deps: installing ${#missing[@]} Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    echo "deps: updating the package lists (apt-get update)"
    apt-get update -qq
    apt-get install -y -q --no-install-recommends "${missing[@]}"
    # Debian starts its own nginx on port 80 and PostgreSQL cluster on
    # 5432 where it can; msgbus never needs them (it runs private ones).
    if command -v service >/dev/null 2>&1; then
        service nginx stop >/dev/null 2>&1 || true
        service postgresql stop >/dev/null 2>&1 || true
    fi
    echo "deps: Debian packages took $((SECONDS - t0)) s"
fi

exec "$top/t/util/store-build.sh"
