#!/bin/sh
# PostgreSQL for FerretDB. First start: initdb. Every start: the roles and grants of roles.sql are applied
# with the passwords from the mounted secret files (so a changed file changes the password), over the unix
# socket only, then the server starts listening on the network.
# The superuser `postgres` has no password and is reachable only through this container's unix socket (peer
# authentication). Network clients (FerretDB, pg_basebackup) must come from the container's own networks
# ("samenet") and use scram-sha-256; everything else is rejected.
set -eu
secrets="${DB_SECRETS_DIR:-/run/secrets}"
pgdb="${PG_DATABASE:-ferretdb}"
schema="${DB_NAME:-aggregator}"
roles="owner importer reader backup"

for role in $roles; do
    if [ ! -s "$secrets/db-$role-password" ]; then
        echo "postgres: password file $secrets/db-$role-password is missing or empty" \
             "(mount the secrets directory's db-$role-password there)" >&2
        exit 2
    fi
done

as_postgres() { setpriv --reuid=postgres --regid=postgres --init-groups "$@"; }

# The volume holds the data directory as data/ (PGDATA), beside what restores put there (restore-<set>/,
# replaced-<set>-<time>/, failed-<set>/: snapshots/pgcopy.py). Before, the data directory was the volume
# itself: move it into data/ once (PG_VERSION last, so an interrupted move is finished at the next start).
volume="$(dirname "$PGDATA")"
if [ -s "$volume/PG_VERSION" ] || [ -d "$volume/.data-moving" ]; then
    echo "postgres: moving the data directory into $PGDATA (the volume's layout since the physical copy)" >&2
    mkdir -p "$volume/.data-moving"
    for entry in "$volume"/* "$volume"/.[!.]*; do
        case "${entry##*/}" in .data-moving|PG_VERSION) continue ;; esac
        [ -e "$entry" ] || [ -L "$entry" ] || continue
        mv "$entry" "$volume/.data-moving/"
    done
    if [ -e "$volume/PG_VERSION" ]; then mv "$volume/PG_VERSION" "$volume/.data-moving/"; fi
    mv "$volume/.data-moving" "$PGDATA"
fi
mkdir -p "$PGDATA"
chmod 0755 "$volume"
# A data directory restored from a set's physical copy arrives owned by root: hand it to postgres.
if [ -n "$(find "$PGDATA" ! -user postgres -print -quit)" ]; then
    chown -R postgres:postgres "$PGDATA"
fi
chmod 0700 "$PGDATA"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    as_postgres initdb --pgdata="$PGDATA" --username=postgres --auth-local=peer --auth-host=reject \
        --encoding=UTF8 --locale=C.UTF-8 --data-checksums >/dev/null
    cat >> "$PGDATA/postgresql.conf" <<CONF
# aggregator-dr (dockerfiles/postgres/entrypoint.sh)
listen_addresses = '*'
password_encryption = scram-sha-256
wal_level = replica
max_wal_senders = 4
CONF
    cat > "$PGDATA/pg_hba.conf" <<HBA
# aggregator-dr: the superuser only through the socket; the project's roles only from this container's own
# networks (samenet), with passwords; nothing else.
local   all          postgres                                  peer
host    $pgdb        owner,importer,reader,backup   samenet    scram-sha-256
host    replication  backup                         samenet    scram-sha-256
host    all          all                            all        reject
HBA
fi

# Passwords reach psql through files only it can read (never argv, never the environment).
private="$(mktemp -d /run/postgres-secrets.XXXXXX)"
trap 'rm -rf "$private"' EXIT
for role in $roles; do
    head -n 1 "$secrets/db-$role-password" | tr -d '\n' > "$private/$role"
done
chown -R postgres:postgres "$private"
chmod -R go-rwx "$private"

as_postgres pg_ctl --pgdata="$PGDATA" --silent --wait -o "-c listen_addresses=''" start >/dev/null
as_postgres psql --quiet --no-psqlrc --host=/var/run/postgresql --username=postgres --dbname=postgres \
    --set=ON_ERROR_STOP=1 --set=secrets="$private" --set=pgdb="$pgdb" --set=schema="$schema" \
    --file=/usr/local/share/aggregator-dr/roles.sql
as_postgres pg_ctl --pgdata="$PGDATA" --silent --wait --mode=fast stop >/dev/null
rm -rf "$private"
trap - EXIT

# Who may connect over the network, written at every start outside the data directory (so that a physical
# copy carries none of it): the project's roles from this container's own networks (samenet) with their
# passwords, over TLS only when PG_TLS=1 (db.tls: the certificate and key mounted read-only at /run/tls/),
# nothing else. PG_FROM=all (a database on its own host, its port published for the Aggregator's backup
# container) takes them from any address, and only with PG_TLS=1.
conf="$(mktemp -d /run/postgres-conf.XXXXXX)"
from=samenet
if [ "${PG_FROM:-samenet}" = all ]; then
    [ "${PG_TLS:-0}" = 1 ] || { echo "postgres: PG_FROM=all needs PG_TLS=1 (no password in plaintext)" >&2; exit 2; }
    from=all
fi
if [ "${PG_TLS:-0}" = 1 ]; then
    for f in /run/tls/postgres.crt /run/tls/postgres.key; do
        [ -r "$f" ] || { echo "postgres: PG_TLS=1 but $f is not there" >&2; exit 2; }
    done
    install -m 0644 /run/tls/postgres.crt "$conf/server.crt"
    install -m 0600 /run/tls/postgres.key "$conf/server.key"
    conn=hostssl
    set -- -c ssl=on -c ssl_cert_file="$conf/server.crt" -c ssl_key_file="$conf/server.key" \
        -c ssl_min_protocol_version=TLSv1.3 "$@"
else
    conn=host
fi
cat > "$conf/pg_hba.conf" <<HBA
local   all          postgres                                  peer
$conn $pgdb        owner,importer,reader,backup   $from    scram-sha-256
$conn replication  backup                         $from    scram-sha-256
host    all          all                            all        reject
HBA
chown -R postgres:postgres "$conf"
chmod 0700 "$conf"

exec setpriv --reuid=postgres --regid=postgres --init-groups postgres -D "$PGDATA" -c hba_file="$conf/pg_hba.conf" "$@"
