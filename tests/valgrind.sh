#!/usr/bin/env bash
# End-to-end programs under valgrind memcheck: no invalid access, no leak
# definitely lost. UCX's own allocations that live until exit are "still
# reachable" and not counted.
#   tests/valgrind.sh BUILD_DIR
set -uo pipefail
build=${1:-build}
pass=0 fail=0
run() {
    local name=$1; shift
    if valgrind --quiet --error-exitcode=99 --leak-check=full \
                --errors-for-leak-kinds=definite --show-leak-kinds=definite \
                --suppressions="$(dirname "$0")/valgrind.supp" "$@" >/tmp/vg.$$.log 2>&1; then
        echo "valgrind $name: ok"; pass=$((pass + 1))
    else
        echo "valgrind $name: FAILED"; cat /tmp/vg.$$.log; fail=$((fail + 1))
    fi
    rm -f /tmp/vg.$$.log
}
run write_pair            "$build/examples/write_pair"
run write_pair_tcp        env UCX_TLS=tcp "$build/examples/write_pair"
run event_loop            "$build/examples/event_loop"
run e2e_api               "$build/tests/e2e/e2e_api"
run e2e_transfer_local    "$build/tests/e2e/e2e_transfer" local
# the NATS module (built only where libnats was found; skips without nats-server)
if [ -x "$build/tests/nats/test_nats" ]; then
    run nats_exchange     "$build/tests/nats/test_nats"
    run nats_cluster      "$build/tests/nats/test_nats_cluster" cluster
fi
# Not e2e_direct: valgrind 3.19 does not know pidfd_open, so under it the
# same-host direct path falls back to messages (as designed) and that test,
# which checks the direct path itself, cannot run.
# a hostile peer forging messages
run e2e_spoof             "$build/tests/e2e/e2e_spoof"
run e2e_registration      "$build/tests/e2e/e2e_registration"
# the NIXL wire (passive NIXL-format ops, NIXL notifications, a gone agent)
run e2e_nixl_wire         "$build/tests/e2e/e2e_nixl_wire" \
                          "$(dirname "$0")/fixtures/nixl/dynamo-writable-rdma-metadata.json"
# Races and load with reduced counts (the last argument): a few seconds each.
for part in cancel release; do
    for mode in local proc; do
        run "e2e_races_${part}_${mode}" "$build/tests/e2e/e2e_races" $part $mode 200
    done
done
run e2e_load_inflight     "$build/tests/e2e/e2e_load" inflight 250
run e2e_load_cycles_local "$build/tests/e2e/e2e_load" cycles local 200
run e2e_load_cycles_proc  "$build/tests/e2e/e2e_load" cycles proc 200
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
