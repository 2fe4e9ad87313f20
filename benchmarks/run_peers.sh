#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Runs, on the GPU machine and in one call, our benchmark suite (dsv4kv_bench_suite --json) and the
# PyTorch peer (benchmarks/torch_peer.py: eager and torch.compile timings of the same operations,
# plus its independent cross-check of our outputs through dsv4kv_run_write_path), then prints
# our time / theirs per operation as a short table, last.
#
#   bash benchmarks/run_peers.sh            (from the repository root, after scripts/device_check.sh)
#
# Environment:
#   BUILD_DIR         build directory with the binaries (default /tmp/build-dev, the one
#                     scripts/device_check.sh builds); when they are missing, this script builds just
#                     the two targets it needs there, or in /tmp/build-peers when BUILD_DIR is not
#                     configured
#   OUT               where logs and JSON go (default /tmp/dsv4kv-out): suite.log, suite.json,
#                     torch_peer.log, torch_peer.json, peers_table.txt
#   SUITE_ARGS        extra options of dsv4kv_bench_suite (e.g. "--only write,decode")
#   PEER_ARGS         extra options of torch_peer.py (e.g. "--no-compile")
#   COMPILE_BUDGET_S  seconds of torch.compile compilation before further compiles are skipped (150)
#   PYTHON            the interpreter with torch (python3)
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${OUT:-/tmp/dsv4kv-out}
B=${BUILD_DIR:-/tmp/build-dev}
PY=${PYTHON:-python3}
mkdir -p "$OUT"
suite=$B/benchmarks/dsv4kv_bench_suite
runner=$B/benchmarks/dsv4kv_run_write_path
start=$(date +%s)

if [ ! -x "$suite" ] || [ ! -x "$runner" ]; then
  # Build just the two targets: in $B when it is configured (device_check.sh's cache, left as it
  # is), else in a directory of our own, so that a later device_check.sh is not affected.
  if [ ! -f "$B/CMakeCache.txt" ]; then
    B=/tmp/build-peers
    cmake -S "$root" -B "$B" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90a \
      -DDSV4KV_BUILD_TESTS=OFF -DDSV4KV_BUILD_EXAMPLES=OFF >"$OUT/peers_configure.log" 2>&1 \
      || { tail -30 "$OUT/peers_configure.log"; exit 1; }
  fi
  echo "== building dsv4kv_bench_suite and dsv4kv_run_write_path in $B"
  cmake --build "$B" --target dsv4kv_bench_suite dsv4kv_run_write_path -j"$(nproc)" >"$OUT/peers_build.log" 2>&1 \
    || { grep -E "error" "$OUT/peers_build.log" | head -30; exit 1; }
  suite=$B/benchmarks/dsv4kv_bench_suite
  runner=$B/benchmarks/dsv4kv_run_write_path
fi

echo "== dsv4kv_bench_suite (full output: $OUT/suite.log)"
rm -f "$OUT/suite.json"
# shellcheck disable=SC2086  # SUITE_ARGS is a list of options
"$suite" --json "$OUT/suite.json" ${SUITE_ARGS:-} >"$OUT/suite.log" 2>&1
rc_suite=$?
grep -E "^device:|^d2d copy|FATAL" "$OUT/suite.log"
sed -n '/^fused write path vs/,$p' "$OUT/suite.log"
echo "suite: rc=$rc_suite after $(($(date +%s) - start)) s"

echo "== torch peer (full output: $OUT/torch_peer.log)"
# shellcheck disable=SC2086  # PEER_ARGS is a list of options
"$PY" "$root/benchmarks/torch_peer.py" --json "$OUT/torch_peer.json" --check-bin "$runner" \
  --compile-budget-s "${COMPILE_BUDGET_S:-150}" ${PEER_ARGS:-} >"$OUT/torch_peer.log" 2>&1
rc_peer=$?
grep -E "^torch |^check |^    |cross-check|Error|error:" "$OUT/torch_peer.log" | head -60
echo "torch peer: rc=$rc_peer after $(($(date +%s) - start)) s"

if [ -f "$OUT/suite.json" ] && [ -f "$OUT/torch_peer.json" ]; then
  "$PY" "$root/benchmarks/torch_peer.py" compare "$OUT/suite.json" "$OUT/torch_peer.json" | tee "$OUT/peers_table.txt"
else
  echo "no comparison: suite.json or torch_peer.json is missing (see the logs above)"
fi
echo "run_peers: suite rc=$rc_suite torch_peer rc=$rc_peer, $(($(date +%s) - start)) s"
[ "$rc_suite" = 0 ] && [ "$rc_peer" = 0 ]
