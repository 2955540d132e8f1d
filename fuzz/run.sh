#!/bin/sh
# Builds the metadata fuzzer with clang in build-fuzz/, replays the checked-in
# corpus, then fuzzes for the given number of seconds (default 60).
#   fuzz/run.sh [seconds]
# New interesting inputs go to build-fuzz/corpus-work/ (not the checked-in
# corpus); a crash leaves build-fuzz/artifacts/crash-* and a non-zero exit.
# Add crashers to fuzz/corpus/metadata/ once fixed.
set -eu

seconds=${1:-60}
root=$(cd "$(dirname "$0")/.." && pwd)
build=$root/build-fuzz
seeds=$root/fuzz/corpus/metadata
jobs=${JOBS:-2}

cmake -S "$root" -B "$build" -DNXC_FUZZ=ON -DCMAKE_C_COMPILER=clang \
      -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" --target fuzz_metadata -j"$jobs"

fuzzer=$build/fuzz/fuzz_metadata
mkdir -p "$build/corpus-work" "$build/artifacts"

echo "== replaying $(ls "$seeds" | wc -l) corpus inputs"
"$fuzzer" -runs=0 "$seeds"

echo "== fuzzing for ${seconds}s"
"$fuzzer" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
          -max_len=16384 -print_final_stats=1 \
          -dict="$root/fuzz/metadata.dict" \
          -artifact_prefix="$build/artifacts/" \
          "$build/corpus-work" "$seeds"
