#!/usr/bin/env bash
# Builds and runs the main job, dsv4kv_demo; arguments go to the demo (try --help).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD_DIR" --target dsv4kv_demo --parallel "$JOBS" >/dev/null
"$BUILD_DIR/examples/dsv4kv_demo" "$@"
