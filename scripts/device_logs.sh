# Sourced by the device-machine scripts (scripts/device_check.sh, benchmarks/run_layout_sweep.sh):
# they write their logs to $OUT, which this points at a scratch folder packed at exit into
# $RESULTS/logs.tgz (RESULTS: the caller's $OUT, default /tmp/dsv4kv-out). The device tool brings
# back at most 8 files from $OUT, fewer than those scripts write (session 7 lost a profile that way).
RESULTS=${OUT:-/tmp/dsv4kv-out}
mkdir -p "$RESULTS"
OUT=$(mktemp -d /tmp/dsv4kv-logs.XXXXXX)
export OUT
trap 'tar czf "$RESULTS/logs.tgz" -C "$OUT" .' EXIT
