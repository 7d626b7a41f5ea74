#!/usr/bin/env bash
# Aggregator memory during an OpenSearch outage (not a test). Small, highly
# compressible container lines (about 100x under zstd: what makes the
# compressed Kafka bytes a poor measure of memory) are shipped into a topic
# first; then OpenSearch is stopped, logpipe-aggregator starts consuming
# them into an elasticsearch output with max_pending_bytes = BUDGET, runs
# OUTAGE seconds with nowhere to send, OpenSearch comes back and everything
# drains. Besides the shipped lines, one hand-made message of 1,000,000
# tiny records is in the topic. Prints the aggregator's RSS every 5 s, its peak RSS (VmHWM)
# against the budget, the compression ratio of the input, and whether every
# line was indexed once afterwards.
#
#   bench/aggregator/memory.sh [LINES] [BUDGET_MIB] [OUTAGE_S]   (default 3000000 256 60)
# Needs: a build in build/, Kafka and OpenSearch (scripts/services up).
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
lines=${1:-3000000}
budget_mib=${2:-256}
outage=${3:-60}
brokers=${LP_KAFKA_BROKERS:-127.0.0.1:9092}
es=${LP_OPENSEARCH_URL:-http://127.0.0.1:9200}
build=${LP_BUILD:-$repo/build}
work=$(mktemp -d /tmp/lp-bench-mem-XXXXXX)
restart_es() { "$repo/scripts/services" start opensearch >/dev/null 2>&1 || true; }
trap 'pkill -P $$ 2>/dev/null || true; restart_es; rm -rf "$work"' EXIT
run_id="$$$(date +%s)"
topic=lp-bench-mem-$run_id
index=lp-bench-mem-$run_id
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
metric() { { curl -fsS -m 2 "http://127.0.0.1:$1/metrics" 2>/dev/null || true; } | awk -v n="$2" '$1 == n { s += $2; f = 1 } END { printf "%d", s }'; }
rss_of() { awk '/VmRSS/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }
hwm_of() { awk '/VmHWM/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }
es_count() {
  curl -fsS -m 10 -XPOST "$es/$index/_refresh" >/dev/null 2>&1 || true
  { curl -fsS -m 10 "$es/$index/_count" 2>/dev/null || true; } | sed -n 's/.*"count":\([0-9]*\).*/\1/p'
}

# ---- input: one container writing tiny lines, shipped once
mkdir -p "$work/log"
python3 - "$work/log/tiny-0_bench_app-$(printf '%064x' 1).log" "$lines" <<'PY'
import sys
path, n = sys.argv[1], int(sys.argv[2])
with open(path, "w") as f:
    # a health-check access line, the same every time: over 100x under zstd
    line = ("2026-12-01T00:00:00.000000000Z stdout F 10.0.0.1 - - [01/Dec/2026:00:00:00 +0000] "
            "\"GET /healthz?probe=liveness&component=frontend HTTP/1.1\" 200 2 \"-\" "
            "\"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) kube-probe/1.31\" "
            "upstream=127.0.0.1:8080 request_time=0.000 upstream_response_time=0.000 "
            "upstream_status=200 request_id=- trace_id=- span_id=-\n")
    for _ in range(n // 1000):
        f.write(line * 1000)
    f.write(line * (n % 1000))
PY
raw=$(stat -c %s "$work/log/"*.log)
sp=$(free_port)
cat >"$work/ship.yaml" <<YAML
kafka: {brokers: "$brokers", topic: $topic}
shipper: {state_dir: $work/ship-state, inputs: [{paths: ["$work/log/*.log"]}], batch_max_records: 100000, batch_max_bytes: 4MiB}
metrics: {listen: "127.0.0.1:$sp"}
YAML
"$build/shipper/logpipe-shipper" -c "$work/ship.yaml" 2>"$work/ship.log" &
ship_pid=$!
deadline=$(($(date +%s) + 300))
while [ "$(metric "$sp" logpipe_shipper_events_total)" -lt "$lines" ] ||
      [ "$(metric "$sp" logpipe_shipper_delivered_messages_total)" -lt "$(metric "$sp" logpipe_shipper_batches_total)" ]; do
  [ "$(date +%s)" -lt "$deadline" ] || { echo "shipping timed out"; exit 1; }
  sleep 1
done
shipped=$(metric "$sp" logpipe_shipper_batch_bytes_total)
kill -TERM $ship_pid; wait $ship_pid || true
echo "input: $lines lines, $((raw / 1048576)) MiB of log files, $((shipped / 1024)) KiB compressed in Kafka (ratio $(python3 -c "print(f'{$raw/max($shipped,1):.0f}x')"))"

# and one hand-made message of 1,000,000 tiny records (about 70 MB decoded
# from under 1 MB): what held 677 MiB in the outputs before the budget
# counted rendered documents
tiny=1000000
python3 - "$work/tiny.ndjson" "$tiny" <<'PY'
import json, sys
path, n = sys.argv[1], int(sys.argv[2])
with open(path, "w") as f:
    f.write(json.dumps({"logpipe.format": 1, "logpipe.source_id": "%032x" % 0x7e, "logpipe.input_format": "raw",
                        "host.name": "bench", "kubernetes.container.name": "tiny"}) + "\n")
    for i in range(n):
        f.write('{"@timestamp":"2026-12-01T00:00:00Z","log.offset":%d,"message":"x"}\n' % (i * 2))
PY
zstd -q -3 "$work/tiny.ndjson" -o "$work/tiny.zst"
"$build/tests/integration/lp-produce" "$brokers" "$topic" 0 "$work/tiny.zst" logpipe-format=1 \
  content-type=application/x-ndjson content-encoding=zstd logpipe-records=$tiny >/dev/null
echo "       + 1 message of $tiny tiny records: $(($(stat -c %s "$work/tiny.ndjson") / 1048576)) MiB decoded, $(($(stat -c %s "$work/tiny.zst") / 1024)) KiB in Kafka"
lines=$((lines + tiny))

# ---- the outage
"$repo/scripts/services" down opensearch >/dev/null
ap=$(free_port)
cat >"$work/agg.yaml" <<YAML
kafka: {brokers: "$brokers", topic: $topic}
aggregator:
  group_id: $topic
  max_pending_bytes: ${budget_mib}MiB
  max_decompressed_bytes: 80MiB
  dead_letter_dir: $work/dead-letter
  default_route: {outputs: [search]}
  outputs:
    - {name: search, type: elasticsearch, url: "$es", index: "$index", template_name: $index, retry_max: 2s}
metrics: {listen: "127.0.0.1:$ap"}
YAML
"$build/aggregator/logpipe-aggregator" -c "$work/agg.yaml" 2>"$work/agg.log" &
agg_pid=$!
echo "OpenSearch down; aggregator consuming with max_pending_bytes = ${budget_mib} MiB"
printf '%6s %10s %12s %12s %12s %8s\n' secs "rss MiB" "held MiB" "decode MiB" "records in" waits
peak_held=0
for s in $(seq 1 "$outage"); do
  sleep 1
  held=$(metric "$ap" logpipe_aggregator_held_bytes)
  [ "$held" -gt "$peak_held" ] && peak_held=$held
  if [ $((s % 5)) -eq 0 ]; then
    printf '%6d %10d %12d %12d %12d %8d\n' "$s" $(($(rss_of $agg_pid) / 1024)) $((held / 1048576)) \
      $(($(metric "$ap" logpipe_aggregator_decode_bytes) / 1048576)) \
      "$(metric "$ap" logpipe_aggregator_records_in_total)" "$(metric "$ap" logpipe_aggregator_memory_budget_waits_total)"
  fi
done
hwm=$(hwm_of $agg_pid)
echo "OpenSearch back"
"$repo/scripts/services" start opensearch >/dev/null
deadline=$(($(date +%s) + 900))
t0=$(date +%s)
while [ "$(es_count)" != "$lines" ] && [ "$(date +%s)" -lt "$deadline" ]; do
  sleep 10
  printf '%6s %10d %12d %12d %12d  (draining)\n' "+$(($(date +%s) - t0))" $(($(rss_of $agg_pid) / 1024)) \
    $(($(metric "$ap" logpipe_aggregator_held_bytes) / 1048576)) \
    $(($(metric "$ap" logpipe_aggregator_decode_bytes) / 1048576)) "$(es_count)"
done
indexed=$(es_count)
hwm_after=$(hwm_of $agg_pid)
kill -TERM $agg_pid; wait $agg_pid || true
curl -fsS -m 30 -XDELETE "$es/$index" >/dev/null 2>&1 || true
curl -fsS -m 30 -XDELETE "$es/_index_template/$index" >/dev/null 2>&1 || true
echo
echo "budget (max_pending_bytes)     ${budget_mib} MiB"
echo "peak held by the outputs       $((peak_held / 1048576)) MiB (rendered documents, as counted)"
echo "peak RSS during the outage     $((hwm / 1024)) MiB ($(python3 -c "print(f'{$hwm/1024/$budget_mib:.2f}')") x the budget)"
echo "peak RSS over the whole run    $((hwm_after / 1024)) MiB"
echo "indexed afterwards             ${indexed:-0} of $lines"
