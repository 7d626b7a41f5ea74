#!/usr/bin/env bash
# What redaction and sampling cost (a benchmark, not a test). The same
# container logs (bench/gen_logs.py: 45 % access logs with an IPv4 client,
# JSON app logs, stack traces, long lines) are shipped once into a batch topic
# and a record-mode topic, then consumed into files by:
#   logpipe-aggregator            no rules (the baseline)
#   logpipe-aggregator            redact: all seven detectors
#   logpipe-aggregator            redact: ipv4 + ipv6 only (what mmanon does)
#   logpipe-aggregator            sample: 0.1 (90 % dropped before rendering)
#   rsyslog imkafka -> omfile     no rules
#   rsyslog imkafka -> mmanon     ipv4 + ipv6 anonymisation -> omfile
# each REPEAT times (default 3, the least CPU kept), and prints CPU s/GB, peak RSS, each run's CPU over its tool's baseline, and
# logpipe's ip-only redaction against rsyslog's mmanon per CPU-second.
#
#   bench/aggregator/controls.sh [MB]        (default 256)
# Needs: a build in build/, Kafka (scripts/services up kafka), rsyslog with
# rsyslog-kafka (mmanon is in rsyslog itself).
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
mb=${1:-256}
brokers=${LP_KAFKA_BROKERS:-127.0.0.1:9092}
es=${LP_OPENSEARCH_URL:-http://127.0.0.1:9200}
build=${LP_BUILD:-$repo/build}
shipper=$build/shipper/logpipe-shipper
agg=$build/aggregator/logpipe-aggregator
count=$build/bench/lp-topic-count
work=$(mktemp -d /tmp/lp-bench-controls-XXXXXX)
trap 'pkill -P $$ 2>/dev/null || true; [ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT
run_id="$$$(date +%s)"
rep=0
command -v rsyslogd >/dev/null || { echo "missing rsyslog"; exit 2; }
for m in imkafka mmanon; do
  ls /usr/lib/*/rsyslog/$m.so >/dev/null 2>&1 || { echo "missing rsyslog module $m"; exit 2; }
done
. "$repo/bench/aggregator/common.sh"

echo "generating and shipping $mb MB of container logs..."
read -r _ bytes < <(python3 "$repo/bench/gen_logs.py" "$work/data" "$mb" 8)
topic_b="bench-ctl-b-$run_id"; topic_r="bench-ctl-r-$run_id"
records=$(ship "$work/data" "$topic_b" batch)
r2=$(ship "$work/data" "$topic_r" record)
echo "  $bytes bytes, $records records (batch topic), $r2 (record topic)"
rm -rf "$work/data"

run_logpipe() { # NAME YAML-LINES -> sets cpu hwm wall lines
  local port; port=$(free_port)
  rm -rf "$work/seg"
  rep=$((rep + 1)) # a new group per run (an expansion in the here-document would not count)
  cat >"$work/agg.yaml" <<YAML
kafka: {brokers: "$brokers", topic: $topic_b}
aggregator:
  group_id: bench-ctl-$1-$run_id-$rep
  workers: 2
  dead_letter_dir: $work/dlq
  outputs: [{name: out, type: file, path: $work/seg}]
$2
metrics: {listen: "127.0.0.1:$port"}
log: {level: warn}
YAML
  local t0 t1; t0=$(date +%s.%N)
  "$agg" -c "$work/agg.yaml" 2>"$work/agg-$1.log" &
  local pid=$! deadline=$((SECONDS + 1800)) n p
  while :; do
    [ $SECONDS -lt $deadline ] || { echo "logpipe-aggregator did not finish in 30 min"; exit 1; }
    n=$(metric "$port" logpipe_aggregator_records_in_total); p=$(metric "$port" logpipe_aggregator_pending_bytes)
    [ "${n:-0}" -ge "$records" ] && [ "${p:-1}" = 0 ] && break
    kill -0 $pid 2>/dev/null || { cat "$work/agg-$1.log"; exit 1; }
    sleep 0.1
  done
  t1=$(date +%s.%N)
  cpu=$(cpu_of $pid); hwm=$(hwm_of $pid)
  redacted=$({ curl -fsS -m 2 "http://127.0.0.1:$port/metrics" 2>/dev/null || true; } |
    awk '$1 ~ /^logpipe_aggregator_redacted_total[{ ]/ { s += $2 } END { printf "%d", s }')
  kill -TERM $pid; wait $pid || true
  wall=$(echo "$t1 - $t0" | bc -l)
  lines=$(cat "$work"/seg/*/*/*/*.ndjson 2>/dev/null | wc -l)
  red_lines=$(cat "$work"/seg/*/*/*/*.ndjson 2>/dev/null | grep -c '\[redacted:' || true)
}

run_rsyslog() { # NAME ANON(0/1) -> sets cpu hwm wall lines
  rm -rf "$work/rs"; mkdir -p "$work/rs"
  rep=$((rep + 1))
  local anon=""
  [ "$2" = 1 ] && anon='action(type="mmanon" ipv4.mode="zero" ipv4.bits="32" ipv6.anonmode="zero" ipv6.bits="128")'
  cat >"$work/rs.conf" <<CONF
global(workDirectory="$work/rs" maxMessageSize="1m")
module(load="imkafka")
module(load="mmanon")
template(name="raw" type="string" string="%rawmsg%\n")
ruleset(name="r" queue.type="LinkedList" queue.size="200000" queue.dequeueBatchSize="2000") {
  $anon
  action(type="omfile" file="$work/rs/out.ndjson" template="raw" asyncWriting="on" ioBufferSize="1m")
}
input(type="imkafka" topic="$topic_r" broker="$brokers" consumergroup="bench-ctl-rs-$1-$run_id-$rep"
      ruleset="r" confParam=["auto.offset.reset=earliest"])
CONF
  local t0 t1; t0=$(date +%s.%N)
  rsyslogd -n -f "$work/rs.conf" -i "$work/rs/pid" 2>"$work/rs-$1.log" &
  local pid=$! deadline=$((SECONDS + 1800)) n
  while :; do
    [ $SECONDS -lt $deadline ] || { echo "rsyslog did not finish in 30 min"; exit 1; }
    n=$( (wc -l <"$work/rs/out.ndjson") 2>/dev/null || echo 0)
    [ "${n:-0}" -ge "$records" ] && break
    kill -0 $pid 2>/dev/null || { cat "$work/rs-$1.log"; exit 1; }
    sleep 0.1
  done
  t1=$(date +%s.%N)
  cpu=$(cpu_of $pid); hwm=$(hwm_of $pid)
  kill -TERM $pid; wait $pid || true
  wall=$(echo "$t1 - $t0" | bc -l)
  lines=$n
}

repeat=${REPEAT:-3}
best() { # FN NAME ARG: runs FN REPEAT times, keeps the run with the least CPU
  local bc bh bl br bw
  for _ in $(seq 1 "$repeat"); do
    "$1" "$2" "$3"
    if [ -z "${bc:-}" ] || [ "$(echo "$cpu < $bc" | bc -l)" = 1 ]; then
      bc=$cpu bh=$hwm bl=$lines bw=$wall br=${red_lines:-0}
    fi
  done
  cpu=$bc hwm=$bh lines=$bl wall=$bw red_lines=$br
}
gb=$(echo "$bytes / 1073741824" | bc -l)
declare -A C
row() { printf '%-48s %8.2f %9.1f %9.1f %10s\n' "$1" "$cpu" "$(echo "$cpu / $gb" | bc -l)" "$(echo "$hwm / 1024" | bc -l)" "$lines"; }
out=()
best run_logpipe base ""; C[lp]=$cpu; out+=("$(row "logpipe, no rules")")
best run_logpipe all "  redact:
    - {name: email, detector: email}
    - {name: ipv4, detector: ipv4}
    - {name: ipv6, detector: ipv6}
    - {name: card, detector: card}
    - {name: bearer, detector: bearer}
    - {name: jwt, detector: jwt}
    - {name: aws, detector: aws_key}"
C[lp_all]=$cpu; red_all="${redacted:-0} values in $red_lines lines"; out+=("$(row "logpipe, redact: all 7 detectors")")
best run_logpipe ip "  redact: [{name: ipv4, detector: ipv4}, {name: ipv6, detector: ipv6}]"
C[lp_ip]=$cpu; red_ip="${redacted:-0} values in $red_lines lines"; out+=("$(row "logpipe, redact: ipv4 + ipv6")")
best run_logpipe sample "  default_route: {outputs: [out]}
  routes: [{name: all, match: [{field: message, exists: true}], sample: 0.1, outputs: [out]}]"
C[lp_sample]=$cpu; out+=("$(row "logpipe, sample: 0.1")")
best run_rsyslog base 0; C[rs]=$cpu; out+=("$(row "rsyslog imkafka -> omfile")")
best run_rsyslog anon 1; C[rs_anon]=$cpu; out+=("$(row "rsyslog imkafka -> mmanon (ipv4+ipv6) -> omfile")")

echo
echo "$(echo "$bytes / 1048576" | bc) MB of logs, $records records; logpipe reads the batch topic, rsyslog the record topic"
printf '%-48s %8s %9s %9s %10s\n' run "CPU s" "CPU s/GB" "peak MiB" "lines out"
printf '%s\n' "${out[@]}"
echo
printf 'logpipe: all 7 detectors cost %.2fx the baseline CPU (%s changed)\n' "$(echo "${C[lp_all]} / ${C[lp]}" | bc -l)" "$red_all"
printf 'logpipe: ipv4+ipv6 cost %.2fx the baseline CPU (%s changed)\n' "$(echo "${C[lp_ip]} / ${C[lp]}" | bc -l)" "$red_ip"
printf 'logpipe: sample 0.1 costs %.2fx the baseline CPU\n' "$(echo "${C[lp_sample]} / ${C[lp]}" | bc -l)"
printf 'rsyslog: mmanon costs %.2fx its baseline CPU\n' "$(echo "${C[rs_anon]} / ${C[rs]}" | bc -l)"
printf 'ip anonymisation per CPU-second, logpipe (ipv4+ipv6 redaction) / rsyslog (mmanon): %.2fx\n' "$(echo "${C[rs_anon]} / ${C[lp_ip]}" | bc -l)"
printf 'all 7 detectors vs rsyslog mmanon (ip only), per CPU-second: %.2fx\n' "$(echo "${C[rs_anon]} / ${C[lp_all]}" | bc -l)"
