# Sourced by the store's scripts (t/util/store-build.sh, t/util/store.sh):
# what the embedded store is made of and where it is kept.
#
#   STORE_CACHE       builds and binaries, outside the work tree
#                     (default ~/.cache/msgbus/store)
#   FERRETDB          the FerretDB binary to run (default: the one built)
#   PG_MAJOR          Debian's PostgreSQL major version (15)

FERRETDB_VERSION=v2.7.0
PG_MAJOR=${PG_MAJOR:-15}
STORE_CACHE=${STORE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/msgbus/store}
FERRETDB=${FERRETDB:-$STORE_CACHE/bin/ferretdb-$FERRETDB_VERSION}
PGBIN=/usr/lib/postgresql/$PG_MAJOR/bin

# Debian's packages the store is built from and runs on
STORE_PACKAGES=(
    "postgresql-$PG_MAJOR" "postgresql-server-dev-$PG_MAJOR"
    "postgresql-$PG_MAJOR-cron" "postgresql-$PG_MAJOR-postgis-3"
    "postgresql-$PG_MAJOR-rum" libintelrdfpmath-dev libpcre2-dev libkrb5-dev
    pkg-config cmake build-essential git ca-certificates
)

pg_config_path() {
    if [ -x "$PGBIN/pg_config" ]; then echo "$PGBIN/pg_config"; else echo /usr/bin/pg_config; fi
}
