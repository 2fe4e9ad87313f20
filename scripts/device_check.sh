#!/usr/bin/env bash
# Runs on the GPU machine (the device tool), from the repository root, with .deps carried:
#   build (sm_90a, ptxas report) -> ctest (all tests, GPU included) -> compute-sanitizer memcheck,
#   racecheck, initcheck and synccheck on the GPU test binary (scripts/gpu_sanitize.sh) ->
#   benchmarks that exist. Logs go to $OUT/logs.tgz (one archive).
# Usage: scripts/device_check.sh [catch2 test spec for the sanitizer runs (default: gpu_sanitize.sh's,
#   all but [large] and [convert_hw])]
# Environment: BUILD_TARGETS (build only these; default all), CTEST=0 (skip the CPU tests; CI runs
#   them), SANITIZERS / SAN_TIMEOUT (below), BENCH=0 (no benchmarks).
set -uo pipefail
source "$(dirname "$0")/device_logs.sh"  # $OUT: a scratch folder, packed into logs.tgz
source "$(dirname "$0")/device_build.sh"
unpack_deps
B=/tmp/build-dev
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem,temperature.gpu --format=csv | tee "$OUT/gpu.txt"
cmake -S . -B $B -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90a -DDSV4KV_PTXAS_VERBOSE=ON >"$OUT/configure.log" 2>&1 \
  || { tail -40 "$OUT/configure.log"; exit 1; }
if ! cmake --build $B -j16 ${BUILD_TARGETS:+--target $BUILD_TARGETS} >"$OUT/build.log" 2>&1; then
  grep -E "error|Error" "$OUT/build.log" | head -40; exit 1
fi
grep -E "Compiling entry|registers|spill" "$OUT/build.log" | grep -v "0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads" >"$OUT/ptxas_nonzero.txt" || true
grep -E "Used [0-9]+ registers" "$OUT/build.log" | sort | uniq -c | sort -rn | head -40 >"$OUT/ptxas_registers.txt" || true
rc_ctest=skipped
if [ "${CTEST:-1}" = 1 ]; then
  echo "== ctest (all but the GPU binary, which runs next)"
  ctest --test-dir $B --output-on-failure -j4 -E '^gpu_tests$' >"$OUT/ctest.log" 2>&1; rc_ctest=$?
  tail -15 "$OUT/ctest.log"
fi
echo "== gpu tests (verbose)"
$B/tests/dsv4kv_gpu_tests --durations yes >"$OUT/gpu_tests.log" 2>&1; rc_gpu=$?
tail -5 "$OUT/gpu_tests.log"
# compute-sanitizer: scripts/gpu_sanitize.sh, one run per tool in SANITIZERS (default: memcheck
# racecheck initcheck synccheck; SANITIZERS= skips them; SAN_TIMEOUT / SAN_TIMEOUT_<TOOL> limit
# each run). BENCH=0 skips benchmarks.
rc_san=skipped
if [ -n "${SANITIZERS-default}" ]; then
  echo "== compute-sanitizer"
  scripts/gpu_sanitize.sh "$B/tests/dsv4kv_gpu_tests" ${1:+"$1"}
  rc_san=$?
fi
for bench in $B/benchmarks/dsv4kv_bench_*; do
  [ "${BENCH:-1}" = 1 ] || break
  [ -x "$bench" ] || continue
  echo "== $(basename "$bench")"
  timeout 240 "$bench" 2>&1 | tee "$OUT/$(basename "$bench").log" | tail -25
done
echo "ctest rc=$rc_ctest gpu_tests rc=$rc_gpu sanitizers rc=$rc_san"
