#!/usr/bin/env bash
# Builds the Debian package libnginx-mod-http-msgbus for the nginx installed
# on this machine (make deb):
#
#   t/util/deb/build.sh      -> .build/deb/libnginx-mod-http-msgbus_<version>_<arch>.deb
#
# The module is t/util/build.sh's default build (Debian's configure flags,
# nginx-dev's tree), stripped as dh_strip strips a shared library. The
# package is laid out as Debian's libnginx-mod-* ones (dh_nginx): the .so
# in /usr/lib/nginx/modules, its load_module line in
# /usr/share/nginx/modules-available, enabled by the maintainer scripts of
# this folder. Depends: the libraries the .so links (dpkg-shlibdeps) and
# exactly the nginx-abi-* the installed nginx provides (the package of
# /usr/sbin/nginx, or nginx-common), which must be the
# one nginx-dev's tree declares. Version: the changelog's top entry, whose
# upstream part must be the module's NGX_HTTP_MSGBUS_VERSION.
#
# DEB_OUT=DIR builds in DIR instead of .build/deb. Prints the .deb's path
# last.
set -euo pipefail

top=$(cd "$(dirname "$0")/../../.." && pwd)
here=$top/t/util/deb
pkg=libnginx-mod-http-msgbus
so=ngx_http_msgbus_module.so
out=${DEB_OUT:-$top/.build/deb}
root=$out/debian/$pkg          # the layout dpkg-shlibdeps expects
doc=$root/usr/share/doc/$pkg

die() { echo "deb: $*" >&2; exit 1; }

for tool in dpkg-deb dpkg-gencontrol dpkg-shlibdeps dpkg-parsechangelog; do
    command -v "$tool" >/dev/null || die "$tool missing: apt-get install dpkg-dev"
done

# The version, kept in the module's header; the changelog must agree.
header=$top/ngx_http_msgbus_module/http/ngx_http_msgbus_module.h
upstream=$(sed -n 's/^#define NGX_HTTP_MSGBUS_VERSION *"\(.*\)"$/\1/p' "$header")
[ -n "$upstream" ] || die "no NGX_HTTP_MSGBUS_VERSION in $header"
version=$(dpkg-parsechangelog -l "$here/changelog" -S Version)
[ "${version%-*}" = "$upstream" ] || die "t/util/deb/changelog's top entry" \
    "is $version but the module is $upstream: add an entry for $upstream-1"

# The nginx ABI: what the package of /usr/sbin/nginx (Debian 12: nginx)
# provides, the one the tree we compile against (nginx-dev) declares for
# its modules.
owner=$(dpkg -S /usr/sbin/nginx 2>/dev/null | cut -d: -f1 | head -n1) || true
[ -n "$owner" ] || die "no package holds /usr/sbin/nginx: install Debian's nginx"
abi=$(dpkg-query -W -f='${Provides}\n' "$owner" nginx-common 2>/dev/null |
      tr ',' '\n' | sed -n 's/^ *\(nginx-abi-[^ ]*\).*$/\1/p' | sort -u) || true
[ -n "$abi" ] || die "$owner provides no nginx-abi-*: install Debian's nginx"
[ "$(wc -l <<< "$abi")" = 1 ] || die "nginx provides several ABIs:" "$abi"
subst=/usr/share/nginx/src/debian/libnginx-mod.abisubstvars
dev_abi=$(sed -n 's/^nginx:abi=//p' "$subst" 2>/dev/null) || true
[ "$dev_abi" = "$abi" ] || die "the installed nginx provides $abi but" \
    "nginx-dev (${subst}) builds for ${dev_abi:-nothing}: install matching nginx and nginx-dev"

"$top/t/util/build.sh" default >&2

umask 022
rm -rf "$out/debian" "$out/substvars" "$out/files" "$out/$pkg"_*.deb
mkdir -p "$root/DEBIAN" "$root/usr/lib/nginx/modules" \
    "$root/usr/share/nginx/modules-available" "$doc/examples"

# dh_strip's way for a shared library; the debug info stays in .build.
strip --remove-section=.comment --remove-section=.note --strip-unneeded \
    -o "$root/usr/lib/nginx/modules/$so" "$top/.build/default/$so"
chmod 644 "$root/usr/lib/nginx/modules/$so"

install -m 644 "$here/mod-http-msgbus.conf" "$root/usr/share/nginx/modules-available/"
install -m 644 "$here/README.Debian" "$doc/"
install -m 644 "$here/msgbus-site.conf" "$doc/examples/"
install -D -m 644 "$here/lintian-overrides" \
    "$root/usr/share/lintian/overrides/$pkg"
cat "$here/copyright.in" "$top/LICENSE" > "$doc/copyright"
gzip -9n < "$here/changelog" > "$doc/changelog.Debian.gz"
install -m 755 "$here/postinst" "$here/prerm" "$here/postrm" "$root/DEBIAN/"

# dpkg-shlibdeps and dpkg-gencontrol read debian/control and
# debian/changelog of the directory they run in.
cp "$here/control" "$here/changelog" "$out/debian/"
(
    cd "$out"
    dpkg-shlibdeps -T"$out/substvars" "$root/usr/lib/nginx/modules/$so"
    printf 'nginx:abi=%s\nmisc:Depends=\n' "$abi" >> "$out/substvars"
    dpkg-gencontrol -p"$pkg" -P"$root" -T"$out/substvars" -f"$out/files"
)

(cd "$root" && find . -type f ! -path './DEBIAN/*' -printf '%P\0' |
     LC_ALL=C sort -z | xargs -0 md5sum > DEBIAN/md5sums)
chmod 644 "$root/DEBIAN/md5sums" "$root/DEBIAN/control"

# Reproducible: every date is the changelog's.
SOURCE_DATE_EPOCH=$(dpkg-parsechangelog -l "$here/changelog" -S Timestamp)
export SOURCE_DATE_EPOCH
find "$root" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +

deb=$out/${pkg}_${version}_$(dpkg --print-architecture).deb
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >&2
echo "$deb"
