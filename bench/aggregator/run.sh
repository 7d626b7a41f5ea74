#!/usr/bin/env bash
# Aggregator benchmark (not a test). The same container logs are shipped once
# by logpipe-shipper into two topics: the wire format's batches (what
# logpipe-aggregator reads) and one ECS JSON event per message (record mode:
# what rsyslog's imkafka can read). Then, in one run:
#   logpipe-aggregator  batches -> file segments          (FILE_MB of logs)
#   rsyslog             imkafka -> omfile                 (same logs)
#   logpipe-aggregator  batches -> OpenSearch _bulk       (ES_MB of logs)
#   rsyslog             imkafka -> omelasticsearch        (same logs)
# and prints records/s, MB/s (of log bytes), CPU seconds per GB, peak RSS,
# the ratios, and OpenSearch's own CPU during each bulk run (when OpenSearch
# burns more CPU than the sender, it is the bottleneck).
#
#   bench/aggregator/run.sh [FILE_MB] [ES_MB]       (default 1024 and 128)
# The file runs are repeated REPEAT times (default 3) and the run with the
# least CPU is kept (page-cache writeback and the other processes of a small
# machine make single CPU figures noisy).
# Needs: a build in build/, Kafka and OpenSearch (scripts/services up), rsyslog
# with rsyslog-kafka and rsyslog-elasticsearch.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
file_mb=${1:-1024}
es_mb=${2:-128}
brokers=${LP_KAFKA_BROKERS:-127.0.0.1:9092}
es=${LP_OPENSEARCH_URL:-http://127.0.0.1:9200}
repeat=${REPEAT:-3}
rep=0
build=${LP_BUILD:-$repo/build}
shipper=$build/shipper/logpipe-shipper
agg=$build/aggregator/logpipe-aggregator
count=$build/bench/lp-topic-count
work=$(mktemp -d /tmp/lp-bench-agg-XXXXXX)
trap 'pkill -P $$ 2>/dev/null || true; rm -rf "$work"' EXIT
run_id="$$$(date +%s)"

command -v rsyslogd >/dev/null || { echo "missing rsyslog"; exit 2; }
for m in imkafka omelasticsearch; do
  ls /usr/lib/*/rsyslog/$m.so >/dev/null 2>&1 ||
    { echo "missing rsyslog module $m (apt-get install rsyslog-kafka rsyslog-elasticsearch)"; exit 2; }
done
os_pid=$(cat "${LOGPIPE_RUN:-$repo/.run}/opensearch.pid" 2>/dev/null || echo)

. "$repo/bench/aggregator/common.sh"

declare -A bytes records topic_b topic_r
for size in file es; do
  mb=$file_mb; [ $size = es ] && mb=$es_mb
  echo "generating and shipping $mb MB of container logs ($size runs)..."
  read -r _ bytes[$size] < <(python3 "$repo/bench/gen_logs.py" "$work/data-$size" "$mb" 8)
  topic_b[$size]="bench-agg-b-$size-$run_id"; topic_r[$size]="bench-agg-r-$size-$run_id"
  records[$size]=$(ship "$work/data-$size" "${topic_b[$size]}" batch)
  r2=$(ship "$work/data-$size" "${topic_r[$size]}" record)
  echo "  ${bytes[$size]} bytes, ${records[$size]} records (batch topic), $r2 (record topic)"
  rm -rf "$work/data-$size"
done

# ---- logpipe-aggregator
run_logpipe() { # SIZE OUTPUT -> sets wall cpu hwm oscpu
  local size=$1 out=$2 port; port=$(free_port)
  rep=$((rep + 1))
  rm -rf "$work"/segments-*
  local outyaml="{name: out, type: file, path: $work/segments-$out-$rep}"
  [ "$out" = es ] && outyaml="{name: out, type: elasticsearch, url: \"$es\", index: \"bench-lp-$run_id\", template_name: bench-lp-$run_id}"
  # the same without gzip: on loopback or a fast LAN it costs more CPU than it saves
  [ "$out" = es-none ] && outyaml="{name: out, type: elasticsearch, url: \"$es\", index: \"bench-lpn-$run_id\", template_name: bench-lpn-$run_id, compression: none}"
  cat >"$work/agg-$out.yaml" <<YAML
kafka: {brokers: "$brokers", topic: ${topic_b[$size]}}
aggregator:
  group_id: bench-lp-$out-$run_id-$rep
  workers: 2
  dead_letter_dir: $work/dlq
  outputs: [$outyaml]
metrics: {listen: "127.0.0.1:$port"}
log: {level: warn}
YAML
  local os0=0; [ -n "$os_pid" ] && os0=$(cpu_of "$os_pid")
  local t0 t1; t0=$(date +%s.%N)
  "$agg" -c "$work/agg-$out.yaml" 2>"$work/agg-$out.log" &
  local pid=$! deadline=$((SECONDS + 1800))
  while :; do
    [ $SECONDS -lt $deadline ] || { echo "logpipe-aggregator did not finish in 30 min"; exit 1; }
    n=$(metric "$port" logpipe_aggregator_records_in_total); p=$(metric "$port" logpipe_aggregator_pending_bytes)
    q=$(metric "$port" logpipe_aggregator_output_queued)
    [ "${n:-0}" -ge "${records[$size]}" ] && [ "${p:-1}" = 0 ] && [ "${q:-0}" = 0 ] && break
    kill -0 $pid 2>/dev/null || { cat "$work/agg-$out.log"; exit 1; }
    sleep 0.1
  done
  t1=$(date +%s.%N)
  cpu=$(cpu_of $pid); hwm=$(hwm_of $pid)
  oscpu=0; [ -n "$os_pid" ] && oscpu=$(echo "$(cpu_of "$os_pid") - $os0" | bc -l)
  kill -TERM $pid; wait $pid || true
  wall=$(echo "$t1 - $t0" | bc -l)
}

# ---- rsyslog imkafka
run_rsyslog() { # SIZE OUTPUT -> sets wall cpu hwm oscpu
  local size=$1 out=$2
  rep=$((rep + 1))
  rm -rf "$work/rs-$out"
  mkdir -p "$work/rs-$out"
  local action="action(type=\"omfile\" file=\"$work/rs-$out/out.ndjson\" template=\"raw\" asyncWriting=\"on\" ioBufferSize=\"1m\")"
  [ "$out" = es ] && action="action(type=\"omelasticsearch\" server=\"127.0.0.1\" serverport=\"${es##*:}\" template=\"raw\" searchIndex=\"bench-rs-$run_id\" esVersion.major=\"8\" bulkmode=\"on\" maxbytes=\"5m\" action.resumeRetryCount=\"-1\" queue.type=\"LinkedList\" queue.size=\"200000\" queue.dequeueBatchSize=\"2000\" queue.workerThreads=\"2\")"
  cat >"$work/rs-$out.conf" <<CONF
global(workDirectory="$work/rs-$out" maxMessageSize="1m")
module(load="imkafka")
module(load="omelasticsearch")
template(name="raw" type="string" string="%rawmsg%\n")
ruleset(name="r" queue.type="LinkedList" queue.size="200000" queue.dequeueBatchSize="2000") {
  $action
}
input(type="imkafka" topic="${topic_r[$size]}" broker="$brokers" consumergroup="bench-rs-$out-$run_id-$rep"
      ruleset="r" confParam=["auto.offset.reset=earliest"])
CONF
  [ "$out" = es ] && sed -i 's/string="%rawmsg%\\n"/string="%rawmsg%"/' "$work/rs-$out.conf"
  local os0=0; [ -n "$os_pid" ] && os0=$(cpu_of "$os_pid")
  local t0 t1; t0=$(date +%s.%N)
  rsyslogd -n -f "$work/rs-$out.conf" -i "$work/rs-$out/pid" 2>"$work/rs-$out.log" &
  local pid=$! n deadline=$((SECONDS + 1800))
  while :; do
    [ $SECONDS -lt $deadline ] || { echo "rsyslog did not finish in 30 min:"; tail -5 "$work/rs-$out.log"; exit 1; }
    if [ "$out" = es ]; then n=$(es_count "bench-rs-$run_id"); sleep 0.5
    else n=$({ wc -l <"$work/rs-$out/out.ndjson"; } 2>/dev/null || echo 0); sleep 0.1; fi
    [ "${n:-0}" -ge "${records[$size]}" ] && break
    kill -0 $pid 2>/dev/null || { cat "$work/rs-$out.log"; exit 1; }
  done
  t1=$(date +%s.%N)
  cpu=$(cpu_of $pid); hwm=$(hwm_of $pid)
  oscpu=0; [ -n "$os_pid" ] && oscpu=$(echo "$(cpu_of "$os_pid") - $os0" | bc -l)
  kill -TERM $pid; wait $pid || true
  wall=$(echo "$t1 - $t0" | bc -l)
}

row() { # NAME SIZE
  local gb; gb=$(echo "${bytes[$2]} / 1073741824" | bc -l)
  printf '%-30s %10.0f %8.1f %9.1f %8.2f %9.1f %10.1f\n' "$1" "$(echo "${records[$2]} / $wall" | bc -l)" \
    "$(echo "${bytes[$2]} / 1048576 / $wall" | bc -l)" "$(echo "$cpu / $gb" | bc -l)" "$cpu" \
    "$(echo "$hwm / 1024" | bc -l)" "$oscpu"
}
hdr() { printf '%-30s %10s %8s %9s %8s %9s %10s\n' tool "records/s" "MB/s" "CPU s/GB" "CPU s" "peak MiB" "OS CPU s"; }

echo "running..."
best_of() { # FN SIZE OUT: runs FN $repeat times, keeps the run with the least CPU
  local bw bc bh bo i
  for i in $(seq 1 "$repeat"); do
    "$1" "$2" "$3"
    echo "  $1 $3 run $i: $(printf '%.2f' "$cpu") CPU s, $(printf '%.1f' "$wall") s"
    if [ -z "${bc:-}" ] || [ "$(echo "$cpu < $bc" | bc -l)" = 1 ]; then bw=$wall bc=$cpu bh=$hwm bo=$oscpu; fi
  done
  wall=$bw cpu=$bc hwm=$bh oscpu=$bo
}
best_of run_logpipe file file; lpf=("$wall" "$cpu" "$hwm" "$oscpu"); lpf_row=$(row "logpipe-aggregator -> files" file)
best_of run_rsyslog file file; rsf_cpu=$cpu rsf_hwm=$hwm; rsf_row=$(row "rsyslog imkafka -> omfile" file)
# rsyslog first: OpenSearch's JVM is warmer for whoever goes second
run_rsyslog es es; rse_cpu=$cpu rse_wall=$wall; rse_row=$(row "rsyslog -> omelasticsearch" es)
run_logpipe es es; lpe_cpu=$cpu lpe_wall=$wall lpe_os=$oscpu; lpe_row=$(row "logpipe-aggregator -> OpenSearch" es)
run_logpipe es es-none; lpn_cpu=$cpu; lpn_row=$(row "logpipe -> OpenSearch, no gzip" es)

echo
echo "files: $(echo "${bytes[file]} / 1048576" | bc) MB of logs, ${records[file]} records; OpenSearch: $(echo "${bytes[es]} / 1048576" | bc) MB, ${records[es]} records"
echo "logpipe reads the batch topic (zstd NDJSON), rsyslog the record topic (one ECS JSON per message)"
hdr
echo "$lpf_row"; echo "$rsf_row"; echo "$rse_row"; echo "$lpe_row"; echo "$lpn_row"
echo
printf 'files (best of %s runs each): throughput per CPU-second, logpipe / rsyslog: %.2fx (goal >= 3)\n' "$repeat" "$(echo "$rsf_cpu / ${lpf[1]}" | bc -l)"
printf 'files: peak RSS, logpipe / rsyslog:                       %.2fx\n' "$(echo "${lpf[2]} / $rsf_hwm" | bc -l)"
printf 'OpenSearch: wall time, rsyslog / logpipe:                 %.2fx\n' "$(echo "$rse_wall / $lpe_wall" | bc -l)"
printf 'OpenSearch: CPU per record, rsyslog / logpipe:            %.2fx\n' "$(echo "$rse_cpu / $lpe_cpu" | bc -l)"
gb_f=$(echo "${bytes[file]} / 1073741824" | bc -l); gb_e=$(echo "${bytes[es]} / 1073741824" | bc -l)
printf 'CPU per GB, OpenSearch path / file path (gzip):           %.2fx (goal <= 2)\n' "$(echo "($lpe_cpu / $gb_e) / (${lpf[1]} / $gb_f)" | bc -l)"
printf 'CPU per GB, OpenSearch path / file path (no gzip):        %.2fx (goal <= 2)\n' "$(echo "($lpn_cpu / $gb_e) / (${lpf[1]} / $gb_f)" | bc -l)"
printf 'OpenSearch run: OpenSearch CPU / logpipe CPU:             %.2fx (> 1: OpenSearch is the bottleneck)\n' "$(echo "$lpe_os / $lpe_cpu" | bc -l)"
printf 'OpenSearch run: logpipe used %.0f%% of one core\n' "$(echo "100 * $lpe_cpu / $lpe_wall" | bc -l)"
curl -fsS -m 10 -XDELETE "$es/bench-lp-$run_id,bench-lpn-$run_id,bench-rs-$run_id" >/dev/null 2>&1 || true
curl -fsS -m 10 -XDELETE "$es/_index_template/bench-lpn-$run_id" >/dev/null 2>&1 || true
curl -fsS -m 10 -XDELETE "$es/_index_template/bench-lp-$run_id" >/dev/null 2>&1 || true
