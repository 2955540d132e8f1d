#!/usr/bin/env bash
# Moves the flat src/ into one folder per layer (issue 13) and rewrites every
# reference to the moved files. Mechanical and idempotent: run it on any main
# that still has the flat layout (or part of it), commit the result alone,
# and a second run changes nothing.
#
#   scripts/relayout.sh          move, rewrite, print what changed
#   scripts/relayout.sh --check  exit 1 if anything is left to move or rewrite
#
# What it does, from the table below:
#   1. git mv src/OLD src/NEW for each row (skipped when already moved);
#   2. #include "OLD.h" (also "../src/OLD.h", "../../src/OLD.h") becomes
#      #include "LAYER/OLD.h" in C sources everywhere: private headers are
#      named from src/, so every include line says which layer it reaches;
#   3. every other mention of src/OLD (CMake source lists, scripts, docs,
#      README, CONTRIBUTING) becomes src/NEW;
#   4. CMake's glob of src/*.c becomes one glob per layer folder.
# A .c or .h directly in src/ that the table does not name stops the script
# before it moves anything: add a row for it and run again.
set -euo pipefail

# src/OLD                 src/NEW
MAP='
bytes.h                 common/bytes.h
encoding.c              common/encoding.c
encoding.h              common/encoding.h
error.c                 common/error.c
error.h                 common/error.h
log.c                   common/log.c
log.h                   common/log.h
names.c                 common/names.c
util.c                  common/util.c
util.h                  common/util.h
blob.c                  codec/blob.c
ctrl.c                  codec/ctrl.c
ctrl.h                  codec/ctrl.h
device.c                codec/device.c
json.c                  codec/json.c
json.h                  codec/json.h
metadata.c              codec/metadata.c
metadata.h              codec/metadata.h
nixl_blob.c             codec/nixl_blob.c
nixl_blob.h             codec/nixl_blob.h
connector.c             engine/connector.c
connector.h             engine/connector.h
op.c                    engine/op.c
op.h                    engine/op.h
peer.c                  engine/peer.c
peer.h                  engine/peer.h
am.c                    transport/am.c
nixl_peer.c             transport/nixl_peer.c
nixl_peer.h             transport/nixl_peer.h
registration.c          transport/registration.c
registration.h          transport/registration.h
rma.c                   transport/rma.c
transport.c             transport/transport.c
transport.h             transport/transport.h
tls_hint.c              transport/tls_hint.c
'
# Layer folders, lowest first; CMake globs them in this order.
LAYERS="common codec engine transport"
# Never rewritten: history names the files as they were.
KEEP_AS_IS='^(CHANGELOG\.md|scripts/relayout\.sh)$'

CHECK=0
[ "${1:-}" = "--check" ] && CHECK=1

cd "$(git rev-parse --show-toplevel)"
rows() { printf '%s\n' "$MAP" | awk 'NF == 2'; }
changed=0

refuse_unmapped() {
    local f name unmapped=""
    for f in src/*.c src/*.h; do
        [ -e "$f" ] || continue
        name=${f#src/}
        rows | awk -v n="$name" '$1 == n { found = 1 } END { exit !found }' ||
            unmapped="$unmapped $f"
    done
    if [ -n "$unmapped" ]; then
        echo "relayout: not in the table of $0:$unmapped" >&2
        echo "relayout: add a row (src/OLD -> LAYER/OLD) for each, then run again" >&2
        exit 2
    fi
}

move_files() {
    local old new
    while read -r old new; do
        if [ -e "src/$old" ] && [ -e "src/$new" ]; then
            echo "relayout: both src/$old and src/$new exist; resolve by hand" >&2
            exit 2
        elif [ -e "src/$old" ]; then
            changed=1
            [ "$CHECK" = 1 ] && { echo "to move: src/$old"; continue; }
            mkdir -p "src/$(dirname "$new")"
            git mv "src/$old" "src/$new"
        fi
    done < <(rows)
}

# A run of adjacent includes of private headers is kept in alphabetical
# order (layer, then file), as the flat names were.
SORT_RUNS='s{((?:^#include "(?:'"${LAYERS// /|}"')/[^\n]*\n)+)}{join "", sort split /(?<=\n)/, $1}gme'

# One sed script per including file: a header of the same name next to the
# includer (quote includes look there first) is that one, not ours.
rewrite_includes() {
    local f dir old new script
    while IFS= read -r f; do
        dir=$(dirname "$f")
        script=""
        while read -r old new; do
            case "$old" in *.h) ;; *) continue ;; esac
            [ -e "$dir/$old" ] && [ "$dir/$old" != "src/$new" ] && continue
            script="$script
s@^([[:space:]]*#[[:space:]]*include[[:space:]]+\")((\\.\\./)*src/)?${old//./\\.}\"@\\1${new}\"@"
        done < <(rows)
        if ! sed -E "$script" "$f" | perl -0pe "$SORT_RUNS" | cmp -s - "$f"; then
            changed=1
            if [ "$CHECK" = 1 ]; then echo "to rewrite (includes): $f"; continue; fi
            sed -E -i "$script" "$f"
            perl -0pi -e "$SORT_RUNS" "$f"
        fi
    done < <(git ls-files -- '*.c' '*.h' '*.cc' '*.cpp' '*.hpp')
}

# src/OLD anywhere else (CMake, shell, Python, Markdown, suppressions). A
# path character before src/ other than '/' (foo_src/, .src/), or a word
# character after the name (src/util.cpp, src/util.c.in), means another file.
rewrite_paths() {
    local f perl=""
    local old new
    while read -r old new; do
        perl="$perl s{(?<![\\w.-])src/\\Q$old\\E(?!\\w|\\.\\w)}{src/$new}g;"
    done < <(rows)
    local globs=""
    for l in $LAYERS; do globs="$globs\\n     \\\${CMAKE_SOURCE_DIR}/src/$l/*.c"; done
    perl="$perl s{[ \\t]*\\\$\\{CMAKE_SOURCE_DIR\\}/src/\\*\\.c}{$globs}g;"
    while IFS= read -r -d '' f; do
        [[ "$f" =~ $KEEP_AS_IS ]] && continue
        [ -f "$f" ] && grep -Iq . "$f" || continue   # text files only
        if ! perl -pe "$perl" "$f" | cmp -s - "$f"; then
            changed=1
            if [ "$CHECK" = 1 ]; then echo "to rewrite (paths): $f"; continue; fi
            perl -pi -e "$perl" "$f"
        fi
    done < <(git ls-files -z)
}

refuse_unmapped
move_files
rewrite_includes
rewrite_paths

if [ "$CHECK" = 1 ]; then
    [ "$changed" = 0 ] && echo "relayout: nothing to do" && exit 0
    exit 1
fi
if [ "$changed" = 0 ]; then
    echo "relayout: nothing to do (already laid out)"
else
    git add -A src
    git status --short
    echo "relayout: done; build, test, and commit this alone"
fi
