#!/usr/bin/env bash
# Proves the Debian package on this machine (make test-deb; root, Debian 12
# with Debian's nginx): builds it, installs it with apt, checks that
# Debian's own /etc/nginx/nginx.conf loads the module, serves the sample
# site (on a free port, against a private store) from Debian's nginx,
# then removes and purges the package and checks that Debian's scripts'
# traces are gone and "nginx -t" still passes.
#
# The machine is left as found (an EXIT trap): the site, the store and the
# nginx this test started are gone, and the package is back in the state
# it was in (a copy installed before is repacked with dpkg-repack, which is
# installed if missing, and installed again; its symlinks as they were);
# /var/log/nginx keeps the lines of the run. Debian's nginx must not be
# running (the test would have to restart it). Any mismatch fails.
set -euo pipefail

top=$(cd "$(dirname "$0")/../../.." && pwd)
pkg=libnginx-mod-http-msgbus
so=/usr/lib/nginx/modules/ngx_http_msgbus_module.so
avail=/usr/share/nginx/modules-available/mod-http-msgbus.conf
link=/etc/nginx/modules-enabled/50-mod-http-msgbus.conf
site=/etc/nginx/sites-enabled/zz-msgbus-test-deb.conf
example=/usr/share/doc/$pkg/examples/msgbus-site.conf
work=$top/.run/test-deb-$$
t0=$SECONDS
checks=0

export DEBIAN_FRONTEND=noninteractive

say() { echo "test-deb: $*"; }
die() { echo "test-deb: FAILED: $*" >&2; exit 1; }
ok() { checks=$((checks + 1)); echo "ok $checks - $*"; }

# check WHAT COMMAND...: the command must succeed
check() {
    local what=$1
    shift
    "$@" || die "$what"
    ok "$what"
}

# same WHAT GOT EXPECTED
same() {
    [ "$2" = "$3" ] || die "$1: got '$2', expected '$3'"
    ok "$1"
}

# dpkg's state of the package: "ii ", "rc ", ... or "" when not installed
status() {
    local st
    st=$(dpkg-query -W -f='${db:Status-Abbrev}' "$pkg" 2>/dev/null) || true
    [ "${st:0:2}" = un ] || echo "$st"
}

# link state, to restore: "target" of each name, or "-"
links() {
    local l
    for l in "$link" "$link.removed"; do
        if [ -L "$l" ]; then readlink "$l"; else echo -; fi
    done
}

# Debian's pid file, found as its init script finds it
pidfile=$(grep -Ev '^\s*#' /etc/nginx/nginx.conf |
          awk 'BEGIN { RS="[;{}]" } { if ($1 == "pid") print $2 }' | head -n1)
pidfile=${pidfile:-/run/nginx.pid}

# alive PID: the process exists and is not a zombie waiting for init
alive() {
    local st
    st=$(sed -n 's/^[0-9]* ([^)]*) \(.\).*/\1/p' "/proc/$1/stat" 2>/dev/null) || return 1
    [ -n "$st" ] && [ "$st" != Z ]
}

running() { [ -s "$pidfile" ] && alive "$(cat "$pidfile")"; }

# Debian's "nginx -t", its output shown only when it fails
nginx_t() {
    nginx -t > "$work/nginx-t.log" 2>&1 || { cat "$work/nginx-t.log" >&2; return 1; }
}

stop_nginx() {
    local pid i
    running || return 0
    pid=$(cat "$pidfile")
    kill -QUIT "$pid"
    for i in $(seq 100); do
        alive "$pid" || return 0
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    echo "test-deb: nginx $pid did not quit in 10 s: killed" >&2
    return 1
}

# the package back as it was: $before (status), $saved (its repacked .deb),
# $before_links
restore() {
    local now
    now=$(status)
    case $before in
        ii*)
            dpkg -i "$saved" > "$work/restore.log" 2>&1 ||
                { cat "$work/restore.log" >&2; return 1; }
            ;;
        rc*)
            # its files gone, its conffile state and parked link kept: the
            # new build installed and removed gives the same
            if [ "${now:0:2}" != rc ]; then
                if ! { dpkg -i "${deb:-}" && dpkg -r "$pkg"; } \
                        > "$work/restore.log" 2>&1; then
                    cat "$work/restore.log" >&2
                    return 1
                fi
            fi
            ;;
        *)
            if [ -n "$now" ]; then
                dpkg --purge "$pkg" > "$work/restore.log" 2>&1 ||
                    { cat "$work/restore.log" >&2; return 1; }
            fi
            ;;
    esac
    # the admin's choice (enabled, disabled, parked) as it was
    local names=("$link" "$link.removed") targets i
    mapfile -t targets < <(printf '%s\n' "$before_links")
    for i in 0 1; do
        rm -f "${names[$i]}"
        if [ "${targets[$i]}" != - ]; then
            ln -s "${targets[$i]}" "${names[$i]}"
        fi
    done
}

