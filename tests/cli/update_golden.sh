#!/bin/bash
# Regenerates the golden help texts from a built nxc: run it after an
# intended change of a help text, and review the diff before committing.
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
echo "updated $G"
