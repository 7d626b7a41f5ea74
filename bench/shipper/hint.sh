#!/usr/bin/env bash
# What one tenant's multiline hint costs the node's shipper (not a test):
# 100 pods on the node, served by the stand-in API server
# (tests/support/k8s_standin.py), one CRI file each; pod-0 annotated
# logpipe.io/multiline with a pattern. logpipe-shipper ships every file to
# the real Kafka broker twice: pod-0's pattern benign (^\d) and hostile
# (^(\w+\s?)*$, which backtracks on a line of words ending in '!'). Prints
# the shipper's CPU s for each and the hostile/benign ratio: the peer is the
# same shipper with the benign pattern, measured in the same run. Run it on
# two builds to compare:
#   LP_BUILD=/path/to/old/build bench/shipper/hint.sh; bench/shipper/hint.sh
#   bench/shipper/hint.sh [LINES_PER_POD]   (default 20000)
# Needs: a build in build/ (LP_BUILD), Kafka on 127.0.0.1:9092 (scripts/services up kafka).
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
per=${1:-20000}
npods=100
brokers=${LP_KAFKA_BROKERS:-127.0.0.1:9092}
build=${LP_BUILD:-$repo/build}
shipper=$build/shipper/logpipe-shipper
work=$(mktemp -d /tmp/lp-bench-hint-XXXXXX)
trap 'pkill -P $$ 2>/dev/null || true; rm -rf "$work"' EXIT
. "$repo/bench/lib.sh" # cpu_of, hwm_of (KiB), free_port, metric
now() { date +%s.%N; }
mkdir -p "$work/logs" "$work/log/containers"
python3 - "$work/logs" $npods "$per" <<'PY'
import sys
d, n, per = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for i in range(n):
    with open(f"{d}/pod-{i}_bench_app-{i:064x}.log", "w") as f:
        f.writelines(f"2026-12-02T00:00:{k % 60:02d}.{k:09d}Z stdout F user login ok from host "
                     f"a1 b2 c3 d4 e5 f6 g7 h8 i9 j0 k{k % 10} !\n" for k in range(per))
PY
bytes=$(cat "$work"/logs/*.log | wc -c)
lines=$((npods * per))

run() { # HINT -> cpu seconds
  local token=bench-token-$$ port topic
  echo "$token" >"$work/token"
  rm -f "$work/api-url"
  python3 "$repo/tests/support/k8s_standin.py" --token "$token" --pods $npods --labels 2 \
    --hint "$1" --url-file "$work/api-url" &
  local api_pid=$!
  for _ in $(seq 1 100); do [ -s "$work/api-url" ] && break; sleep 0.1; done
  port=$(free_port); topic="lp-bench-hint-$$-$RANDOM"
  rm -rf "$work/state"
  cat >"$work/ship.yaml" <<YAML
kafka: {brokers: "$brokers", topic: $topic}
shipper:
  state_dir: $work/state
  inputs: [{paths: ["$work/log/containers/*.log"]}]
  kubernetes: {enabled: true, api_url: "$(cat "$work/api-url")", token_file: $work/token, ca_file: "", node_name: node-a}
metrics: {listen: "127.0.0.1:$port"}
log: {level: error}
YAML
  "$shipper" -c "$work/ship.yaml" 2>"$work/ship.log" &
  local pid=$! deadline=$((SECONDS + 60))
  until [ "$(metric "$port" logpipe_shipper_k8s_synced)" = 1 ]; do
    [ $SECONDS -lt $deadline ] || { echo "pod cache not synced"; cat "$work/ship.log"; exit 1; }; sleep 0.1
  done
  local c0; c0=$(cpu_of $pid)
  mv "$work"/logs/*.log "$work/log/containers/"
  deadline=$((SECONDS + 1800))
  while :; do
    local rd lag
    rd=$(metric "$port" logpipe_shipper_read_bytes_total); lag=$(metric "$port" logpipe_shipper_lag_bytes)
    [ "${rd:-0}" -ge "$bytes" ] && [ "${lag:-1}" = 0 ] && break
    [ $SECONDS -lt $deadline ] || { echo "timed out"; exit 1; }
    sleep 0.1
  done
  echo "$(cpu_of $pid) - $c0" | bc -l
  kill -TERM $pid; wait $pid || true
  kill $api_pid; wait $api_pid 2>/dev/null || true
  mv "$work"/log/containers/*.log "$work/logs/"
}
benign=$(run '^\d')
hostile=$(run '^(\w+\s?)*$')
awk -v l="$lines" -v b="$benign" -v h="$hostile" -v s="$shipper" 'BEGIN {
  printf "%s: %d pods, %d lines; pod-0 hint ^\\d: %.2f CPU s; pod-0 hint ^(\\w+\\s?)*$: %.2f CPU s; hostile/benign %.2fx\n", s, 100, l, b, h, h / b }'
