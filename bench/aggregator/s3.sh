#!/usr/bin/env bash
# Object-storage benchmark (not a test). The same container logs, shipped
# once by logpipe-shipper into a batch topic (what logpipe-aggregator reads)
# and a record topic (one ECS JSON event per message, what Fluent Bit's
# in_kafka reads), then in one run:
#   logpipe-aggregator  batches -> file segments              (the local floor)
#   logpipe-aggregator  batches -> s3 output (zstd objects)   (the S3 server)
#   Fluent Bit          in_kafka -> out_s3 (zstd, PutObject)  (the same server)
# and prints records/s, MB/s (of log bytes), CPU seconds per GB, peak RSS and
# the ratios. Fluent Bit does less per record (no parsing, no ECS
# rendering, no routing, no exactly-once bookkeeping): it reads JSON events
# and writes them out.
#
#   bench/aggregator/s3.sh [MB]            (default 256)
# Needs: a build in build/, Kafka and the S3 server (scripts/services up
# kafka; scripts/services up s3), and a Fluent Bit binary: FLUENT_BIT=path,
# or FLUENT_BIT_SRC=a fluent/fluent-bit checkout (built once with cmake into
# ~/.cache/logpipe/fluent-bit-<commit>; needs flex and bison). REPEAT runs
# of each (default 2), the one with the least CPU kept.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
mb=${1:-256}
brokers=${LP_KAFKA_BROKERS:-127.0.0.1:9092}
s3=${LP_S3_ENDPOINT:-http://127.0.0.1:${S3_PORT:-9410}}
ak=${S3_ACCESS_KEY:-logpipe-test}
sk=${S3_SECRET_KEY:-logpipe-test-secret}
repeat=${REPEAT:-2}
rep=0
build=${LP_BUILD:-$repo/build}
shipper=$build/shipper/logpipe-shipper
agg=$build/aggregator/logpipe-aggregator
count=$build/bench/lp-topic-count
work=$(mktemp -d /tmp/lp-bench-s3-XXXXXX)
trap 'pkill -P $$ 2>/dev/null || true; rm -rf "$work"' EXIT
run_id="$$$(date +%s)"
es=unused

fb=${FLUENT_BIT:-}
if [ -z "$fb" ]; then
  [ -n "${FLUENT_BIT_SRC:-}" ] || { echo "set FLUENT_BIT (a binary) or FLUENT_BIT_SRC (a checkout)"; exit 2; }
  commit=$(git -C "$FLUENT_BIT_SRC" rev-parse --short=12 HEAD)
  fbdir="${LOGPIPE_CACHE:-$HOME/.cache/logpipe}/fluent-bit-$commit"
  fb="$fbdir/bin/fluent-bit"
  if [ ! -x "$fb" ]; then
    echo "building Fluent Bit $(git -C "$FLUENT_BIT_SRC" describe --tags 2>/dev/null || echo "$commit") (once)..."
    cmake -S "$FLUENT_BIT_SRC" -B "$fbdir" -DFLB_RELEASE=On -DFLB_WASM=Off -DFLB_LUAJIT=Off \
      -DFLB_EXAMPLES=Off -DFLB_SHARED_LIB=Off -DFLB_TESTS_RUNTIME=Off -DFLB_TESTS_INTERNAL=Off \
      -DFLB_PREFER_SYSTEM_LIB_KAFKA=On -DFLB_PREFER_SYSTEM_LIB_SQLITE=On >"$work/fb-cmake.log" 2>&1 ||
      { tail -20 "$work/fb-cmake.log"; exit 1; }
    cmake --build "$fbdir" -j"$(nproc)" >"$work/fb-build.log" 2>&1 ||
      { tail -20 "$work/fb-build.log"; exit 1; }
  fi
fi
fb_version=$("$fb" --version 2>/dev/null | head -n1)

. "$repo/bench/aggregator/common.sh"
# a metric's sum over its labelled series (lib.sh's metric takes unlabelled ones)
metric_any() { { curl -fsS -m 5 "http://127.0.0.1:$1/metrics" 2>/dev/null || true; } |
  awk -v n="$2" 'index($1, n) == 1 && (length($1) == length(n) || substr($1, length(n) + 1, 1) == "{") { s += $2; f = 1 } END { if (f) printf "%d", s }'; }

echo "generating and shipping $mb MB of container logs..."
read -r _ bytes < <(python3 "$repo/bench/gen_logs.py" "$work/data" "$mb" 8)
topic_b="bench-s3-b-$run_id"; topic_r="bench-s3-r-$run_id"
records=$(ship "$work/data" "$topic_b" batch)
r2=$(ship "$work/data" "$topic_r" record)
echo "  $bytes bytes, $records records (batch topic), $r2 (record topic)"
rm -rf "$work/data"

run_logpipe() { # OUTPUT -> sets wall cpu hwm
  local out=$1 port; port=$(free_port)
  rep=$((rep + 1))
  rm -rf "$work"/segments-*
  local outyaml="{name: out, type: file, path: $work/segments-$rep}" done_metric=logpipe_aggregator_records_in_total
  if [ "$out" = s3 ]; then
    # objects closed at 64 MiB or 5 s, as Fluent Bit's below
    outyaml="{name: out, type: s3, endpoint: \"$s3\", bucket: logpipe, path_style: true, prefix: bench-lp-$run_id-$rep, access_key_id: $ak, secret_access_key: $sk, max_object_age: 5s}"
    done_metric=logpipe_aggregator_s3_records_total
  fi
  cat >"$work/agg-$out.yaml" <<YAML
kafka: {brokers: "$brokers", topic: $topic_b}
aggregator:
  group_id: bench-lp-$out-$run_id-$rep
  workers: 2
  dead_letter_dir: $work/dlq
  outputs: [$outyaml]
metrics: {listen: "127.0.0.1:$port"}
log: {level: warn}
YAML
  local t0 t1; t0=$(date +%s.%N)
  "$agg" -c "$work/agg-$out.yaml" 2>"$work/agg-$out.log" &
  local pid=$! deadline=$((SECONDS + 1800)) n p
  while :; do
    [ $SECONDS -lt $deadline ] || { echo "logpipe-aggregator did not finish in 30 min"; exit 1; }
    n=$(metric_any "$port" "$done_metric"); p=$(metric "$port" logpipe_aggregator_pending_bytes)
    [ "${n:-0}" -ge "$records" ] && [ "${p:-1}" = 0 ] && break
    kill -0 $pid 2>/dev/null || { cat "$work/agg-$out.log"; exit 1; }
    sleep 0.1
  done
  t1=$(date +%s.%N)
  cpu=$(cpu_of $pid); hwm=$(hwm_of $pid)
  kill -TERM $pid; wait $pid || true
  wall=$(echo "$t1 - $t0" | bc -l)
}

run_fluentbit() { # -> sets wall cpu hwm
  local port; port=$(free_port)
  rep=$((rep + 1))
  # objects of up to 64 MiB uploaded within 5 s of their last record: the
  # same sizes and age as logpipe's defaults allow
  cat >"$work/fb.conf" <<CONF
[SERVICE]
    Flush        1
    Log_Level    warn
    HTTP_Server  On
    HTTP_Listen  127.0.0.1
    HTTP_Port    $port
    storage.path $work/fb-store-$rep
[INPUT]
    Name    kafka
    Brokers $brokers
    Topics  $topic_r
    group_id bench-fb-$run_id-$rep
    rdkafka.auto.offset.reset earliest
[OUTPUT]
    Name              s3
    Match             *
    bucket            logpipe
    region            us-east-1
    endpoint          $s3
    s3_key_format     /bench-fb-$run_id-$rep/%Y/%m/%d/%H/\$UUID.ndjson.zst
    compression       zstd
    total_file_size   64M
    upload_timeout    5s
    use_put_object    On
    store_dir         $work/fb-s3-$rep
CONF
  local t0 t1; t0=$(date +%s.%N)
  AWS_ACCESS_KEY_ID=$ak AWS_SECRET_ACCESS_KEY=$sk "$fb" -c "$work/fb.conf" >"$work/fb.log" 2>&1 &
  local pid=$! deadline=$((SECONDS + 1800)) n
  while :; do
    [ $SECONDS -lt $deadline ] || { echo "Fluent Bit did not finish in 30 min:"; tail -5 "$work/fb.log"; exit 1; }
    n=$({ curl -fsS -m 5 "http://127.0.0.1:$port/api/v1/metrics/prometheus" 2>/dev/null || true; } |
      sed -n 's/^fluentbit_output_proc_records_total{name="s3.0"} \([0-9]*\).*/\1/p')
    [ "${n:-0}" -ge "$records" ] && break
    kill -0 $pid 2>/dev/null || { tail -20 "$work/fb.log"; exit 1; }
    sleep 0.2
  done
  t1=$(date +%s.%N)
  # out_s3 counts a record when it is in its local buffer; the upload of
  # the last one follows within upload_timeout: its CPU is counted too
  sleep 8
  cpu=$(cpu_of $pid); hwm=$(hwm_of $pid)
  kill -TERM $pid; wait $pid || true
  wall=$(echo "$t1 - $t0" | bc -l)
}

best() { # FN ARGS -> the run with the least CPU
  local bw bc bh
  for ((i = 0; i < repeat; i++)); do
    "$@"
    if [ -z "${bc:-}" ] || [ "$(echo "$cpu < $bc" | bc -l)" = 1 ]; then bw=$wall; bc=$cpu; bh=$hwm; fi
  done
  wall=$bw; cpu=$bc; hwm=$bh
}

row() { # NAME
  local gb; gb=$(echo "$bytes / 1073741824" | bc -l)
  printf '%-34s %10.0f %8.1f %9.1f %8.2f %9.1f\n' "$1" "$(echo "$records / $wall" | bc -l)" \
    "$(echo "$bytes / 1048576 / $wall" | bc -l)" "$(echo "$cpu / $gb" | bc -l)" "$cpu" \
    "$(echo "$hwm / 1024" | bc -l)"
}

echo "running ($repeat runs each, least CPU kept)..."
best run_logpipe file; fw=$wall fc=$cpu fh=$hwm
best run_logpipe s3; sw=$wall sc=$cpu sh=$hwm
best run_fluentbit; bw=$wall bc=$cpu bh=$hwm
printf '\n%-34s %10s %8s %9s %8s %9s\n' tool "records/s" "MB/s" "CPU s/GB" "CPU s" "peak MiB"
wall=$fw cpu=$fc hwm=$fh; row "logpipe-aggregator -> files"
wall=$sw cpu=$sc hwm=$sh; row "logpipe-aggregator -> s3"
wall=$bw cpu=$bc hwm=$bh; row "$fb_version in_kafka -> out_s3"
echo
echo "logpipe s3 vs files: $(printf '%.2f' "$(echo "$sc / $fc" | bc -l)")x the CPU per GB"
echo "events per CPU-second, logpipe s3 / Fluent Bit: $(printf '%.2f' "$(echo "$bc / $sc" | bc -l)")x" \
  "(goal >= 3x); peak RSS $(printf '%.1f' "$(echo "$sh / 1024" | bc -l)") vs $(printf '%.1f' "$(echo "$bh / 1024" | bc -l)") MiB"
