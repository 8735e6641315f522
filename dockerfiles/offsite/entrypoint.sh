#!/bin/sh
# Start rest-server append-only, with one user whose password is the first line of the secret file.
set -eu
: "${OFFSITE_USER:?OFFSITE_USER is not set}"
secret=/run/secrets/offsite-http-password
if [ ! -s "$secret" ]; then
    echo "offsite: the password file $secret is missing or empty" >&2
    exit 2
fi
umask 077
head -n 1 "$secret" | tr -d '\n' | htpasswd -c -B -i /run/htpasswd "$OFFSITE_USER"
exec restic-rest-server --path /srv/restic --listen :8000 --append-only --htpasswd-file /run/htpasswd "$@"
