#!/bin/bash
# Bad arguments: exit status 2, nothing on stdout, exactly one line on stderr
# of the form "nxc: <what was wrong>" (and mentioning WORD when given).
source "$(dirname "$0")/lib.sh"

# bad WORD ARGS...: WORD must appear in the message ("" for any)
bad() {
    local word=$1
    shift
    run "$@"
    local lines
    lines=$(wc -l <"$TMP/err")
    if [ "$RC" -ne 2 ]; then fail "nxc $*: exit $RC, expected 2 ($(head -c 200 "$TMP/err"))"; return; fi
    if [ -s "$TMP/out" ]; then fail "nxc $*: wrote to stdout"; return; fi
    if [ "$lines" -ne 1 ]; then fail "nxc $*: $lines lines on stderr, expected 1:"; cat "$TMP/err" >&2; return; fi
    if ! grep -q '^nxc: ' "$TMP/err"; then fail "nxc $*: message lacks 'nxc: ': $(cat "$TMP/err")"; return; fi
    if [ -n "$word" ] && ! grep -qF -- "$word" "$TMP/err"; then
        fail "nxc $*: message does not mention '$word': $(cat "$TMP/err")"; return
    fi
    pass
}

bad "missing command"
bad "unknown command 'frobnicate'"  frobnicate
bad "unknown option '--frob'"       --frob
bad "unknown command 'nope'"        help nope
bad "too many arguments"            help bench serve
bad "--sizes"        bench --sizes
bad "12Q"            bench --sizes 12Q
bad "larger than"    bench --sizes 2G
bad "bad list"       bench --sizes 8,,64
bad "--descs"        bench --descs 0
bad "--descs"        bench --descs 1,x
bad "fly"            bench --ops read,fly
bad "--iters"        bench --iters 0
bad "--iters"        bench --iters -5
bad "cannot be used together" bench --iters 10 --duration 1
bad "not supported" bench --mem cuda
bad "unknown memory kind" bench --mem floppy
bad "takes no value" bench --json=1
bad "unexpected argument 'extra'" bench extra
bad "--timeout"      bench --timeout -1
bad "--duration"     bench --duration abc
bad "--warmup"       bench --warmup many
bad "--tls"          bench --tls ''
bad "unknown option '--frob'" bench --frob
bad "two names"      bench --netns onlyone
bad "two names"      bench --netns a,b,c
bad "two names"      bench --netns ,b
bad "two names"      bench --netns a/x,b
bad "two names"      bench --net-devices eth0
bad "missing FILE"   serve
bad "unexpected argument 'b'" serve a b
bad "--timeout"      serve --timeout 0 file
bad "missing OUT"    get
bad "unexpected argument 'c'" get a b c
bad "--timeout"      get --timeout x out
bad "needs a value"  get out --timeout
bad "unknown option '-x'" get -x out
bad "missing OUT"    recv --size 1K
bad "missing --size" recv out
bad "--size"         recv --size 12Q out
bad "unexpected argument 'b'" recv --size 1K a b
bad "unknown option '--size'" serve --size 1K file
bad "missing FILE"   put
bad "unexpected argument 'c'" put a b c
bad "--timeout"      put --timeout 0 file
# --nats and --subject come together, and --nats brings the metadata
bad "--nats needs --subject"   serve --nats nats://127.0.0.1:4222 file
bad "--subject needs --nats"   get --subject s out
bad "--subject needs --nats"   recv --size 1K --subject s out
bad "--nats needs --subject"   put --nats nats://127.0.0.1:4222 file
bad "non-empty"                get --nats '' --subject s out
bad "give only OUT"            get --nats nats://127.0.0.1:4222 --subject s md out
bad "give only FILE"           put --nats nats://127.0.0.1:4222 --subject s file md
# '-' for data where standard input/output is already taken, --json
bad "cannot both come from standard input" put -
bad "cannot both come from standard input" put - -
bad "needs --nats"                          recv --size 1K -
bad "cannot both use standard output"       get --json md -
bad "takes no value"                        get --json=1 out
bad "is ambiguous"                          recv --s 1K out
bad "unexpected argument 'x'"               info x
bad "unknown option '--frob'"               info --frob

finish
