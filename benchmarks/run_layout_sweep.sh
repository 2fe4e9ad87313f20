#!/usr/bin/env bash
# Runs on the GPU machine (device tool, .deps carried): A/B of the compress / append CTA layouts
# (include/dsv4kv/kernels/compress.cuh, DSV4KV_CTA_THREADS_*). Each variant is a build of the
# write-path and append benchmarks with its macros; all run in one session on the same card.
# Usage: benchmarks/run_layout_sweep.sh "NAME:FLAGS" ...   e.g. "base:" "small:-DDSV4KV_CTA_THREADS_CSA512=128"
set -uo pipefail
source "$(dirname "$0")/../scripts/device_logs.sh"  # $OUT: a scratch folder, packed into logs.tgz
mkdir -p /tmp/deps
for f in .deps/*.deb; do dpkg -x "$f" /tmp/deps; done
export CMAKE_PREFIX_PATH=/tmp/deps/usr LD_LIBRARY_PATH=/tmp/deps/usr/lib/x86_64-linux-gnu
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem --format=csv,noheader | tee "$OUT/gpu.txt"
pids=()
for v in "$@"; do
  name=${v%%:*}; flags=${v#*:}
  ( cmake -S . -B /tmp/build-$name -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90a -DDSV4KV_BUILD_TESTS=OFF \
      -DDSV4KV_BUILD_EXAMPLES=OFF -DDSV4KV_BUILD_BENCHMARKS=ON "-DCMAKE_CUDA_FLAGS=$flags" >"$OUT/configure-$name.log" 2>&1 &&
    cmake --build /tmp/build-$name -j8 --target dsv4kv_bench_suite dsv4kv_bench_append >"$OUT/build-$name.log" 2>&1 ) &
  pids+=($!)
done
for p in "${pids[@]}"; do wait $p || { echo "build failed"; tail -30 "$OUT"/build-*.log; exit 1; }; done
for v in "$@"; do
  name=${v%%:*}
  echo "== $name: ${v#*:}"
  timeout 200 /tmp/build-$name/benchmarks/dsv4kv_bench_append ${APPEND_ARGS:-} >"$OUT/append-$name.log" 2>&1
  grep -E "^(decode|prefill|d2d)|target" "$OUT/append-$name.log" | cut -c1-110
  timeout 200 /tmp/build-$name/benchmarks/dsv4kv_bench_suite --only ${SUITE_ONLY:-write} --sizes ${SUITE_SIZES:-4k,32k,128k} >"$OUT/suite-$name.log" 2>&1
  grep -E "^(write|d2d)" "$OUT/suite-$name.log" | cut -c1-110
done
