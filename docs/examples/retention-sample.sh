#!/usr/bin/env bash
# Builds a small segment tree like the aggregator's file output writes
# (<root>/<route>/<day>/<hour>/<partition>-<offset>.ndjson), with file times
# in the past, and a retention config for it — to try logpipe-retention
# safely. usage: docs/examples/retention-sample.sh DIR
set -euo pipefail
dir=${1:?usage: $0 DIR}
rm -rf "$dir"
mkdir -p "$dir"
seg() { # route age_days name lines
  local d ts
  d="$dir/segments/$1/$(date -u -d "-$2 days" +%Y-%m-%d)/10"
  ts=$(date -u -d "-$2 days" +%Y-%m-%dT10:00:00Z)
  mkdir -p "$d"
  seq 0 $(($4 - 1)) | sed "s|.*|{\"@timestamp\":\"$ts\",\"message\":\"GET /api/items/& 200\",\"log\":{\"level\":\"info\"}}|" > "$d/$3"
  touch -d "-$2 days" "$d/$3"
}
seg app 0 0-9000.ndjson.open 100   # open: the aggregator still writes it
seg app 0 0-8000.ndjson 2000
seg app 3 0-5000.ndjson 20000      # older than archive_after (2d)
seg app 9 0-1000.ndjson 20000
seg app 40 0-0.ndjson 5000         # older than delete_after (30d)
seg audit 2 1-300.ndjson 500
seg audit 10 1-0.ndjson 500        # older than delete_after (7d)
cat > "$dir/retention.yaml" <<YAML
retention:
  audit_log: $dir/audit.ndjson
  policies:
    - name: app
      path: $dir/segments
      routes: [app]
      archive_after: 2d        # compress closed segments older than 2 days
      delete_after: 30d        # delete archives (and segments) older than 30 days
    - name: audit
      path: $dir/segments
      routes: [audit]
      delete_after: 7d
      max_total_bytes: 1GiB
metrics: {enabled: false}
YAML
echo "sample tree and config in $dir"
