#!/usr/bin/env bash
# The shipper's memory against a tenant's large pods (not a test): N pods
# (default 200) of ~1.2 MB each (annotations and env entries: what the API
# allows one pod) on the shipper's node, served by the stand-in API server
# (tests/support/k8s_standin.py --big). Starts logpipe-shipper with
# shipper.kubernetes on and no files, waits for its first list, and prints
# its peak RSS (VmHWM) and its RSS once synced, against the 256 MiB memory
# limit deploy/ gives the shipper. Run it on two builds to compare:
#   LP_BUILD=/path/to/old/build bench/shipper/podlist.sh; bench/shipper/podlist.sh
#   bench/shipper/podlist.sh [PODS] [BYTES_PER_POD]
# Needs: a build in build/ (LP_BUILD), python3. Kafka need not run.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
npods=${1:-200}
bytes=${2:-1200000}
build=${LP_BUILD:-$repo/build}
shipper=$build/shipper/logpipe-shipper
work=$(mktemp -d /tmp/lp-bench-podlist-XXXXXX)
trap 'pkill -P $$ 2>/dev/null || true; rm -rf "$work"' EXIT
. "$repo/bench/lib.sh" # cpu_of, hwm_of (KiB), free_port, metric

token=bench-token-$$
echo "$token" >"$work/token"
python3 "$repo/tests/support/k8s_standin.py" --token "$token" --pods "$npods" --big "$bytes" \
  --url-file "$work/api-url" &
for _ in $(seq 1 600); do [ -s "$work/api-url" ] && break; sleep 0.1; done
api=$(cat "$work/api-url")
port=$(free_port)
mkdir -p "$work/logs"
cat >"$work/shipper.yaml" <<YAML
kafka: {brokers: "127.0.0.1:1", topic: bench}
shipper:
  state_dir: $work/state
  inputs: [{paths: ["$work/logs/*.log"]}]
  kubernetes: {enabled: true, api_url: "$api", token_file: $work/token, ca_file: "", node_name: node-a, request_timeout: 120s}
metrics: {listen: "127.0.0.1:$port"}
log: {level: warn}
YAML
t0=$(date +%s.%N)
"$shipper" -c "$work/shipper.yaml" 2>"$work/shipper.log" &
pid=$!
synced=""
for _ in $(seq 1 1200); do
  synced=$(metric "$port" logpipe_shipper_k8s_synced)
  [ "$synced" = 1 ] && break
  sleep 0.1
done
t1=$(date +%s.%N)
[ "$synced" = 1 ] || { echo "the shipper never synced:"; tail -5 "$work/shipper.log"; exit 1; }
sleep 2
pods=$(metric "$port" logpipe_shipper_k8s_pods)
hwm=$(hwm_of $pid)
rss=$(awk '/VmRSS/ { print $2 }' "/proc/$pid/status")
cpu=$(cpu_of $pid)
kill $pid; wait $pid 2>/dev/null || true
awk -v n="$npods" -v b="$bytes" -v p="$pods" -v h="$hwm" -v r="$rss" -v c="$cpu" -v w="$(echo "$t1 - $t0" | bc)" 'BEGIN {
  printf "pod list: %d pods of %.1f MB (%.0f MB in all), %d cached, first list in %.1f s, %.2f CPU s\n", n, b / 1e6, n * b / 1e6, p, w, c
  printf "shipper peak RSS %.1f MiB, RSS once synced %.1f MiB (limit in deploy/: 256 MiB; peak/limit %.2f)\n", h / 1024, r / 1024, h / 1024 / 256 }'
