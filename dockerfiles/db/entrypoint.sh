#!/bin/sh
# Reads the database password from a mounted secret file (never from the image, argv or docker inspect),
# then runs FerretDB as the unprivileged ferretdb user. On first start FerretDB creates that user.
set -eu
pwfile="${DB_PASSWORD_FILE:-/run/secrets/db-password}"
if [ ! -s "$pwfile" ]; then
    echo "db: password file $pwfile is missing or empty (mount the secrets directory's db-password there)" >&2
    exit 2
fi
FERRETDB_SETUP_PASSWORD="$(head -n 1 "$pwfile")"
export FERRETDB_SETUP_PASSWORD
chown ferretdb:ferretdb /var/lib/ferretdb /var/lib/ferretdb/data 2>/dev/null || true
exec setpriv --reuid=ferretdb --regid=ferretdb --init-groups \
    /usr/local/bin/ferretdb \
    --handler=sqlite \
    --sqlite-url=file:/var/lib/ferretdb/data/ \
    --state-dir=/var/lib/ferretdb \
    --listen-addr=:27017 \
    --debug-addr=127.0.0.1:8088 \
    --telemetry=disable \
    --test-enable-new-auth \
    --setup-database="${DB_NAME:-aggregator}" \
    --setup-username="${DB_USER:-aggregator}" \
    --log-level="${DB_LOG_LEVEL:-WARN}" \
    "$@"
