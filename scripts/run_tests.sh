#!/usr/bin/env bash
# Builds everything and runs the test suite: host tests, the GPU test binary (reported as skipped,
# not passed, on a machine without a GPU) and the find_package / add_subdirectory consumer tests.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release
cmake --build "$BUILD_DIR" --parallel "$JOBS"
ctest --test-dir "$BUILD_DIR" --output-on-failure "$@"
