#!/usr/bin/env bash
# Runs on the GPU machine (device tool, .deps carried): A/B of the compress / append CTA layouts
# (include/dsv4kv/kernels/compress.cuh, DSV4KV_CTA_THREADS_*, DSV4KV_CSA_PREFILL_ROWS). Each variant
# is a build of the write-path and append benchmarks with its macros; all run in one session on the
# same card, ROUNDS times in turn (A/B/A/B; default 1).
# Usage: benchmarks/run_layout_sweep.sh "NAME:FLAGS" ...   e.g. "base:" "rows2:-DDSV4KV_CSA_PREFILL_ROWS=2"
# Environment: SUITE_ONLY / SUITE_SIZES (dsv4kv_bench_suite --only / --sizes; default write,
# 4k,32k,128k), APPEND_ARGS (dsv4kv_bench_append's; APPEND=0 skips it), ROUNDS.
set -uo pipefail
source "$(dirname "$0")/../scripts/device_logs.sh"  # $OUT: a scratch folder, packed into logs.tgz
source "$(dirname "$0")/../scripts/device_build.sh"
unpack_deps
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem --format=csv,noheader | tee "$OUT/gpu.txt"
build_variants "dsv4kv_bench_suite dsv4kv_bench_append" "$@" || exit 1
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
