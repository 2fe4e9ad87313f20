#!/usr/bin/env bash
# Builds the CPU test suite with AddressSanitizer and UndefinedBehaviorSanitizer on all host code
# (DSV4KV_SANITIZE: dsv4kv::host, the host side of dsv4kv, the tests) and runs it: host tests, API
# validation tests and the fuzz corpus replays (ctest label "host"). The first finding aborts.
#   BUILD_DIR_SANITIZE  build directory (default build-sanitize)
#   SANITIZERS          -fsanitize list (default address,undefined)
#   JOBS                parallel build jobs (default: all cores)
# Extra arguments go to ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
BUILD_DIR=${BUILD_DIR_SANITIZE:-build-sanitize}
SANITIZERS=${SANITIZERS:-address,undefined}

# Device code is never run here: PTX for one architecture keeps the build short.
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDSV4KV_SANITIZE="$SANITIZERS" \
  -DCMAKE_CUDA_ARCHITECTURES=90-virtual -DDSV4KV_BUILD_EXAMPLES=OFF -DDSV4KV_BUILD_BENCHMARKS=OFF \
  -DDSV4KV_INSTALL=OFF
cmake --build "$BUILD_DIR" --parallel "$JOBS" --target dsv4kv_host_tests dsv4kv_api_tests \
  dsv4kv_fuzz_validation_replay dsv4kv_fuzz_codecs_replay dsv4kv_fuzz_append_replay

asan=halt_on_error=1:abort_on_error=1:detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1
export ASAN_OPTIONS=${ASAN_OPTIONS:-$asan}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:abort_on_error=1:print_stacktrace=1}
ctest --test-dir "$BUILD_DIR" --output-on-failure -L host "$@"
