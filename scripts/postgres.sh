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
#   scripts/postgres.sh start-tls DIR [PID]
#                                        as start, for a cluster that accepts TLS connections
#                                        only (pg_hba.conf `hostssl`): it makes a self-signed
#                                        CA, DIR/ca.pem, and a certificate it signed for
#                                        localhost and 127.0.0.1 (DIR/server.pem, its key
#                                        DIR/server.key), with openssl (installed if missing).
#                                        The URL it prints checks the server with that CA:
#                                        ...?sslmode=verify-full&sslrootcert=DIR/ca.pem
#   scripts/postgres.sh ca DIR           makes a self-signed CA in DIR (ca.pem, ca.key) and
#                                        prints the path of ca.pem: another CA than a
#                                        cluster's, for tests that a certificate is refused.
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
    if [ -f "$DIR/ca.pem" ]; then
        echo "postgres://$OWNER@127.0.0.1:$(cat "$DIR/port")/hookflow?sslmode=verify-full&sslrootcert=$DIR/ca.pem"
    else
        echo "postgres://$OWNER@127.0.0.1:$(cat "$DIR/port")/hookflow"
    fi
}

# Makes sure the openssl command is there, installing it if needed.
find_openssl() {
    command -v openssl >/dev/null 2>&1 && return
    [ "$(id -u)" = 0 ] || die "openssl is not installed and installing it needs root: apt-get install openssl"
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y -qq openssl >/dev/null 2>&1; then
        apt-get update -qq >/dev/null 2>&1 || die "apt-get update failed"
        apt-get install -y -qq openssl >/dev/null 2>&1 || die "apt-get install openssl failed"
    fi
}

# Makes a self-signed CA in the directory $1: ca.pem and its key ca.key (ECDSA P-256).
make_ca() {
    find_openssl
    mkdir -p "$1"
    openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
        -keyout "$1/ca.key" -out "$1/ca.pem" -days 3650 -subj "/CN=hookflow test CA" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" >"$1/openssl.log" 2>&1 ||
        die "openssl could not make a CA: $(cat "$1/openssl.log")"
}

# Turns TLS on for the cluster in DIR, and off every connection without it but the Unix
# socket's: a CA, a server certificate it signed for localhost and 127.0.0.1, the settings.
setup_tls() {
    make_ca "$DIR"
    printf '%s\n' "subjectAltName=DNS:localhost,IP:127.0.0.1" "basicConstraints=critical,CA:FALSE" \
        "keyUsage=critical,digitalSignature" "extendedKeyUsage=serverAuth" >"$DIR/server.ext"
    {
        openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
            -keyout "$DIR/server.key" -out "$DIR/server.csr" -subj "/CN=localhost" &&
            openssl x509 -req -in "$DIR/server.csr" -CA "$DIR/ca.pem" -CAkey "$DIR/ca.key" \
                -set_serial "0x$(openssl rand -hex 16)" -days 3650 -extfile "$DIR/server.ext" \
                -out "$DIR/server.pem"
    } >"$DIR/openssl.log" 2>&1 || die "openssl could not make the server's certificate: $(cat "$DIR/openssl.log")"
    # The server refuses a key that others can read.
    chown "$OWNER" "$DIR/server.key" "$DIR/server.pem"
    chmod 600 "$DIR/server.key"
    printf '%s\n' "ssl = on" "ssl_cert_file = '$DIR/server.pem'" "ssl_key_file = '$DIR/server.key'" \
        >>"$DIR/data/postgresql.conf"
    printf '%s\n' "local all all trust" "hostssl all all 127.0.0.1/32 trust" \
        "hostssl all all ::1/128 trust" >"$DIR/data/pg_hba.conf"
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
    if [ -n "${TLS:-}" ]; then
        setup_tls
    fi
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
    # The TLS cluster takes TLS connections only.
    if [ -n "${TLS:-}" ]; then
        export PGSSLMODE=require
    fi
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
start-tls)
    [ $# -ge 2 ] || die "usage: $0 start-tls DIR [PID]"
    DIR=$(readlink -m "$2")
    WATCH_PID=${3:-}
    TLS=1
    start
    ;;
ca)
    [ $# -eq 2 ] || die "usage: $0 ca DIR"
    make_ca "$(readlink -m "$2")"
    echo "$(readlink -m "$2")/ca.pem"
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
    die "usage: $0 start DIR [PID] | start-tls DIR [PID] | ca DIR | stop DIR | halt DIR [MODE] | restart DIR | psql URL SQL..."
    ;;
esac
