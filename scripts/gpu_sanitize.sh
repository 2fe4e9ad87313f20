#!/usr/bin/env bash
# Runs on the GPU machine after a build: the GPU test binary under each compute-sanitizer tool,
# one full run per tool, each with --error-exitcode (a finding fails the run), logs in $OUT, and a
# summary table at the end. Exit status: 0 when every tool ran clean, else 1.
#   memcheck   out-of-bounds / misaligned accesses, hardware exceptions, device leaks (--leak-check full)
#   racecheck  shared-memory hazards
#   initcheck  reads of uninitialised global memory (kernels and cudaMemcpy sources; the GPU tests
#              fill every buffer they download with a memset or a copy first)
#   synccheck  invalid barrier / warp-synchronisation use
# Usage: scripts/gpu_sanitize.sh PATH/TO/dsv4kv_gpu_tests [catch2 test spec]
#   spec (default '~[large]~[convert_hw]'): the > 2^31-byte / 1M-token cases and the 2^32-value
#   sweep would take hours under the tools.
# Environment:
#   SANITIZERS            tools to run, in order (default: memcheck racecheck initcheck synccheck)
#   SAN_TIMEOUT           seconds per tool (default 240); SAN_TIMEOUT_<TOOL> (e.g.
#                         SAN_TIMEOUT_RACECHECK=500) overrides it for one tool; 124 in the table: timed out
#   SAN_ARGS              extra compute-sanitizer options for every tool
#   COMPUTE_SANITIZER     the executable (default: compute-sanitizer on PATH, else /usr/local/cuda/bin)
#   OUT                   log directory (default /tmp/dsv4kv-out): sanitizer_<tool>.log, sanitizer_summary.txt
set -uo pipefail
if [ $# -lt 1 ] || [ ! -x "$1" ]; then
  echo "usage: $0 PATH/TO/dsv4kv_gpu_tests [catch2 test spec]" >&2
  exit 2
fi
bin=$1
spec=${2:-'~[large]~[convert_hw]'}
OUT=${OUT:-/tmp/dsv4kv-out}
mkdir -p "$OUT"
cs=${COMPUTE_SANITIZER:-$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)}
if [ ! -x "$cs" ]; then
  echo "compute-sanitizer not found (set COMPUTE_SANITIZER)" >&2
  exit 2
fi
tools=${SANITIZERS:-memcheck racecheck initcheck synccheck}
read -r -a extra <<<"${SAN_ARGS:-}"

# Options of each tool besides --tool and --error-exitcode.
tool_args() {
  case $1 in
    memcheck) echo "--leak-check full" ;;
    racecheck|initcheck|synccheck) echo "" ;;
    *) return 1 ;;
  esac
}

summary=$OUT/sanitizer_summary.txt
printf '%-10s %-4s %-8s %-70s %s\n' tool rc seconds "error summary" "test cases" >"$summary"
status=0
for tool in $tools; do
  if ! args=$(tool_args "$tool"); then
    echo "unknown tool: $tool (memcheck, racecheck, initcheck, synccheck)" >&2
    status=1
    continue
  fi
  var=SAN_TIMEOUT_$(echo "$tool" | tr '[:lower:]' '[:upper:]')
  limit=${!var:-${SAN_TIMEOUT:-240}}
  log=$OUT/sanitizer_$tool.log
  echo "== compute-sanitizer --tool $tool $args (limit ${limit}s) $bin '$spec'"
  start=$(date +%s)
  # shellcheck disable=SC2086  # $args: word splitting intended
  timeout --kill-after=30 "$limit" "$cs" --tool "$tool" $args --error-exitcode 99 ${extra[@]+"${extra[@]}"} \
    "$bin" "$spec" >"$log" 2>&1
  rc=$?
  secs=$(($(date +%s) - start))
  # Summary lines of the tool (ERROR / RACECHECK / LEAK SUMMARY) and Catch2's totals line.
  errors=$(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY|LEAK SUMMARY' "$log" | sed 's/^=* *//' | paste -sd '|' - | sed 's/|/; /g')
  cases=$(grep -E 'test cases' "$log" | tail -1)
  [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ] && errors="TIMED OUT after ${limit}s${errors:+; $errors}"
  printf '%-10s %-4s %-8s %-70s %s\n' "$tool" "$rc" "$secs" "${errors:-(no summary line)}" "${cases:-(no test totals)}" \
    >>"$summary"
  [ "$rc" -eq 0 ] || status=1
done
echo "== sanitizer summary ($summary)"
cat "$summary"
exit $status