cleanup() {
    local rc=$? failed=0
    trap - EXIT
    set +e
    if [ -n "${started:-}" ]; then
        stop_nginx || failed=1
    fi
    rm -f "$site"
    if [ -n "${store_started:-}" ]; then
        "$top/t/util/store.sh" destroy "$work/store" >/dev/null || failed=1
    fi
    if [ -n "${before_links:-}" ]; then
        restore || { echo "test-deb: could not restore $pkg's state" >&2; failed=1; }
        if [ "$(status)" != "$before" ] || [ "$(links)" != "$before_links" ]; then
            echo "test-deb: $pkg is '$(status)' with links $(links | tr '\n' ' ')," \
                 "was '$before' with $(tr '\n' ' ' <<< "$before_links")" >&2
            failed=1
        fi
        nginx_t ||
            { echo "test-deb: Debian's nginx -t fails after the test" >&2; failed=1; }
    fi
    # "nginx -t" leaves an empty pid file behind
    if [ -n "${pid_before:-}" ]; then
        cp -p "$work/pid" "$pidfile"
    elif [ -f "$pidfile" ] && ! running; then
        rm -f "$pidfile"
    fi
    rm -rf "$work"
    if [ $rc = 0 ] && [ $failed = 0 ]; then
        say "passed: $checks checks in $((SECONDS - t0)) s; machine restored"
    else
        echo "test-deb: FAILED (see above)" >&2
        [ $rc != 0 ] || rc=1
    fi
    exit $rc
}

# --- before anything: the machine as found

[ "$(id -u)" = 0 ] || die "run as root (it installs a package)"
if ! command -v nginx >/dev/null || [ ! -d /etc/nginx/modules-enabled ]; then
    die "Debian's nginx is not installed (make deps)"
fi
! running || die "Debian's nginx is running (pid $(cat "$pidfile")):" \
    "stop it first; this test starts and stops its own"
[ ! -e "$site" ] || die "$site exists: a test left it? remove it"

before=$(status)
case $before in
    ""|ii*|rc*) ;;
    *) die "$pkg is in state '$before': fix that with dpkg first" ;;
esac
mkdir -p "$work"
if [ -e "$pidfile" ]; then
    cp -p "$pidfile" "$work/pid"
    pid_before=1
fi
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
nginx_t || die "Debian's nginx -t fails before the test: fix that first"
if [ "${before:0:2}" = ii ]; then
    command -v dpkg-repack >/dev/null ||
        apt-get install -y -qq dpkg-repack > /dev/null
    (cd "$work" && dpkg-repack "$pkg" > repack.log 2>&1) ||
        { cat "$work/repack.log" >&2; die "dpkg-repack $pkg failed"; }
    saved=$(echo "$work/${pkg}"_*.deb)
    [ -f "$saved" ] || die "dpkg-repack made no .deb"
    say "$pkg $(dpkg-query -W -f='${Version}' "$pkg") was installed: saved as $saved"
fi
before_links=$(links)

# --- build

deb=$("$top/t/util/deb/build.sh" 2>"$work/build.log") ||
    { cat "$work/build.log" >&2; die "make deb failed"; }
say "built $deb"
version=$(dpkg-deb -f "$deb" Version)
abi=$(dpkg-query -W -f='${Provides}\n' "$(dpkg -S /usr/sbin/nginx | cut -d: -f1)" |
      tr ',' '\n' | sed -n 's/^ *\(nginx-abi-[^ ]*\).*$/\1/p')
check "Depends names the nginx ABI the installed nginx provides ($abi)" \
    grep -qw -- "$abi" <<< "$(dpkg-deb -f "$deb" Depends)"

# --- install: over whatever was there

apt-get install -y -q --reinstall --allow-downgrades --no-remove \
    --no-install-recommends "$deb" > "$work/apt.log" 2>&1 ||
    { cat "$work/apt.log" >&2; die "apt-get install of $deb failed"; }
same "$pkg installed" "$(dpkg-query -W -f='${Status} ${Version}' "$pkg")" \
    "install ok installed $version"
check "the module is at $so, the built one" \
    cmp -s "$so" "${deb%/*}/debian/$pkg$so"
