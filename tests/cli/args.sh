#!/bin/bash
# Bad arguments: exit status 2, nothing on stdout, exactly one line on stderr
# of the form "nxc: <what was wrong>" (and mentioning WORD when given). The
# lines themselves must match golden/args.txt byte for byte, so that a change
# of wording is a decision; after an intended one, regenerate it with
#   bash tests/cli/update_golden.sh build/tools/nxc
source "$(dirname "$0")/lib.sh"
TRANSCRIPT=$TMP/transcript
: >"$TRANSCRIPT"

# bad WORD ARGS...: WORD must appear in the message ("" for any)
bad() {
    local word=$1
    shift
    run "$@"
    local a
    { printf '$ nxc'; for a in "$@"; do printf ' %s' "${a:-''}"; done; echo
      cat "$TMP/err"; } >>"$TRANSCRIPT"
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
bad "takes no value"                        info --json=1
# the same rules for the other commands' options and values
bad "unknown option '-x'"      bench -xh
bad "bad list ''"              bench --sizes=
bad "needs a value"            bench --tls
bad "'nan'"                    bench --timeout nan
bad "'99999999999999999999999'" bench --iters 99999999999999999999999
bad "--passive-spin-us"        bench --passive-spin-us -1
bad "'' is not a positive"     serve --timeout= file
bad "takes no value"           serve --nix=1 file
bad "is ambiguous"             serve --n x file
bad "--nats-creds needs --nats" serve --nats-creds c file
bad "--nixl is for serve and recv" get --nixl out
bad "--nixl is for serve and recv" put --nixl file md
bad "--direct-local is for serve and recv" get --direct-local out
bad "--direct-local does not go with --nixl" serve --nixl --direct-local file
bad "larger than 1 TiB"        recv --size 2000G out
bad "unexpected argument 'c'"  get -- a b c
bad "unknown option '--frob'"  kvbench --frob
bad "unknown option '-x'"      kvbench -x
bad "unexpected argument 'extra'" kvbench extra
bad "needs a value"            kvbench --op_type
bad "neither READ nor WRITE"   kvbench --op_type nope
bad "pairwise, manytoone or onetomany" kvbench --scheme nope
bad "--num_prefill"            kvbench --num_prefill 0
bad "--num_decode"             kvbench --num_decode x
bad "--block_size"             kvbench --block_size 12Q
bad "multiple of 8"            kvbench --block_size 12
bad "unknown memory kind"      kvbench --mem floppy
bad "--nats-creds needs --nats" kvbench --nats-creds c
bad "--netns needs --nats"     kvbench --netns a,b
bad "PREFILL_NS,DECODE_NS"     kvbench --netns a
bad "is ambiguous"             kvbench --num 3
bad "at most 1048576"          kvbench --num_layers 1024 --num_blocks 2048
bad "does not fit"             kvbench --scheme pairwise --num_prefill 2 --num_decode 3

if [ "${NXC_UPDATE_GOLDEN:-}" = 1 ]; then
    cp "$TRANSCRIPT" "$GOLDEN/args.txt"
elif diff -u "$GOLDEN/args.txt" "$TRANSCRIPT" >"$TMP/diff"; then
    pass
else
    fail "the messages differ from golden/args.txt (update_golden.sh if intended):"
    cat "$TMP/diff" >&2
fi
finish
