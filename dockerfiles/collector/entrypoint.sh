#!/bin/sh
# Host key and the aggregator's public key come from mounted files, so that the aggregator can pin the
# host key it expects: /run/collector/host_key (private, ed25519) and /run/collector/authorized_keys.
# With BROKER (host:port) and BROKER_COLLECTOR (this collector's name) set, the publisher runs beside sshd as
# the collector user, with the broker user's password and the CA from mounted files
# (/run/collector/broker-password, /run/collector/broker-ca.crt): their paths are in its arguments, never the
# password itself.
set -eu
if [ ! -s /run/collector/host_key ] || [ ! -s /run/collector/authorized_keys ]; then
    echo "collector: mount /run/collector/host_key and /run/collector/authorized_keys" >&2
    exit 2
fi
install -m 0600 /run/collector/host_key /etc/ssh/ssh_host_ed25519_key
install -o collector -g collector -m 0600 /run/collector/authorized_keys /home/collector/.ssh/authorized_keys
if [ -n "${BROKER:-}" ]; then
    if [ -z "${BROKER_COLLECTOR:-}" ] || [ ! -s /run/collector/broker-password ] \
            || [ ! -s /run/collector/broker-ca.crt ]; then
        echo "collector: BROKER needs BROKER_COLLECTOR, /run/collector/broker-password and" \
             "/run/collector/broker-ca.crt" >&2
        exit 2
    fi
    # The mounted files belong to the host's user: copies the collector user may read, outside the archive.
    install -d -o collector -g collector -m 0700 /run/publisher
    install -o collector -g collector -m 0600 /run/collector/broker-password /run/publisher/password
    install -o collector -g collector -m 0644 /run/collector/broker-ca.crt /run/publisher/ca.crt
    runuser -u collector -- python3 -m collector.publisher --archive /srv/collector/archive \
        --collector "$BROKER_COLLECTOR" --broker "$BROKER" --password-file /run/publisher/password \
        --ca-file /run/publisher/ca.crt --state /srv/collector/publisher-state.json &
fi
exec /usr/sbin/sshd -D -e
