#!/bin/bash
# The progress line of put and recv (the same code serves get and serve):
# on a terminal it shows a percent and a rate (like curl), counted by
# nxc_op_bytes_done(); with standard error in a file nothing but the final
# rate line. nxc moves the 256 MiB file in 4 messages of 64 MiB, over
# UCX_TLS=tcp; the peer is paused and resumed in a loop (SIGSTOP 150 ms,
# SIGCONT 20 ms: even at 6 GB/s, 120 MB a window, the first window ends
# with at most 1 message done and the second with at most 3) so that the
# line is refreshed (every 100 ms) with two different counts before the end
# however fast the machine is.
source "$(dirname "$0")/lib.sh"
PTY_RUN="python3 $(dirname "$0")/pty_run.py"
export UCX_TLS=tcp
SIZE=$((256 * 1024 * 1024))
truncate -s $SIZE "$TMP/src.bin"

# throttle PID_RUNNING PID_PAUSED: pauses the second while the first runs
throttle() {
    while kill -0 "$1" 2>/dev/null; do
        kill -STOP "$2" 2>/dev/null; sleep 0.15
        kill -CONT "$2" 2>/dev/null; sleep 0.02
    done
    kill -CONT "$2" 2>/dev/null
}

# A line with a percent, "of 256 MiB" and a rate, then the rate line.
check_tty() { # what log
    local text
    text=$(tr '\r' '\n' <"$2")
    grep -Eq '^.\[K +[0-9]+%  [0-9.]+ [KMG]?i?B of 256 MiB  [0-9.]+ [KMG]?i?B/s  ETA [0-9]+:[0-9]{2}' \
        <<<"$text" && pass || fail "$1: no progress line with percent and rate: $(cat -v "$2")"
    grep -Eq "^(.\[K)?(sent|received) $SIZE bytes" <<<"$text" && pass \
        || fail "$1: no rate line: $(cat -v "$2")"
}

check_quiet() { # what err-file
    if grep -q $'[\r\e%]' "$2" || [ "$(wc -l <"$2")" -ne 1 ]; then
        fail "$1: printed progress into a file: $(cat -v "$2")"
    else
        pass
    fi
}

# start_recv ARGS: recv in the background (stderr $TMP/recv.err), metadata in $TMP/md
start_recv() {
    : >"$TMP/md"
    "$@" >"$TMP/md" &
    RECV_PID=$!
    for _ in $(seq 1 200); do
        [ "$(wc -l <"$TMP/md")" -ge 1 ] && return 0
        sleep 0.05
    done
    fail "recv printed no metadata"
    return 1
}

# 1. put on a terminal, recv's stderr in a file
if start_recv "$NXC" recv --timeout 60 --size $SIZE "$TMP/out1.bin" 2>"$TMP/recv.err"; then
    $PTY_RUN "$TMP/put.tty" "$NXC" put --timeout 60 "$TMP/src.bin" "@$TMP/md" &
    PUT_PID=$!
    throttle $PUT_PID $RECV_PID
    wait $PUT_PID && pass || fail "put: exit $?: $(cat -v "$TMP/put.tty")"
    wait $RECV_PID && pass || fail "recv: exit $?: $(cat "$TMP/recv.err")"
    check_tty put "$TMP/put.tty"
    check_quiet recv "$TMP/recv.err"
fi

# 2. recv on a terminal (the passive side counts what landed), put's in a file
if start_recv $PTY_RUN "$TMP/recv.tty" "$NXC" recv --timeout 60 --size $SIZE \
        "$TMP/out2.bin"; then
    "$NXC" put --timeout 60 "$TMP/src.bin" "@$TMP/md" 2>"$TMP/put.err" &
    PUT_PID=$!
    throttle $PUT_PID $PUT_PID   # pauses put itself until it is done
    wait $PUT_PID && pass || fail "put: exit $?: $(cat "$TMP/put.err")"
    wait $RECV_PID && pass || fail "recv: exit $?: $(cat -v "$TMP/recv.tty")"
    check_tty recv "$TMP/recv.tty"
    check_quiet put "$TMP/put.err"
fi
cmp -s "$TMP/src.bin" "$TMP/out2.bin" && pass || fail "recv: the copy differs"
finish
