#!/usr/bin/env bash
# Runs on the GPU machine (device tool, .deps carried): per-CTA traces of the fused prefill
# launches (entry, after the row, exit; %globaltimer, SM id) of the landed layout and of a variant
# (TRACE_VARIANT, default the two-row CSA prefill of sessions 1-8: -DDSV4KV_CSA_PREFILL_ROWS=2).
# It applies benchmarks/cta_trace.patch to the machine's copy of the tree (measurement only: the
# DSV4KV_TRACE_CTAS hook and the suite's --verify-only trace records).
# Summaries: tar xzf logs.tgz; python3 benchmarks/cta_trace_stats.py trace-NAME
set -uo pipefail
patch -p1 -N < benchmarks/cta_trace.patch >/dev/null || { echo "cta_trace.patch does not apply"; exit 1; }
source "$(dirname "$0")/../scripts/device_logs.sh"  # $OUT: a scratch folder, packed into logs.tgz
source "$(dirname "$0")/../scripts/device_build.sh"
unpack_deps
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem --format=csv,noheader | tee "$OUT/gpu.txt"
variants=("trace:-DDSV4KV_TRACE_CTAS" "trace-variant:-DDSV4KV_TRACE_CTAS ${TRACE_VARIANT:--DDSV4KV_CSA_PREFILL_ROWS=2}")
build_variants dsv4kv_bench_suite "${variants[@]}" || exit 1
for v in "${variants[@]}"; do
  name=${v%%:*}
  mkdir -p /tmp/trace
  timeout 60 /tmp/build-$name/benchmarks/dsv4kv_bench_suite --only write --sizes 32k,128k --verify-only >"$OUT/$name.log" 2>&1
  mkdir -p "$OUT/$name" && mv /tmp/trace/*.bin "$OUT/$name/" 2>/dev/null
  echo "== $name: $(ls "$OUT/$name" | wc -l) trace files"
done
