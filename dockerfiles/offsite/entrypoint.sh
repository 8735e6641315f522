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
if [ "${OFFSITE_TLS:-0}" = 1 ]; then  # HTTPS only: offsite.serve_tls, the certificate mounted read-only
    for f in /run/tls/offsite.crt /run/tls/offsite.key; do
        [ -r "$f" ] || { echo "offsite: OFFSITE_TLS=1 but $f is not there" >&2; exit 2; }
    done
    set -- --tls --tls-cert /run/tls/offsite.crt --tls-key /run/tls/offsite.key "$@"
fi
exec restic-rest-server --path /srv/restic --listen :8000 --append-only --htpasswd-file /run/htpasswd "$@"
