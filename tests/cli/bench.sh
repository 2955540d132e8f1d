#!/bin/bash
# nxc bench end to end: every stdout line of --json is a JSON object with the
# expected fields and positive figures; the table mode prints aligned rows.
source "$(dirname "$0")/lib.sh"

# check_json FILE EXPECTED_LINES TLS: validates each line of FILE
check_json() {
    python3 - "$1" "$2" "$3" <<'PY'
import json, sys
path, expected, tls = sys.argv[1], int(sys.argv[2]), sys.argv[3]
lines = open(path).read().splitlines()
errors = []
if len(lines) != expected:
    errors.append(f"{len(lines)} lines, expected {expected}")
for n, line in enumerate(lines, 1):
    try:
        r = json.loads(line)
    except ValueError as e:
        errors.append(f"line {n} is not JSON ({e}): {line[:120]}")
        continue
    if not isinstance(r, dict):
        errors.append(f"line {n} is not an object"); continue
    want = {"tool": "nxc", "mem": "malloc", "tls": tls}
    for k, v in want.items():
        if r.get(k) != v:
            errors.append(f"line {n}: {k}={r.get(k)!r}, expected {v!r}")
    if r.get("op") not in ("read", "write"):
        errors.append(f"line {n}: op={r.get('op')!r}")
    for k in ("size", "desc_size", "descs", "iters", "cycle_iters"):
        if not isinstance(r.get(k), int) or r[k] <= 0:
            errors.append(f"line {n}: {k}={r.get(k)!r} is not a positive integer")
    for k in ("gbps", "lat_p50_us", "lat_p99_us", "passive_lat_p50_us",
              "passive_lat_p99_us", "cycle_ops_per_s"):
        if not isinstance(r.get(k), (int, float)) or r[k] <= 0:
            errors.append(f"line {n}: {k}={r.get(k)!r} is not a positive number")
    if isinstance(r.get("lat_p50_us"), (int, float)) and isinstance(r.get("lat_p99_us"), (int, float)) \
       and r["lat_p99_us"] < r["lat_p50_us"]:
        errors.append(f"line {n}: p99 < p50")
    if r.get("verified") is not True:
        errors.append(f"line {n}: not verified")
for e in errors:
    print(e, file=sys.stderr)
sys.exit(1 if errors else 0)
PY
}

# 1. The README's smoke run: --quick --json (2 ops x 4 sizes).
run bench --quick --json
if [ "$RC" -ne 0 ]; then
    fail "bench --quick --json: exit $RC"; cat "$TMP/err" >&2
elif check_json "$TMP/out" 8 "${UCX_TLS:-default}"; then
    pass
else
    fail "bench --quick --json: bad JSON lines"; cat "$TMP/out" >&2
fi
# --quick is quick by its iteration counts (--help: 256 MiB / size, between
# 5 and 200), not by a time budget, which a loaded machine would break.
python3 -c '
import json, sys
bad = [(r["op"], r["size"], r["iters"]) for r in map(json.loads, open(sys.argv[1]))
       if not 5 <= r["iters"] <= 200]
sys.exit(f"iterations outside 5..200: {bad}" if bad else 0)
' "$TMP/out" && pass || fail "bench --quick: more iterations than --help promises"

# 2. Descriptor counts and sizes with suffixes, one op kind, explicit counts.
run bench --json --ops write --sizes 64K,1M --descs 1,16 --iters 20 --warmup 2
if [ "$RC" -eq 0 ] && check_json "$TMP/out" 4 "${UCX_TLS:-default}"; then
    pass
else
    fail "bench --descs 1,16: exit $RC"; cat "$TMP/out" "$TMP/err" >&2
fi
if python3 -c '
import json,sys
rows=[json.loads(l) for l in open(sys.argv[1])]
ok = {(r["size"], r["descs"], r["desc_size"]) for r in rows} == {(65536,1,65536),(65536,16,4096),(1048576,1,1048576),(1048576,16,65536)}
ok = ok and all(r["op"] == "write" and r["iters"] == 20 for r in rows)
sys.exit(0 if ok else 1)' "$TMP/out"; then pass; else fail "bench --descs: wrong size/descs/desc_size/iters"; cat "$TMP/out" >&2; fi

# 3. --tls tcp reaches both workers and shows in the output.
run bench --json --tls tcp --sizes 4K --iters 10 --warmup 1
if [ "$RC" -eq 0 ] && check_json "$TMP/out" 2 tcp; then pass; else fail "bench --tls tcp: exit $RC"; cat "$TMP/out" "$TMP/err" >&2; fi

# 4. Table mode: a header and one aligned row per result, no JSON.
run bench --sizes 8,4K --ops read --iters 10 --warmup 1
rows=$(grep -cE '^read +[0-9.]+ [KMG]?i?B ' "$TMP/out")
if [ "$RC" -eq 0 ] && [ "$rows" -eq 2 ] && grep -q '^op ' "$TMP/out" && grep -q '^# timed:' "$TMP/out" \
   && [ "$(awk '!/^#/ {print length($0)}' "$TMP/out" | sort -u | wc -l)" -eq 1 ]; then
    pass
else
    fail "bench table: exit $RC, $rows rows:"; cat "$TMP/out" "$TMP/err" >&2
fi

