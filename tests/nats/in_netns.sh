#!/bin/bash
# Runs a command in a network namespace of its own (loopback only, up) when
# it can make one (root), else as it is: a NATS cluster test then owns its
# loopback and its ports, whatever else runs on the machine.
# usage: in_netns.sh COMMAND [ARGS...]
if [ "$(id -u)" = 0 ] && command -v unshare >/dev/null && command -v ip >/dev/null &&
    unshare --net true 2>/dev/null; then
    echo "in a network namespace of its own"
    exec unshare --net sh -c 'ip link set lo up && exec "$@"' sh "$@"
fi
echo "not root: in the machine's network namespace"
exec "$@"
