#!/bin/sh
# Host key and the aggregator's public key come from mounted files, so that the aggregator can pin the
# host key it expects: /run/collector/host_key (private, ed25519) and /run/collector/authorized_keys.
set -eu
if [ ! -s /run/collector/host_key ] || [ ! -s /run/collector/authorized_keys ]; then
    echo "collector: mount /run/collector/host_key and /run/collector/authorized_keys" >&2
    exit 2
fi
install -m 0600 /run/collector/host_key /etc/ssh/ssh_host_ed25519_key
install -o collector -g collector -m 0600 /run/collector/authorized_keys /home/collector/.ssh/authorized_keys
exec /usr/sbin/sshd -D -e
