#!/usr/bin/env bash
# A throw-away PostgreSQL cluster for the tests.
#
#   scripts/postgres.sh start DIR [PID]  creates a cluster in DIR (installing Debian's
#                                        PostgreSQL server if initdb/pg_ctl are missing),
#                                        starts it on a free local port, creates the database
#                                        `hookflow`, and prints its URL on stdout. With PID,
#                                        a detached watcher stops the cluster and removes DIR
#                                        once that process has exited. Starting a running
#                                        cluster only prints its URL again.
#   scripts/postgres.sh stop DIR         stops the cluster and removes DIR (nothing if absent).
#   scripts/postgres.sh halt DIR [MODE]  stops the server (pg_ctl stop -m MODE: fast, the
#                                        default, or immediate) and keeps DIR: the database is
#                                        down, as after a crash or a restart for maintenance.
#   scripts/postgres.sh restart DIR      starts a halted cluster again, on the same port with
#                                        the same data, so that clients reconnect to one URL.
#   scripts/postgres.sh psql URL SQL...  runs each SQL command with psql (one -c each).
#
# The tests' clusters trade durability for speed (fsync, synchronous_commit and
# full_page_writes off; the hookflow store still asks for synchronous commits on its own
# connections). HOOKFLOW_PG_SETTINGS="" starts a cluster with PostgreSQL's durable defaults
# (the benchmarks do), or names other `-c` settings.
#
# As root, the cluster runs as the system user `postgres` (initdb refuses root); it is
# created if missing. Quiet on success; on failure, says why on stderr and exits non-zero.
set -euo pipefail

die() {
    echo "postgres.sh: $*" >&2
    exit 1
}

# Sets BIN to the directory holding initdb and pg_ctl, installing them if needed.
find_bin() {
    if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
        # Resolved, to find psql and createdb beside it (a PATH entry may be a lone symlink).
        BIN=$(dirname "$(readlink -f "$(command -v initdb)")")
        if [ -x "$BIN/pg_ctl" ] && [ -x "$BIN/createdb" ] && [ -x "$BIN/psql" ]; then
            return
        fi
    fi
    local found
    found=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
    if [ -z "$found" ]; then
        [ "$(id -u)" = 0 ] || die "PostgreSQL is not installed (initdb, pg_ctl) and installing it needs root: apt-get install postgresql"
        export DEBIAN_FRONTEND=noninteractive
        if ! apt-get install -y -qq postgresql >/dev/null 2>&1; then
            apt-get update -qq >/dev/null 2>&1 || die "apt-get update failed"
            apt-get install -y -qq postgresql >/dev/null 2>&1 || die "apt-get install postgresql failed"
        fi
        found=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
        [ -n "$found" ] || die "installed postgresql, but found no /usr/lib/postgresql/*/bin"
    fi
    BIN=$found
}

# Runs a command as the cluster's owner.
as_owner() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u "$OWNER" -- "$@"
    else
        "$@"
    fi
}

set_owner() {
    if [ "$(id -u)" = 0 ]; then
        OWNER=postgres
        id -u "$OWNER" >/dev/null 2>&1 ||
            useradd --system --user-group --home-dir /var/lib/postgresql --shell /bin/bash "$OWNER" ||
            die "cannot create the system user $OWNER"
    else
        OWNER=$(id -un)
    fi
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null ||
        echo $((20000 + RANDOM % 20000))
}

url() {
    echo "postgres://$OWNER@127.0.0.1:$(cat "$DIR/port")/hookflow"
}

