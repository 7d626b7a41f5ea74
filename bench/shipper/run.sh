#!/usr/bin/env bash
# Shipper benchmark (not a test): the same container logs shipped to the real
# Kafka broker by logpipe-shipper and by rsyslog (imfile -> omkafka), with
# `zstd -1 -T1` over the same files as the floor (read + compress, one core).
# Prints MB/s, lines/s, CPU seconds per GB and peak RSS of each, the ratios,
# and logpipe's peak RSS tailing 1,000 small files.
#
#   bench/shipper/run.sh [MB] [FILES]      (default 1024 MB in 8 files)
# Needs: a build in build/ (scripts/test or cmake), Kafka on 127.0.0.1:9092
# (scripts/services up kafka), rsyslog + rsyslog-kafka, zstd.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
mb=${1:-1024}
nfiles=${2:-8}
brokers=${LP_KAFKA_BROKERS:-127.0.0.1:9092}
build=${LP_BUILD:-$repo/build}
shipper=$build/shipper/logpipe-shipper
count=$build/bench/lp-topic-count
work=$(mktemp -d /tmp/lp-bench-XXXXXX)
trap 'rm -rf "$work"' EXIT
clk=$(getconf CLK_TCK)

for dep in rsyslogd zstd; do
  command -v $dep >/dev/null || { echo "missing $dep (apt-get install rsyslog rsyslog-kafka zstd)"; exit 2; }
