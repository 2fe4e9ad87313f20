#!/usr/bin/env bash
# Runs on the GPU machine (device tool, .deps carried), from the repository root: the staged CSA
# prefill (DSV4KV_PREFILL_STAGED, include/dsv4kv/kernels/row_stage.cuh) against the one-row-per-CTA
# grid, in one call on one card. Builds both (the default with the GPU tests), runs the GPU tests,
# the write-path suite and the prefill rows of the append bench for each build (their table), then the
# GPU tests and compute-sanitizer memcheck + racecheck on the strided write-path test. Logs in $OUT.
set -uo pipefail
OUT=${OUT:-/tmp/dsv4kv-out}
mkdir -p "$OUT" /tmp/deps
for f in .deps/*.deb; do dpkg -x "$f" /tmp/deps; done
export CMAKE_PREFIX_PATH=/tmp/deps/usr LD_LIBRARY_PATH=/tmp/deps/usr/lib/x86_64-linux-gnu
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem --format=csv,noheader | tee "$OUT/gpu.txt"
common=(-DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90a -DDSV4KV_BUILD_EXAMPLES=OFF)
( cmake -S . -B /tmp/build-staged "${common[@]}" -DDSV4KV_PTXAS_VERBOSE=ON >"$OUT/configure-staged.log" 2>&1 &&
  cmake --build /tmp/build-staged -j10 --target dsv4kv_gpu_tests dsv4kv_bench_suite dsv4kv_bench_append \
    >"$OUT/build-staged.log" 2>&1 ) &
p1=$!
( cmake -S . -B /tmp/build-base "${common[@]}" -DDSV4KV_BUILD_TESTS=OFF -DCMAKE_CUDA_FLAGS=-DDSV4KV_PREFILL_STAGED=0 \
    >"$OUT/configure-base.log" 2>&1 &&
  cmake --build /tmp/build-base -j6 --target dsv4kv_bench_suite dsv4kv_bench_append >"$OUT/build-base.log" 2>&1 ) &
p2=$!
wait $p1 || { echo "staged build failed"; grep -E "error" "$OUT/build-staged.log" | head -20; exit 1; }
wait $p2 || { echo "base build failed"; grep -E "error" "$OUT/build-base.log" | head -20; exit 1; }
for v in base staged; do
  timeout 120 /tmp/build-$v/benchmarks/dsv4kv_bench_suite --only write --sizes ${SIZES:-4k,32k,128k} >"$OUT/suite-$v.log" 2>&1
  timeout 120 /tmp/build-$v/benchmarks/dsv4kv_bench_append --batch 0 >"$OUT/append-$v.log" 2>&1
done
for v in base staged; do
  echo "== $v"
  grep -E "^(d2d|write)" "$OUT/suite-$v.log" | grep -v "two-kernel" | cut -c1-100
  grep -E "^(prefill|read only)" "$OUT/append-$v.log" | cut -c1-100
done
echo "== gpu tests"
timeout 150 /tmp/build-staged/tests/dsv4kv_gpu_tests --durations yes >"$OUT/gpu_tests.log" 2>&1; echo "gpu_tests rc=$?"
tail -3 "$OUT/gpu_tests.log"
if [ "${SAN:-1}" = 1 ]; then
  for tool in memcheck racecheck; do
    timeout 80 compute-sanitizer --tool $tool --error-exitcode 9 /tmp/build-staged/tests/dsv4kv_gpu_tests '[stride]' \
      >"$OUT/san-$tool.log" 2>&1
    echo "$tool rc=$? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$OUT/san-$tool.log" | tail -1)"
  done
fi