start() {
    find_bin
    set_owner
    if [ -f "$DIR/port" ] && as_owner "$BIN/pg_ctl" -D "$DIR/data" status >/dev/null 2>&1; then
        url
        return
    fi
    rm -rf "$DIR"
    mkdir -p "$DIR"
    chown "$OWNER" "$DIR"
    # The owner must be able to reach DIR.
    chmod 755 "$DIR"
    as_owner "$BIN/initdb" -D "$DIR/data" -U "$OWNER" -A trust -E UTF8 --locale=C --no-sync \
        >"$DIR/initdb.log" 2>&1 || die "initdb failed: $(cat "$DIR/initdb.log")"
    local port started=
    for _ in 1 2 3 4 5; do
        port=$(free_port)
        if server_start "$port"; then
            started=1
            break
        fi
    done
    [ -n "$started" ] || die "the server did not start: $(tail -n 20 "$DIR/server.log" 2>/dev/null)"
    echo "$port" >"$DIR/port"
    if ! as_owner "$BIN/createdb" -h 127.0.0.1 -p "$port" -U "$OWNER" hookflow >/dev/null 2>&1; then
        stop
        die "createdb failed"
    fi
    if [ -n "${WATCH_PID:-}" ]; then
        # Stops the cluster once the process that asked for it has exited, however it ended.
        setsid nohup bash -c 'while kill -0 "$1" 2>/dev/null; do sleep 1; done; exec "$2" stop "$3"' \
            watcher "$WATCH_PID" "$(readlink -f "$0")" "$DIR" </dev/null >/dev/null 2>&1 &
    fi
    url
}

# Starts the server of the cluster in DIR on port $1.
server_start() {
    as_owner "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w -t 60 \
        -o "-p $1 -k $DIR -c listen_addresses=127.0.0.1 -c max_connections=200 ${HOOKFLOW_PG_SETTINGS--c fsync=off -c synchronous_commit=off -c full_page_writes=off}" \
        start </dev/null >/dev/null 2>&1
}

halt() {
    [ -f "$DIR/port" ] || die "no cluster in $DIR"
    find_bin
    set_owner
    as_owner "$BIN/pg_ctl" -D "$DIR/data" -m "$1" -w -t 60 stop </dev/null >/dev/null 2>&1 ||
        die "pg_ctl stop -m $1 failed: $(tail -n 20 "$DIR/server.log" 2>/dev/null)"
}

restart() {
    [ -f "$DIR/port" ] || die "no cluster in $DIR"
    find_bin
    set_owner
    if as_owner "$BIN/pg_ctl" -D "$DIR/data" status >/dev/null 2>&1; then
        return
    fi
    server_start "$(cat "$DIR/port")" ||
        die "the server did not start again: $(tail -n 20 "$DIR/server.log" 2>/dev/null)"
}

stop() {
    [ -e "$DIR" ] || return 0
    if [ -f "$DIR/data/postmaster.pid" ]; then
        find_bin
        set_owner
        as_owner "$BIN/pg_ctl" -D "$DIR/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$DIR"
}

run_psql() {
    local url=$1
    shift
    local psql
    psql=$(command -v psql || true)
    if [ -z "$psql" ]; then
        find_bin
        psql=$BIN/psql
    fi
    local args=()
    for sql in "$@"; do
        args+=(-c "$sql")
    done
    "$psql" -X -q -v ON_ERROR_STOP=1 "$url" "${args[@]}" >/dev/null
}

case "${1:-}" in
start)
    [ $# -ge 2 ] || die "usage: $0 start DIR [PID]"
    DIR=$(readlink -m "$2")
    WATCH_PID=${3:-}
    start
    ;;
stop)
    [ $# -eq 2 ] || die "usage: $0 stop DIR"
    DIR=$(readlink -m "$2")
    stop
    ;;
halt)
    [ $# -ge 2 ] && [ $# -le 3 ] || die "usage: $0 halt DIR [fast|immediate]"
    DIR=$(readlink -m "$2")
    case "${3:-fast}" in
    fast | immediate) halt "${3:-fast}" ;;
    *) die "usage: $0 halt DIR [fast|immediate]" ;;
    esac
    ;;
restart)
    [ $# -eq 2 ] || die "usage: $0 restart DIR"
    DIR=$(readlink -m "$2")
    restart
    ;;
psql)
    [ $# -ge 3 ] || die "usage: $0 psql URL SQL..."
    shift
    run_psql "$@"
    ;;
*)
    die "usage: $0 start DIR [PID] | stop DIR | halt DIR [MODE] | restart DIR | psql URL SQL..."
    ;;
esac
