#!/bin/sh
# FerretDB in front of PostgreSQL (dockerfiles/postgres), as the unprivileged ferretdb user. It holds no
# password of its own: with FerretDB 1.x's default authentication each client's PLAIN user name and password
# are passed through to PostgreSQL, whose roles and grants decide (database/db.py).
#
# DB_TLS=1 (db.tls, dr/services/stack.db_spec): clients reach FerretDB over TLS only, on port 27018, with the
# certificate and key mounted read-only at /run/tls/db.crt and /run/tls/db.key; the plaintext listener stays
# on the container's own loopback (27017), where only the image's health check reaches it.
set -eu
pg_host="${PG_HOST:?PG_HOST: the PostgreSQL container or host}"
pg_port="${PG_PORT:-5432}"
pg_database="${PG_DATABASE:-ferretdb}"
# To PostgreSQL: TLS verified against the CA (mounted at /run/tls/ca.crt) when DB_TLS=1, as PostgreSQL then
# accepts nothing else from the network.
pg_tls="sslmode=disable"
if [ "${DB_TLS:-0}" = 1 ]; then
    pg_tls="sslmode=verify-full&sslrootcert=/run/tls/ca.crt"
    for f in /run/tls/db.crt /run/tls/db.key /run/tls/ca.crt; do
        [ -r "$f" ] || { echo "db-entrypoint: DB_TLS=1 but $f is not there" >&2; exit 1; }
    done
    # The key is the host's (root, 0600): FerretDB's user gets a private copy.
    install -d -o ferretdb -g ferretdb -m 0700 /run/ferretdb-tls
    install -o ferretdb -g ferretdb -m 0600 /run/tls/db.key /run/ferretdb-tls/db.key
    install -o ferretdb -g ferretdb -m 0644 /run/tls/db.crt /run/ferretdb-tls/db.crt
    set -- --listen-addr=127.0.0.1:27017 --listen-tls=:27018 \
        --listen-tls-cert-file=/run/ferretdb-tls/db.crt --listen-tls-key-file=/run/ferretdb-tls/db.key "$@"
else
    set -- --listen-addr=:27017 "$@"
fi
exec setpriv --reuid=ferretdb --regid=ferretdb --init-groups \
    /usr/local/bin/ferretdb \
    --handler=postgresql \
    --postgresql-url="postgres://${pg_host}:${pg_port}/${pg_database}?${pg_tls}" \
    --state-dir=/var/lib/ferretdb \
    --debug-addr=127.0.0.1:8088 \
    --telemetry=disable \
    --test-capped-cleanup-interval=0 \
    --log-level="${DB_LOG_LEVEL:-WARN}" \
    "$@"
