#!/usr/bin/env bash
# Runs on the GPU machine (device tool, .deps carried), session 8's call S8-1: an A/B of the CSA
# prefill rows' granularity (one row per CTA: r1) and occupancy (32 warps per SM: w32), and per-CTA
# traces of the fused prefill launches (entry, after the row, exit; %globaltimer). It applies
# benchmarks/cta_trace.patch to the machine's copy of the tree (measurement only: the DSV4KV_TRACE_CTAS
# hook, and the DSV4KV_AB_CSA_ONE_ROW switch, which builds a wrong single variant: prefills only).
# Summaries: tar xzf logs.tgz; python3 benchmarks/cta_trace_stats.py trace/trace
set -uo pipefail
patch -p1 -N < benchmarks/cta_trace.patch >/dev/null || { echo "cta_trace.patch does not apply"; exit 1; }
RES=$OUT; L=/tmp/logs; mkdir -p $L /tmp/trace
trap 'tar czf $RES/logs.tgz -C /tmp logs trace' EXIT
mkdir -p /tmp/deps && for f in .deps/*.deb; do dpkg -x "$f" /tmp/deps; done
export CMAKE_PREFIX_PATH=/tmp/deps/usr LD_LIBRARY_PATH=/tmp/deps/usr/lib/x86_64-linux-gnu
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem --format=csv,noheader | tee $L/gpu.txt
declare -A F
F[base]=""
F[r1]="-DDSV4KV_AB_CSA_ONE_ROW -DDSV4KV_CTA_THREADS_CSA512=128 -DDSV4KV_CTA_THREADS_CSA128=32"
F[w32]="-DDSV4KV_CSA_WARPS_PER_SM=32"
F[r1w32]="-DDSV4KV_AB_CSA_ONE_ROW -DDSV4KV_CTA_THREADS_CSA512=128 -DDSV4KV_CTA_THREADS_CSA128=32 -DDSV4KV_CSA_WARPS_PER_SM=32"
F[trace]="-DDSV4KV_TRACE_CTAS"
F[trace1]="-DDSV4KV_TRACE_CTAS -DDSV4KV_AB_CSA_ONE_ROW -DDSV4KV_CTA_THREADS_CSA512=128 -DDSV4KV_CTA_THREADS_CSA128=32"
t0=$(date +%s)
pids=()
for v in base r1 w32 r1w32 trace trace1; do
  ( cmake -S . -B /tmp/build-$v -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90a -DDSV4KV_BUILD_TESTS=OFF \
      -DDSV4KV_BUILD_EXAMPLES=OFF -DDSV4KV_BUILD_BENCHMARKS=ON "-DCMAKE_CUDA_FLAGS=${F[$v]}" >$L/configure-$v.log 2>&1 &&
    cmake --build /tmp/build-$v -j6 --target dsv4kv_bench_suite >$L/build-$v.log 2>&1 ) &
  pids+=($!)
done
for p in "${pids[@]}"; do wait $p || { echo "build failed"; tail -30 $L/build-*.log; exit 1; }; done
echo "builds: $(( $(date +%s) - t0 )) s"
S=/benchmarks/dsv4kv_bench_suite
for v in trace trace1; do timeout 60 /tmp/build-$v$S --only write --sizes 32k,128k --verify-only > $L/trace-$v.log 2>&1; mkdir -p /tmp/trace/$v; mv /tmp/trace/*.bin /tmp/trace/$v/ 2>/dev/null; done
echo "traces: $(( $(date +%s) - t0 )) s"
for round in 1 2; do
  for v in base r1 w32 r1w32; do
    [ $round = 2 ] && [ $v = w32 -o $v = r1w32 ] && continue
    timeout 100 /tmp/build-$v$S --only write --sizes 32k,128k > $L/suite-$v-$round.log 2>&1
    echo "== $v round $round ($(( $(date +%s) - t0 )) s)"
    grep -E "^(write|d2d)" $L/suite-$v-$round.log | grep -E "fused|d2d" | cut -c1-100
  done
done
