# Sourced by the device-machine scripts (scripts/device_check.sh, benchmarks/run_layout_sweep.sh,
# benchmarks/run_cta_trace.sh), after scripts/device_logs.sh ($OUT: the log folder):
#   unpack_deps                   the .deps packages (../shared/tools/device-deps.sh, carried) into
#                                 /tmp/deps, on CMAKE_PREFIX_PATH / LD_LIBRARY_PATH
#   build_variants TARGETS NAME:FLAGS ...
#                                 one Release sm_90a build per variant in /tmp/build-NAME with
#                                 CMAKE_CUDA_FLAGS=FLAGS (examples off, benchmarks on, tests on only
#                                 when TARGETS names dsv4kv_gpu_tests), of the space-separated
#                                 TARGETS, all in parallel (BUILD_JOBS make jobs each, default
#                                 nproc / variants); logs $OUT/configure-NAME.log,
#                                 $OUT/build-NAME.log; status 1 if any failed
unpack_deps() {
  mkdir -p /tmp/deps
  local f
  for f in .deps/*.deb; do dpkg -x "$f" /tmp/deps; done
  export CMAKE_PREFIX_PATH=/tmp/deps/usr LD_LIBRARY_PATH=/tmp/deps/usr/lib/x86_64-linux-gnu
}

build_variants() {
  local targets=$1 v name flags p
  shift
  local pids=()
  local jobs=${BUILD_JOBS:-$(( $(nproc) / $# > 2 ? $(nproc) / $# : 2 ))}
  local tests=OFF
  case " $targets " in *" dsv4kv_gpu_tests "*) tests=ON ;; esac
  for v in "$@"; do
    name=${v%%:*}; flags=${v#*:}
    ( cmake -S . -B "/tmp/build-$name" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90a \
        -DDSV4KV_BUILD_TESTS=$tests -DDSV4KV_BUILD_EXAMPLES=OFF -DDSV4KV_BUILD_BENCHMARKS=ON \
        "-DCMAKE_CUDA_FLAGS=$flags" >"$OUT/configure-$name.log" 2>&1 &&
      cmake --build "/tmp/build-$name" -j"$jobs" --target $targets >"$OUT/build-$name.log" 2>&1 ) &
    pids+=($!)
  done
  local rc=0
  for p in "${pids[@]}"; do wait "$p" || rc=1; done
  if [ $rc != 0 ]; then echo "build failed"; tail -30 "$OUT"/build-*.log; fi
  return $rc
}
