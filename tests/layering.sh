#!/usr/bin/env bash
# The folders of src/ are the layers; this derives the folder-level include
# graph from the sources and fails when the layering is broken:
#   - a .c or .h directly in src/ (every file belongs to a layer);
#   - a private header included without its folder ("util.h" instead of
#     "common/util.h"), which would hide the edge from this check;
#   - a cycle between folders, except engine <-> transport (UCX callbacks
#     finish ops, ops post UCX requests);
#   - common/ or codec/ including a header of a layer above them, or any UCX
#     header (they build and are fuzzed without UCX);
#   - nats/ including any private header (it uses the public API only);
#   - engine/ including a transport/ header other than its interface
#     (transport.h, protocol.h);
#   - a protocol (AM, RMA, NIXL) named outside its own file and the
#     protocol table.
# Usage: tests/layering.sh [SOURCE_DIR]   (default: this checkout)
set -euo pipefail

root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$root/src"
fail=0
problem() { echo "layering: $*" >&2; fail=1; }

for f in *.c *.h; do
    [ -e "$f" ] && problem "src/$f is in no layer: move it into one of src/*/"
done

# "from to" per include of a private header, one line each.
edges=$(
    for f in */*.c */*.h; do
        [ -e "$f" ] || continue
        from=${f%%/*}
        sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$f" |
            while read -r inc; do
                case "$inc" in
                nixl_connect.h | nixl_connect_nats.h) ;;
                */*) [ -e "$inc" ] && echo "$from ${inc%%/*} $f" ||
                         echo "$from ? $f $inc" ;;
                *) echo "$from ? $f $inc" ;;
                esac
            done
    done
)

while read -r _ to f inc; do
    [ "$to" = "?" ] && problem "$f includes \"$inc\": name private headers from src/ (\"layer/file.h\")"
done <<<"$edges"

ucx_re='^[[:space:]]*#[[:space:]]*include[[:space:]]*<\(ucp\|uct\|ucs\|ucm\)/'
ucx=$(grep -Hn "$ucx_re" common/* codec/* 2>/dev/null || true)
while IFS= read -r hit; do
    [ -n "$hit" ] && problem "src/$hit: no UCX header below engine/ and transport/"
done <<<"$ucx"

graph=$(awk '$2 != "?" && $1 != $2 { print $1, $2 }' <<<"$edges" | sort | uniq -c)
echo "folder include graph (includes from -> to):"
echo "${graph:-  (none)}"

allowed_below() {   # the layers a layer may include
    case $1 in
    common) echo "common" ;;
    codec) echo "common codec" ;;
    engine | transport) echo "common codec engine transport" ;;
    *) echo "" ;;   # nats, and any new folder until it is placed here
    esac
}
while read -r _ from to; do
    [ -n "$from" ] || continue
    case " $(allowed_below "$from") " in
    *" $to "*) ;;
    *) problem "$from/ includes $to/ ($(awk -v a="$from" -v b="$to" '$1 == a && $2 == b { print $3 }' <<<"$edges" | sort -u | tr '\n' ' '))" ;;
    esac
done <<<"$graph"

# Cycles: reachability by transitive closure; two folders that reach each
# other are on a cycle, and only engine <-> transport may be.
cycles=$(awk '{ e[$2, $3] = 1; n[$2] = 1; n[$3] = 1 }
    END {
        for (k in n) for (i in n) for (j in n)
            if (e[i, k] && e[k, j]) e[i, j] = 1
        for (i in n) for (j in n)
            if (i < j && e[i, j] && e[j, i]) print i, j
    }' <<<"$graph")
while read -r a b; do
    [ -n "$a" ] || continue
    [ "$a $b" = "engine transport" ] && continue
    problem "cycle between $a/ and $b/"
done <<<"$cycles"

# The engine reaches the transport through its interface alone: transport.h,
# and protocol.h for the protocol an op carries.
while read -r from to f inc; do
    [ "$from $to" = "engine transport" ] || continue
    case "$inc" in
    transport/transport.h | transport/protocol.h) ;;
    *) problem "$f includes \"$inc\": the engine includes only transport/transport.h and transport/protocol.h" ;;
    esac
done <<<"$(
    for f in engine/*.c engine/*.h; do
        sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\(transport\/[^"]*\)".*/\1/p' "$f" |
            while read -r inc; do echo "engine transport $f $inc"; done
    done
)"

# Each protocol is named only in its own file and the protocol table
# (transport/protocol.c and .h); NIXL runs on RMA, so nixl_peer.c names RMA.
for proto in am rma nixl direct; do
    case $proto in
    am) names='nxc_am_[a-z_]+|nxc_protocol_am\b|NXC_PROTO_AM\b'; own="transport/am.c" ;;
    rma) names='nxc_rma_[a-z_]+|nxc_protocol_rma\b|NXC_PROTO_RMA\b'; own="transport/rma.c transport/nixl_peer.c" ;;
    nixl) names='nxc_nixl_op\b|nxc_protocol_nixl\b'; own="transport/nixl_peer.c" ;;
    direct) names='nxc_direct_op\b|nxc_protocol_direct\b|nxc_direct_usable\b'; own="transport/direct.c transport/direct.h" ;;
    esac
    for f in $(grep -lE "$names" */*.c */*.h 2>/dev/null || true); do
        case " $own transport/protocol.c transport/protocol.h " in
        *" $f "*) ;;
        *) problem "src/$f names the $proto protocol ($(grep -oE "$names" "$f" | sort -u | tr '\n' ' ')): call it through the protocol table (transport/protocol.h)" ;;
        esac
    done
done

[ "$fail" = 0 ] && echo "layering: ok"
exit "$fail"
