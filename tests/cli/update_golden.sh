#!/bin/bash
# Regenerates the golden help texts and usage-error messages from a built
# nxc: run it after an intended change of either, and review the diff before
# committing.
set -eu
NXC=${1:?usage: $0 path/to/nxc}
G=$(dirname "$0")/golden
mkdir -p "$G"
"$NXC" --help       >"$G/main.txt"
"$NXC" bench --help >"$G/bench.txt"
"$NXC" serve --help >"$G/serve.txt"
"$NXC" get --help   >"$G/get.txt"
"$NXC" recv --help  >"$G/recv.txt"
"$NXC" put --help   >"$G/put.txt"
"$NXC" info --help  >"$G/info.txt"
"$NXC" kvbench --help >"$G/kvbench.txt"
NXC_UPDATE_GOLDEN=1 bash "$(dirname "$0")/args.sh" "$NXC" "$G" >/dev/null
echo "updated $G"
