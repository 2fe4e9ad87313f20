#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz with Clang (ASan + UBSan, coverage of the library's
# host code) in their own build directory and runs each for a bounded time on its corpus:
#   validation  every host API entry's validation against an independent predicate (also the
#               append API, compressed_kv_cache, kv_cache_layout, validate_append_metadata)
#   codecs      the host reference's NVFP4 / FP8 codecs against an exact oracle (SPEC §5-6)
#   append      the host reference's append model: any chunking / batching of appends gives the
#               one-shot prefill's rows bit for bit, and the documented state layout (SPEC §3, §7)
# The seed corpus tests/fuzz/corpus/<target>/ is read, never written: new inputs go to
# $BUILD_DIR/corpus/<target>/. A finding fails the script and leaves its input in
# $BUILD_DIR/artifacts/; keep it as a regression test by copying it into
# tests/fuzz/corpus/<target>/ (ctest replays that directory in every build, fuzz_replay_<target>).
#   BUILD_DIR_FUZZ  build directory (default build-fuzz)
#   FUZZ_SECONDS    time per target (default 60); the targets run at once when JOBS >= 2
#   FUZZ_TARGETS    targets to run (default "validation codecs append")
#   JOBS            parallel build jobs (default: all cores)
# Grow the seed corpus after fuzzing: <fuzzer> -merge=1 tests/fuzz/corpus/<target> $BUILD_DIR/corpus/<target>
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
BUILD_DIR=${BUILD_DIR_FUZZ:-build-fuzz}
FUZZ_SECONDS=${FUZZ_SECONDS:-60}
FUZZ_TARGETS=${FUZZ_TARGETS:-validation codecs append}

for tool in clang clang++; do
  if ! command -v "$tool" >/dev/null; then
    echo "run_fuzz.sh: $tool not found (Debian: apt-get install clang libclang-rt-dev llvm)"
    exit 1
  fi
done

# Clang compiles the C++ and, as nvcc's host compiler, the host side of the CUDA sources, so that
# libFuzzer sees the coverage of the validation code. Device code is never run: PTX only.
CC=clang CXX=clang++ cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CUDA_HOST_COMPILER=clang++ -DCMAKE_CUDA_ARCHITECTURES=90-virtual \
  -DDSV4KV_SANITIZE=address,undefined -DDSV4KV_BUILD_FUZZERS=ON \
  -DDSV4KV_BUILD_EXAMPLES=OFF -DDSV4KV_BUILD_BENCHMARKS=OFF -DDSV4KV_INSTALL=OFF
targets=()
for t in $FUZZ_TARGETS; do targets+=("dsv4kv_fuzz_$t"); done
cmake --build "$BUILD_DIR" --parallel "$JOBS" --target "${targets[@]}"

export ASAN_OPTIONS=${ASAN_OPTIONS:-halt_on_error=1:abort_on_error=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:abort_on_error=1:print_stacktrace=1}
mkdir -p "$BUILD_DIR/artifacts"
run_one() {
  local t=$1
  mkdir -p "$BUILD_DIR/corpus/$t"
  "$BUILD_DIR/tests/fuzz/dsv4kv_fuzz_$t" -max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$BUILD_DIR/artifacts/$t-" \
    "$BUILD_DIR/corpus/$t" "tests/fuzz/corpus/$t" >"$BUILD_DIR/fuzz_$t.log" 2>&1
}
pids=()
status=0
for t in $FUZZ_TARGETS; do
  if [ "$JOBS" -ge 2 ]; then
    run_one "$t" & pids+=("$!:$t")
  else
    run_one "$t" || status=1
    pids+=("done:$t")
  fi
done
for entry in "${pids[@]}"; do
  pid=${entry%%:*} t=${entry#*:}
  if [ "$pid" != done ]; then wait "$pid" || status=1; fi
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$BUILD_DIR/fuzz_$t.log" | grep -o '[0-9]*$' | tail -n 1 || true)
  echo "fuzz $t: ${runs:-?} inputs in ${FUZZ_SECONDS} s (log: $BUILD_DIR/fuzz_$t.log)"
done
if [ "$status" -ne 0 ]; then
  for t in $FUZZ_TARGETS; do
    grep -E -B2 -A30 'ERROR|fuzz_(validation|codecs|append):|runtime error' "$BUILD_DIR/fuzz_$t.log" | head -60 || true
  done
  echo "run_fuzz.sh: a finding; reproducer(s) in $BUILD_DIR/artifacts/"
  echo "  (once fixed, copy each into tests/fuzz/corpus/<target>/: ctest replays it from then on)"
  ls -l "$BUILD_DIR/artifacts/"
  exit 1
fi
