#!/bin/sh
# Test a candidate PostgreSQL configuration file before it replaces the
# live one (the template tasks' validate:). Run as root.
#
#   pg-config-check hba  BIN_DIR CONF_DIR CANDIDATE   a pg_hba.conf
#   pg-config-check conf BIN_DIR CONF_DIR CANDIDATE   a conf.d drop-in
#
# hba: a scratch cluster (initdb in a temporary directory, no TCP, its own
# socket) is started with hba_file=CANDIDATE; the postmaster refuses to
# start when any line of it is wrong, and nothing else is checked there.
# conf: `postgres -C` parses the live postgresql.conf (with its conf.d)
# followed by CANDIDATE, as the server will after the change.
# Exit 0 when the candidate is good; otherwise the server's words on
# standard error. The live cluster is not touched.
set -eu
mode=$1 bin=$2 conf=$3 candidate=$4
scratch=$(mktemp -d /tmp/pg-config-check.XXXXXX)
cleanup() {
    if [ -f "$scratch/data/postmaster.pid" ]; then
        runuser -u postgres -- "$bin/pg_ctl" -D "$scratch/data" -m immediate stop >/dev/null 2>&1 || true
    fi
    rm -rf "$scratch"
}
trap cleanup EXIT
cp "$candidate" "$scratch/candidate.conf"
chown -R postgres: "$scratch"
chmod 0700 "$scratch"

case $mode in
hba)
    runuser -u postgres -- "$bin/initdb" -D "$scratch/data" --auth-local=peer --auth-host=reject --no-sync >"$scratch/initdb.log" 2>&1 \
        || { cat "$scratch/initdb.log" >&2; exit 1; }
    if ! runuser -u postgres -- "$bin/pg_ctl" -D "$scratch/data" -w -t 60 -l "$scratch/server.log" \
            -o "-c hba_file=$scratch/candidate.conf -c listen_addresses= -c unix_socket_directories=$scratch" \
            start >/dev/null; then
        grep -E 'LOG|FATAL|ERROR|line' "$scratch/server.log" >&2 || cat "$scratch/server.log" >&2
        exit 1
    fi
    ;;
conf)
    printf "include '%s'\ninclude '%s'\n" "$conf/postgresql.conf" "$scratch/candidate.conf" >"$scratch/postgresql.conf"
    chown postgres: "$scratch/postgresql.conf"
    runuser -u postgres -- "$bin/postgres" -C listen_addresses --config-file="$scratch/postgresql.conf" >/dev/null
    ;;
*)
    echo "usage: pg-config-check hba|conf BIN_DIR CONF_DIR CANDIDATE" >&2
    exit 2
    ;;
esac
