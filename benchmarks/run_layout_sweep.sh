#!/usr/bin/env bash
# Runs on the GPU machine (device tool, .deps carried): A/B of the compress / append CTA layouts
# (include/dsv4kv/kernels/compress.cuh, DSV4KV_CTA_THREADS_*, DSV4KV_CSA_PREFILL_ROWS). Each variant
# is a build of the write-path and append benchmarks with its macros; all run in one session on the
# same card, ROUNDS times in turn (A/B/A/B; default 1).
# Usage: benchmarks/run_layout_sweep.sh "NAME:FLAGS" ...   e.g. "base:" "rows2:-DDSV4KV_CSA_PREFILL_ROWS=2"
# Environment: SUITE_ONLY / SUITE_SIZES (dsv4kv_bench_suite --only / --sizes; default write,
# 4k,32k,128k), APPEND_ARGS (dsv4kv_bench_append's; APPEND=0 skips it), ROUNDS, GPU_TESTS=1 (also
# build the tree's GPU tests alongside the variants and run them once before the benchmarks;
# GPU_TESTS_SPEC: their Catch2 test spec; GPU_TESTS_FLAGS: their CMAKE_CUDA_FLAGS, e.g. a candidate's macros).
set -uo pipefail
source "$(dirname "$0")/../scripts/device_logs.sh"  # $OUT: a scratch folder, packed into logs.tgz
source "$(dirname "$0")/../scripts/device_build.sh"
unpack_deps
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem --format=csv,noheader | tee "$OUT/gpu.txt"
targets=dsv4kv_bench_suite; [ "${APPEND:-1}" = 1 ] && targets="$targets dsv4kv_bench_append"
if [ "${GPU_TESTS:-0}" = 1 ]; then  # the GPU tests of the tree (with GPU_TESTS_FLAGS), built alongside
  BUILD_JOBS=6 build_variants dsv4kv_gpu_tests "tests:${GPU_TESTS_FLAGS:-}" >/dev/null &
  tests_pid=$!
fi
build_variants "$targets" "$@" || exit 1
echo "builds: $SECONDS s"
if [ "${GPU_TESTS:-0}" = 1 ]; then
  wait $tests_pid || { echo "gpu test build failed"; tail -30 "$OUT/build-tests.log"; exit 1; }
  timeout 300 /tmp/build-tests/tests/dsv4kv_gpu_tests --durations yes ${GPU_TESTS_SPEC:-} >"$OUT/gpu_tests.log" 2>&1
  echo "gpu_tests rc=$? ($SECONDS s): $(tail -2 "$OUT/gpu_tests.log" | tr '\n' ' ')"
fi
for round in $(seq 1 "${ROUNDS:-1}"); do
  for v in "$@"; do
    name=${v%%:*}
    echo "== $name round $round: ${v#*:}"
    if [ "${APPEND:-1}" = 1 ]; then
      timeout 200 /tmp/build-$name/benchmarks/dsv4kv_bench_append ${APPEND_ARGS:-} >"$OUT/append-$name-$round.log" 2>&1
      grep -E "^(decode|prefill|d2d)|target" "$OUT/append-$name-$round.log" | cut -c1-110
    fi
    timeout 200 /tmp/build-$name/benchmarks/dsv4kv_bench_suite --only ${SUITE_ONLY:-write} --sizes ${SUITE_SIZES:-4k,32k,128k} >"$OUT/suite-$name-$round.log" 2>&1
    grep -E "^(write|d2d)" "$OUT/suite-$name-$round.log" | cut -c1-110
  done
done
