#!/bin/sh
# FerretDB in front of PostgreSQL (dockerfiles/postgres), as the unprivileged ferretdb user. It holds no
# password of its own: with FerretDB 1.x's default authentication each client's PLAIN user name and password
# are passed through to PostgreSQL, whose roles and grants decide (common/db.py). TLS to PostgreSQL comes
# with the database's own host; until then both run on the project's network only.
set -eu
pg_host="${PG_HOST:?PG_HOST: the PostgreSQL container or host}"
pg_port="${PG_PORT:-5432}"
pg_database="${PG_DATABASE:-ferretdb}"
exec setpriv --reuid=ferretdb --regid=ferretdb --init-groups \
    /usr/local/bin/ferretdb \
    --handler=postgresql \
    --postgresql-url="postgres://${pg_host}:${pg_port}/${pg_database}?sslmode=disable" \
    --state-dir=/var/lib/ferretdb \
    --listen-addr=:27017 \
    --debug-addr=127.0.0.1:8088 \
    --telemetry=disable \
    --test-capped-cleanup-interval=0 \
    --log-level="${DB_LOG_LEVEL:-WARN}" \
    "$@"
