# What the bench/*/run.sh scripts share; sourced, with $top set to the
# repository's root.

# bench_apt PACKAGE...: installs the Debian packages that are missing
bench_apt() {
    local p missing=()
    for p in "$@"; do
        [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)" = "install ok installed" ] \
            || missing+=("$p")
    done
    [ ${#missing[@]} -gt 0 ] || return 0
    echo "bench: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    timeout 900 apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1 || {
        timeout 300 apt-get update -qq
        timeout 900 apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    }
}

# bench_mongoc_ping: builds .build/bench/mongoc_ping (bench/adapter/mongoc_ping.c)
# when missing or older than its source; prints its path
bench_mongoc_ping() {
    local pinger=$top/.build/bench/mongoc_ping src=$top/bench/adapter/mongoc_ping.c
    if [ ! -x "$pinger" ] || [ "$src" -nt "$pinger" ]; then
        mkdir -p "${pinger%/*}"
        # shellcheck disable=SC2046
        timeout 120 gcc -O2 -g -Wall -Wextra -Werror -o "$pinger" "$src" \
            $(pkg-config --cflags --libs libmongoc-1.0) -pthread >&2
        echo "bench: built $pinger" >&2
    fi
    echo "$pinger"
}
