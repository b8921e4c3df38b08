#!/usr/bin/env bash
# Builds ngx_http_msgbus_module.so against Debian's nginx (nginx-dev's
# configurable tree in /usr/share/nginx/src), with Debian's own configure
# flags so that /usr/sbin/nginx loads it.
#
#   t/util/build.sh [default|asan]     -> .build/<flavour>/ngx_http_msgbus_module.so
#
# asan: the module is compiled with -fsanitize=address,undefined; run
# nginx with LD_PRELOAD of libasan (t/util/run-tests.sh does).
set -euo pipefail

flavour=${1:-default}
top=$(cd "$(dirname "$0")/../.." && pwd)
src=${NGINX_SRC:-/usr/share/nginx/src}
out=$top/.build/$flavour
tree=$top/.build/nginx-src

case $flavour in
    default) cc_opt="-O2 -g -Wall -Werror" ; ld_opt="" ;;
    asan)    cc_opt="-O1 -g -Wall -Werror -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined"
             ld_opt="-fsanitize=address,undefined" ;;
    *) echo "build: unknown flavour '$flavour' (default, asan)" >&2; exit 2 ;;
esac

[ -f "$src/conf_flags" ] || {
    echo "build: $src/conf_flags not found: install Debian's nginx-dev (make deps)" >&2
    exit 1
}

# nginx's configure writes into the tree it runs in: use a private copy.
if [ ! -f "$tree/.copied" ] || [ "$src/conf_flags" -nt "$tree/.copied" ]; then
    rm -rf "$tree"
    mkdir -p "$tree"
    cp -r "$src/." "$tree/"
    touch "$tree/.copied"
fi

# Configure again only when the inputs of configure changed (config,
# nginx's flags, this script, the list of source files).
stamp=$out/.configured
sig=$( (cat "$top/config" "$src/conf_flags" "$0";
       ls "$top"/ngx_http_msgbus_module/*/*.[ch]) | md5sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$sig" ]; then
    rm -rf "$out"
    mkdir -p "$out"
    # shellcheck disable=SC1091
    . "$src/conf_flags"
    (
        cd "$tree"
        ./configure "${NGX_CONF_FLAGS[@]}" \
            --with-cc-opt="$cc_opt" ${ld_opt:+--with-ld-opt="$ld_opt"} \
            --add-dynamic-module="$top" \
            --builddir="$out" > "$out/configure.log" 2>&1
    ) || { cat "$out/configure.log" >&2; exit 1; }
    echo "$sig" > "$stamp"
fi

make -s -f "$out/Makefile" -C "$tree" modules
ls -l "$out/ngx_http_msgbus_module.so" | awk '{print "build: " $NF " (" $5 " bytes)"}'