same "$avail loads it" "$(cat "$avail")" \
    "load_module modules/ngx_http_msgbus_module.so;"
# Debian's rule: enabled on a first install, and where the link was (ii)
# or was parked by a removal (rc); an admin's disabling is kept
case $before in
    ii*) enable=${before_links%%$'\n'*} ;;
    rc*) enable=${before_links##*$'\n'} ;;
    *) enable=$avail ;;
esac
if [ "$enable" != - ]; then
    same "postinst enabled it: $link" "$(readlink "$link")" "$avail"
else
    check "postinst kept it disabled as the admin had (no $link)" test ! -L "$link"
    ln -s "$avail" "$link"
    say "enabled it for the test"
fi
check "Debian's nginx.conf loads the module (nginx -T)" \
    grep -q '^load_module modules/ngx_http_msgbus_module.so;' \
    <<< "$(nginx -T 2>/dev/null)"
check "Debian's nginx -t passes with the module" nginx_t

# --- the sample site on a free port, against a private store

store_port=$("$top/t/util/store.sh" free-port)
http_port=$("$top/t/util/store.sh" free-port)
store_started=1
"$top/t/util/store.sh" start "$work/store" "$store_port" > "$work/store.log" 2>&1 ||
    { cat "$work/store.log" >&2; die "the store did not start"; }
sed -e "s|^\( *listen \)8888;|\1127.0.0.1:$http_port;|" \
    -e "s|mongodb://127.0.0.1:27017/|mongodb://127.0.0.1:$store_port/|" \
    "$example" > "$site"
check "the sample site took the port and store" \
    grep -q "listen 127.0.0.1:$http_port;" "$site"
check "... and the store" grep -q "127.0.0.1:$store_port/zaqar" "$site"
check "Debian's nginx -t passes with the sample site" nginx_t

log=/var/log/nginx/error.log
log_size=$(stat -c %s "$log" 2>/dev/null || echo 0)
started=1
nginx || die "Debian's nginx did not start: $(tail -5 /var/log/nginx/error.log)"
for _ in $(seq 50); do
    curl -s -o /dev/null "http://127.0.0.1:$http_port/" && break
    sleep 0.1
done
check "Debian's nginx runs ($pidfile)" running

url=http://127.0.0.1:$http_port
hdr=(-H "Client-ID: 3381af92-2b9e-11e3-b191-71861300734c" -H "X-Project-ID: debtest")
code() { curl -s -o "$work/body" -w '%{http_code}' "$@"; }
same "GET /v2/ping" "$(code "$url/v2/ping")" 204
same "POST a message" "$(code "${hdr[@]}" -H 'Content-Type: application/json' \
    -d '{"messages": [{"body": {"from": "test-deb"}, "ttl": 300}]}' \
    "$url/v2/queues/debq/messages")" 201
same "GET the messages" "$(code "${hdr[@]}" "$url/v2/queues/debq/messages?echo=true")" 200
check "... lists it" grep -q '"body": *{"from": *"test-deb"}' "$work/body"
same "GET /msgbus_status from 127.0.0.1" "$(code "$url/msgbus_status")" 200
same "... denied from 127.0.0.2" \
    "$(code --interface 127.0.0.2 "$url/msgbus_status")" 403

stop_nginx
started=
check "Debian's nginx stopped" test ! -e "$pidfile"
errors=$(tail -c +$((log_size + 1)) "$log" | grep -E '\[(error|crit|alert|emerg)\]' |
         grep -v 'access forbidden by rule, client: 127\.0\.0\.2' || true)
same "no [error], [crit], [alert] or [emerg] in its $log" "$errors" ""
rm -f "$site"

# --- remove, then purge

apt-get remove -y -q "$pkg" > "$work/apt.log" 2>&1 ||
    { cat "$work/apt.log" >&2; die "apt-get remove failed"; }
same "removed" "$(status)" "rc "
check "the module is gone" test ! -e "$so"
check "the symlink is gone" test ! -L "$link"
check "... parked as $link.removed until purge" test -L "$link.removed"
check "Debian's nginx -t passes without it" nginx_t
dpkg --purge "$pkg" > "$work/apt.log" 2>&1 ||
    { cat "$work/apt.log" >&2; die "dpkg --purge failed"; }
same "purged" "$(status)" ""
check "the parked symlink is gone" test ! -L "$link.removed"
check "$avail is gone" test ! -e "$avail"
check "Debian's nginx -t passes after the purge" nginx_t
