#!/bin/bash
# The installed prefix is all a user gets: install this build, move the
# prefix elsewhere (nothing may point back at the build tree), then build
# tests/consumer against it with pkg-config and with find_package, run a
# transfer between two processes with each, and one with the installed nxc.
# usage: run.sh BUILD_DIR SOURCE_DIR
set -eu -o pipefail
BUILD=$1
SRC=$2
TMP=$(mktemp -d "${TMPDIR:-/tmp}/nxc-consumer.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
unset LD_LIBRARY_PATH PKG_CONFIG_PATH CMAKE_PREFIX_PATH

cmake --install "$BUILD" --prefix "$TMP/staged" >/dev/null
mv "$TMP/staged" "$TMP/prefix"
P=$TMP/prefix
LIBDIR=$(dirname "$(find "$P" -name libnixl_connect.so -print -quit)")

# grep -q stops reading at the first match: under pipefail the writer's
# SIGPIPE would then fail the check at random, so grep reads it all.
has() {   # has PATTERN: standard input contains it
    grep -e "$1" >/dev/null
}

pair() {   # pair BINARY: serve | get, two processes
    "$1" serve | "$1" get
}

echo "== pkg-config"
PCDIR=$LIBDIR/pkgconfig
cc -std=c11 -Wall -Werror -o "$TMP/consumer_pc" "$SRC/tests/consumer/consumer.c" \
   $(PKG_CONFIG_PATH=$PCDIR pkg-config --cflags --libs nixl_connect) -Wl,-rpath,"$LIBDIR"
pair "$TMP/consumer_pc"

echo "== pkg-config --static (libnixl_connect.a)"
cc -std=c11 -Wall -Werror -o "$TMP/consumer_static" "$SRC/tests/consumer/consumer.c" \
   $(PKG_CONFIG_PATH=$PCDIR pkg-config --cflags nixl_connect) \
   "$LIBDIR/libnixl_connect.a" $(PKG_CONFIG_PATH=$PCDIR pkg-config --libs-only-l --static nixl_connect | sed 's/-lnixl_connect//')
! ldd "$TMP/consumer_static" | has libnixl_connect
pair "$TMP/consumer_static"

if [ -f "$PCDIR/nixl_connect_nats.pc" ]; then
    echo "== find_package(nixl_connect CONFIG COMPONENTS nats)"
    cmake -S "$SRC/tests/consumer" -B "$TMP/cm" -DCMAKE_PREFIX_PATH="$P" >/dev/null
    cmake --build "$TMP/cm" >/dev/null
    ldd "$TMP/cm/consumer" | has "$P/.*libnixl_connect_nats.so.0"
    pair "$TMP/cm/consumer"
else
    echo "== find_package: skipped (built without the NATS module)"
fi

echo "== installed nxc"
ldd "$P/bin/nxc" | has "libnixl_connect.so.0 => $P/"
head -c 3000000 /dev/urandom >"$TMP/in.bin"
"$P/bin/nxc" serve "$TMP/in.bin" 2>/dev/null | "$P/bin/nxc" get - "$TMP/out.bin" 2>/dev/null
cmp "$TMP/in.bin" "$TMP/out.bin"
[ -f "$P/share/man/man1/nxc.1" ]
echo "consumer: all passed"