done
[ -e /usr/lib/x86_64-linux-gnu/rsyslog/omkafka.so ] || ls /usr/lib/*/rsyslog/omkafka.so >/dev/null 2>&1 ||
  { echo "missing rsyslog-kafka"; exit 2; }

echo "generating ${mb} MB of container logs in $nfiles files..."
read -r lines bytes < <(python3 "$repo/bench/gen_logs.py" "$work/data" "$mb" "$nfiles")
echo "  $lines physical lines, $bytes bytes"
cat "$work"/data/*.log >/dev/null # warm the page cache for everyone

cpu_of() { # utime + stime of a live pid, in seconds
  awk -v clk="$clk" '{ printf "%.2f", ($14 + $15) / clk }' "/proc/$1/stat"
}
hwm_of() { awk '/VmHWM/ { print $2 }' "/proc/$1/status"; } # KiB
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# ---- zstd floor
t0=$(date +%s.%N)
/usr/bin/time -f "%U %S" -o "$work/zstd.time" sh -c "cat $work/data/*.log | zstd -1 -T1 -q -c > /dev/null"
t1=$(date +%s.%N)
zstd_cpu=$(awk '{ printf "%.2f", $1 + $2 }' "$work/zstd.time")
zstd_wall=$(echo "$t1 - $t0" | bc -l)

# ---- logpipe-shipper, at zstd level 1 (like the floor) and at its default 3
run_logpipe() { # LEVEL -> sets lp_wall lp_cpu lp_hwm lp_events lp_out
  local level=$1 topic
  topic="bench-lp$1-$$-$(date +%s)"
  "$count" "$brokers" "$topic" --create 4 >/dev/null
  port=$(free_port)
  rm -rf "$work/lp-state"
  cat >"$work/lp.yaml" <<YAML
kafka: {brokers: "$brokers", topic: $topic, max_message_bytes: 1MiB}
shipper:
  state_dir: $work/lp-state
  inputs: [{paths: ["$work/data/*.log"]}]
  rescan_interval: 1s
  compression_level: $level
metrics: {listen: "127.0.0.1:$port"}
log: {level: warn}
YAML
  local t0 t1 pid
  t0=$(date +%s.%N)
  "$shipper" -c "$work/lp.yaml" 2>"$work/lp.log" &
  pid=$!
  while :; do
    local lag infl rd
    lag=$(metric logpipe_shipper_lag_bytes); infl=$(metric logpipe_shipper_inflight_bytes)
    rd=$(metric logpipe_shipper_read_bytes_total)
    [ "${rd:-0}" -ge "$bytes" ] && [ "${lag:-1}" = 0 ] && [ "${infl:-1}" = 0 ] && break
    kill -0 $pid 2>/dev/null || { cat "$work/lp.log"; exit 1; }
    sleep 0.05
  done
  t1=$(date +%s.%N)
  lp_cpu=$(cpu_of $pid); lp_hwm=$(hwm_of $pid)
  lp_events=$(metric logpipe_shipper_events_total); lp_out=$(metric logpipe_shipper_batch_bytes_total)
  kill -TERM $pid; wait $pid || true
  lp_wall=$(echo "$t1 - $t0" | bc -l)
}
metric() { curl -fsS -m 2 "http://127.0.0.1:$port/metrics" 2>/dev/null | awk -v n="$1" '$1 == n { print $2 }'; }
run_logpipe 1
lp1_wall=$lp_wall lp1_cpu=$lp_cpu lp1_hwm=$lp_hwm lp1_out=$lp_out
run_logpipe 3

# ---- rsyslog imfile -> omkafka
topic_rs="bench-rs-$$-$(date +%s)"
"$count" "$brokers" "$topic_rs" --create 4 >/dev/null
mkdir -p "$work/rs-work"
cat >"$work/rsyslog.conf" <<CONF
global(workDirectory="$work/rs-work" maxMessageSize="64k")
module(load="imfile" mode="inotify")
module(load="omkafka")
template(name="raw" type="string" string="%rawmsg%")
ruleset(name="ship" queue.type="LinkedList" queue.size="200000") {
  action(type="omkafka" broker=["$brokers"] topic="$topic_rs" template="raw"
         confParam=["compression.codec=zstd", "acks=all", "queue.buffering.max.messages=1000000"])
}
input(type="imfile" File="$work/data/*.log" Tag="bench" ruleset="ship")
CONF
t0=$(date +%s.%N)
rsyslogd -n -f "$work/rsyslog.conf" -i "$work/rsyslog.pid" 2>"$work/rs.log" &
rs_pid=$!
while :; do
  n=$("$count" "$brokers" "$topic_rs" 2>/dev/null || echo -1)
  [ "$n" -ge "$lines" ] && break
  kill -0 $rs_pid 2>/dev/null || { cat "$work/rs.log"; exit 1; }
  sleep 0.05
done
t1=$(date +%s.%N)
rs_cpu=$(cpu_of $rs_pid); rs_hwm=$(hwm_of $rs_pid)
kill -TERM $rs_pid; wait $rs_pid || true
rs_wall=$(echo "$t1 - $t0" | bc -l)

# ---- 1,000 small files
mkdir -p "$work/small"
for i in $(seq 1 1000); do
  printf '{"log":"small file %d line %d\\n","stream":"stdout","time":"2026-11-28T07:21:00Z"}\n' $i 1 $i 2 $i 3 >"$work/small/f$i.log"
done
port2=$(free_port)
cat >"$work/small.yaml" <<YAML
kafka: {brokers: "$brokers", topic: bench-small-$$}
shipper: {state_dir: $work/small-state, inputs: [{paths: ["$work/small/*.log"]}]}
metrics: {listen: "127.0.0.1:$port2"}
log: {level: warn}
YAML
"$shipper" -c "$work/small.yaml" 2>"$work/small.log" &
sm_pid=$!
port=$port2
sleep 0.5
for _ in $(seq 1 300); do
  [ "$(metric logpipe_shipper_events_total)" = 3000 ] && [ "$(metric logpipe_shipper_inflight_bytes)" = 0 ] && break
  sleep 0.2
done
sleep 1
sm_hwm=$(hwm_of $sm_pid); sm_files=$(metric logpipe_shipper_files)
kill -TERM $sm_pid; wait $sm_pid || true

gb=$(echo "$bytes / 1073741824" | bc -l)
row() { # name wall cpu hwm
  printf '%-24s %9.1f %11.0f %9.1f %10.2f %10.1f\n' "$1" "$(echo "$bytes / 1048576 / $2" | bc -l)" \
    "$(echo "$lines / $2" | bc -l)" "$(echo "$3 / $gb" | bc -l)" "$3" "$(echo "$4 / 1024" | bc -l)"
}
echo
echo "input: $(echo "$bytes / 1048576" | bc) MB, $lines physical lines, $nfiles files; Kafka $brokers, acks=all, zstd"
printf '%-24s %9s %11s %9s %10s %10s\n' tool "MB/s" "lines/s" "CPU s/GB" "CPU s" "peak MiB"
row "logpipe-shipper zstd-1" "$lp1_wall" "$lp1_cpu" "$lp1_hwm"
row "logpipe-shipper zstd-3" "$lp_wall" "$lp_cpu" "$lp_hwm"
row "rsyslog imfile+omkafka" "$rs_wall" "$rs_cpu" "${rs_hwm:-0}"
row "zstd -1 -T1 (floor)" "$zstd_wall" "$zstd_cpu" 0
echo
echo "logpipe: $lp_events events (partials joined); to Kafka $(echo "$lp1_out / 1048576" | bc) MB at level 1, $(echo "$lp_out / 1048576" | bc) MB at level 3"
printf 'throughput per CPU-second, logpipe (default) / rsyslog: %.2fx (goal >= 2)\n' "$(echo "$rs_cpu / $lp_cpu" | bc -l)"
printf 'peak RSS, logpipe (default) / rsyslog:                 %.2fx (goal < 1)\n' "$(echo "$lp_hwm / ${rs_hwm:-1}" | bc -l)"
printf 'CPU, logpipe at level 1 / zstd -1 floor:               %.2fx (goal <= 2)\n' "$(echo "$lp1_cpu / $zstd_cpu" | bc -l)"
printf 'CPU, logpipe at level 3 (default) / zstd -1 floor:     %.2fx\n' "$(echo "$lp_cpu / $zstd_cpu" | bc -l)"
printf 'peak RSS tailing 1,000 small files:          %.1f MiB (%s files)\n' "$(echo "$sm_hwm / 1024" | bc -l)" "$sm_files"
