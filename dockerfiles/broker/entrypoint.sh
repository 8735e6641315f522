#!/bin/sh
# Start RabbitMQ in the foreground as the rabbitmq user. The mounted files (root's, 0600 on the host) are
# copied into /run/broker for it: the server's certificate and key, the CA, and the definitions file (users
# with their password hashes, permissions, topology) the host wrote (dr/services/broker.py).
set -eu
in=/run/secrets
for f in broker.crt broker.key ca.crt broker-definitions.json; do
    if [ ! -s "$in/$f" ]; then
        echo "broker: $in/$f is missing or empty (the host mounts it: dr/services/broker.spec)" >&2
        exit 2
    fi
done
umask 077
install -d -o rabbitmq -g rabbitmq -m 0700 /run/broker
for f in broker.crt broker.key ca.crt; do
    install -o rabbitmq -g rabbitmq -m 0400 "$in/$f" "/run/broker/$f"
done
install -o rabbitmq -g rabbitmq -m 0400 "$in/broker-definitions.json" /run/broker/definitions.json
# A new volume is a copy of the image's folder; make sure the state stays the rabbitmq user's.
chown rabbitmq:rabbitmq /var/lib/rabbitmq
chmod 0750 /var/lib/rabbitmq
export HOME=/var/lib/rabbitmq
exec setpriv --reuid=rabbitmq --regid=rabbitmq --init-groups /usr/lib/rabbitmq/bin/rabbitmq-server