# 5. Skipped combinations (fewer bytes than descriptors) are reported, not run.
run bench --json --ops read --sizes 8 --descs 16 --iters 5 --warmup 0
if [ "$RC" -eq 0 ] && [ ! -s "$TMP/out" ] && grep -q skipping "$TMP/err"; then pass; else fail "bench skip: exit $RC"; fi

# 6. --duration: a timed phase by time instead of count.
run bench --json --ops read --sizes 64K --duration 0.3 --warmup 1
if [ "$RC" -eq 0 ] && check_json "$TMP/out" 1 "${UCX_TLS:-default}"; then pass; else fail "bench --duration: exit $RC"; cat "$TMP/out" "$TMP/err" >&2; fi

# 7. Damaged data fails loudly (exit 1, "DATA CHECK FAILED"), for both kinds;
#    NXC_BENCH_CORRUPT makes the passive worker flip one byte.
for op in read write; do
    NXC_BENCH_CORRUPT=1 "$NXC" bench --ops $op --sizes 4K --iters 5 --warmup 0 >"$TMP/out" 2>"$TMP/err"; RC=$?
    if [ "$RC" -eq 1 ] && grep -q "DATA CHECK FAILED" "$TMP/err" && ! grep -q "^$op " "$TMP/out"; then pass
    else fail "corrupted $op: exit $RC: $(cat "$TMP/err")"; fi
done

# 8. --passive-idle: the passive worker sleeps before each op (a server's
#    case); each line names the idle time and the passive's configuration,
#    and the passive did sleep (its wake-up counters reach the report).
for cfg in "" "--passive-spin-us 0" "--passive-thread"; do
    # shellcheck disable=SC2086
    run bench --json --sizes 8,64K --iters 4 --warmup 1 --passive-idle 5 $cfg
    if [ "$RC" -eq 0 ] && python3 - "$TMP/out" "$cfg" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
cfg = sys.argv[2]
ok = len(rows) == 4 and all(
    r["passive_idle_ms"] == 5 and r["iters"] == 4 and r["lat_p50_us"] > 0
    and r["lat_p90_us"] >= r["lat_p50_us"] and r["passive_sleeps"] >= 1
    and r["passive_backstop_served"] <= r["passive_backstop_fired"]
    and r["passive_thread"] == ("thread" in cfg)
    and r["passive_spin_us"] == (0 if "spin" in cfg else -1) for r in rows)
sys.exit(0 if ok else 1)
PY
    then pass; else fail "bench --passive-idle 5 $cfg: exit $RC"; cat "$TMP/out" "$TMP/err" >&2; fi
done

# 8b. --active-busy: the active worker spends the gaps on its CPU instead
#    of asleep (only the passive idles): the workers use clearly more CPU
#    time than the same run asleep (a relative check: under a CPU hog the
#    busy loop gets less than a whole core), and the report says so.
if python3 - "$NXC" <<'PY'
import json, resource, subprocess, sys
nxc = sys.argv[1]
def run(extra):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    r = subprocess.run([nxc, "bench", "--json", "--sizes", "8", "--ops", "write", "--iters", "4",
                        "--warmup", "1", "--passive-idle", "100"] + extra,
                       stdout=subprocess.PIPE, timeout=120)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    rows = [json.loads(l) for l in r.stdout.decode().splitlines() if l.startswith("{")]
    return r.returncode, rows, cpu
rc_a, rows_a, asleep = run([])
rc_b, rows_b, busy = run(["--active-busy"])
ok = (rc_a == 0 and rc_b == 0 and len(rows_b) == 1 and rows_b[0]["active_busy"] is True
      and rows_a[0]["active_busy"] is False and busy >= asleep + 0.1)
print(f"active-busy: workers' CPU {busy:.3f} s busy, {asleep:.3f} s asleep", file=sys.stderr)
sys.exit(0 if ok else 1)
PY
then pass; else fail "bench --active-busy: the gaps were not spent busy"; fi

# 9. --mem thp: huge-page user memory moves correctly (checked transfer).
run bench --json --mem thp --sizes 4K,4M --iters 5 --warmup 1
if [ "$RC" -eq 0 ] && [ "$(grep -c '"mem":"thp"' "$TMP/out")" -eq 4 ]; then pass
else fail "bench --mem thp: exit $RC"; cat "$TMP/out" "$TMP/err" >&2; fi
run bench --mem huge --sizes 4K
if [ "$RC" -eq 2 ] && grep -q "malloc, thp or ucx" "$TMP/err"; then pass
else fail "bench --mem huge: exit $RC (expected 2 with the kinds named)"; fi

# 10. --chan-spin-us: both workers poll their channel before sleeping on it;
#     the full cycle still runs and checks its data, the report says so, and
#     an out-of-range value is a usage error.
run bench --json --sizes 4K --iters 50 --warmup 1 --chan-spin-us 50
if [ "$RC" -eq 0 ] && python3 - "$TMP/out" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
sys.exit(0 if len(rows) == 2 and all(r["chan_spin_us"] == 50 and r["cycle_ops_per_s"] > 0
                                     and r["verified"] for r in rows) else 1)
PY
then pass; else fail "bench --chan-spin-us 50: exit $RC"; cat "$TMP/out" "$TMP/err" >&2; fi
run bench --chan-spin-us 2000000
if [ "$RC" -eq 2 ] && grep -q -- "--chan-spin-us" "$TMP/err"; then pass
else fail "bench --chan-spin-us 2000000: exit $RC (expected 2)"; fi

finish
