#!/usr/bin/env bash
# What pod metadata costs the shipper (not a test): 100 pods with 20 labels
# and 5 annotations each, served by the stand-in API server
# (tests/support/k8s_standin.py; no cluster runs here), one CRI log file per
# pod, MB in all. logpipe-shipper ships them to the real Kafka broker with
# shipper.kubernetes off and on; rsyslog's imfile reads them into a file
# without and with mmkubernetes (the same stand-in, which also answers its
# per-pod and per-namespace GETs) as the peer. Each run is repeated REPEAT
# times (default 3) and the least CPU kept. Prints CPU s, CPU s/GB, peak
# RSS, wall, Kafka bytes for logpipe, each tool's on/off ratios, and checks
# that the "on" output carries the labels.
#
#   bench/shipper/k8s.sh [MB]              (default 256)
# Needs: a build in build/, Kafka on 127.0.0.1:9092 (scripts/services up
# kafka), kcat, zstd, rsyslog and rsyslog-kubernetes (Debian).
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
mb=${1:-256}
repeat=${REPEAT:-3}
npods=100
brokers=${LP_KAFKA_BROKERS:-127.0.0.1:9092}
build=${LP_BUILD:-$repo/build}
shipper=$build/shipper/logpipe-shipper
work=$(mktemp -d /tmp/lp-bench-k8s-XXXXXX)
trap 'pkill -P $$ 2>/dev/null || true; rm -rf "$work"' EXIT
. "$repo/bench/lib.sh" # cpu_of, hwm_of (KiB), free_port, metric
now() { date +%s.%N; }
for dep in rsyslogd kcat zstd; do
  command -v $dep >/dev/null || { echo "missing $dep (apt-get install rsyslog rsyslog-kubernetes kcat zstd)"; exit 2; }
done
ls /usr/lib/*/rsyslog/mmkubernetes.so >/dev/null 2>&1 || { echo "missing rsyslog-kubernetes"; exit 2; }

# ---- the API server and the logs
token=bench-token-$$
echo "$token" >"$work/token"
python3 "$repo/tests/support/k8s_standin.py" --token "$token" --pods $npods --labels 20 \
  --url-file "$work/api-url" &
for _ in $(seq 1 100); do [ -s "$work/api-url" ] && break; sleep 0.1; done
api=$(cat "$work/api-url")
mkdir -p "$work/logs" "$work/log/containers"  # the shipper reads pod, namespace and container from a .../log/containers/ path
read -r lines bytes < <(python3 - "$work/logs" "$mb" $npods <<'PY'
import random, sys
d, mb, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
random.seed(7)
per = mb * 1024 * 1024 // n
lines = total = 0
for i in range(n):
    out, size, k = [], 0, 0
    while size < per:
        msg = random.choice((
            f'10.1.{k % 250}.{i} - - "GET /api/v1/items/{k} HTTP/1.1" 200 {k % 5000} "-" "curl/8.5"',
            f'{{"level":"info","msg":"request served","pod":{i},"seq":{k},"ms":{k % 97}}}',
            f"worker {k % 16} finished job {k} of pod {i} in {k % 1000} ms"))
        l = f"2026-12-02T00:00:{k % 60:02d}.{k:09d}Z stdout F {msg}\n"
        out.append(l)
        size += len(l)
        k += 1
    with open(f"{d}/pod-{i}_bench_app-{i:064x}.log", "w") as f:
        f.writelines(out)
    lines += k
    total += size
print(lines, total)
PY
)
gb=$(echo "$bytes / 1073741824" | bc -l)
cat "$work"/logs/*.log >/dev/null # the page cache, for everyone
echo "$npods pods x 20 labels + 5 annotations; $lines lines, $bytes bytes in $npods files; API $api"

move_in() { mv "$work"/logs/*.log "$work/log/containers/"; }
move_back() { mv "$work"/log/containers/*.log "$work/logs/"; }

run_logpipe() { # K8S(0/1) -> cpu hwm wall kbytes labelled
  local port topic; port=$(free_port); topic="lp-bench-k8s-$$-$1-$((++n_run))"
  rm -rf "$work/state"
  local k8s=""
  [ "$1" = 1 ] && k8s="  kubernetes: {enabled: true, api_url: \"$api\", token_file: $work/token, ca_file: \"\",
    node_name: node-a, annotations: [\"team.example.com/*\"]}"
  cat >"$work/ship.yaml" <<YAML
kafka: {brokers: "$brokers", topic: $topic}
shipper:
  state_dir: $work/state
  inputs: [{paths: ["$work/log/containers/*.log"]}]
  rescan_interval: 1s
$k8s
metrics: {listen: "127.0.0.1:$port"}
log: {level: warn}
YAML
  "$shipper" -c "$work/ship.yaml" 2>"$work/ship.log" &
  local pid=$! deadline=$((SECONDS + 60))
  until [ -n "$(metric "$port" logpipe_shipper_files)" ]; do
    [ $SECONDS -lt $deadline ] || { cat "$work/ship.log"; exit 1; }; sleep 0.1
  done
  if [ "$1" = 1 ]; then
    until [ "$(metric "$port" logpipe_shipper_k8s_synced)" = 1 ]; do
      [ $SECONDS -lt $deadline ] || { echo "logpipe: pod cache not synced"; exit 1; }; sleep 0.1
    done
  fi
  local c0 t0; c0=$(cpu_of $pid); t0=$(now)
  move_in
  deadline=$((SECONDS + 1800))
  while :; do
    local rd lag infl
    rd=$(metric "$port" logpipe_shipper_read_bytes_total); lag=$(metric "$port" logpipe_shipper_lag_bytes)
    infl=$(metric "$port" logpipe_shipper_inflight_bytes)
    [ "${rd:-0}" -ge "$bytes" ] && [ "${lag:-1}" = 0 ] && [ "${infl:-1}" = 0 ] && break
    [ $SECONDS -lt $deadline ] || { echo "logpipe: timed out"; exit 1; }
    kill -0 $pid 2>/dev/null || { cat "$work/ship.log"; exit 1; }
    sleep 0.1
  done
  wall=$(echo "$(now) - $t0" | bc -l)
  cpu=$(echo "$(cpu_of $pid) - $c0" | bc -l)
  hwm=$(hwm_of $pid)
  kbytes=$(metric "$port" logpipe_shipper_batch_bytes_total)
  kill -TERM $pid; wait $pid || true
  move_back
  # the batch headers of the first and the last message
  labelled=0
  local hdr
  for off in beginning -1; do
    hdr=$({ kcat -C -b "$brokers" -t "$topic" -p 0 -o $off -c 1 -e -q -f '%s' 2>/dev/null | zstd -dcq 2>/dev/null; } |
      head -1 || true)
    case "$hdr" in *'"kubernetes.labels":{"app_example_com/label-0":"value-'*) labelled=$((labelled + 1)) ;; esac
  done
  if [ "$1" = 1 ]; then sample_lp=$hdr; fi
}

run_rsyslog() { # K8S(0/1) -> cpu hwm wall labelled
  local out="$work/rs.out" conf="$work/rs.conf"
  rm -rf "$work/rs-state"; mkdir -p "$work/rs-state"; : >"$out"
  local action='action(type="omfile" file="'$out'" template="raw" asyncWriting="on" ioBufferSize="1m")'
  local k8s=""
  if [ "$1" = 1 ]; then
    k8s="action(type=\"mmkubernetes\" kubernetesurl=\"$api\" tokenfile=\"$work/token\"
    filenamerules=\"rule=:$work/log/containers/%pod_name:char-to:_%_%namespace_name:char-to:_%_%container_name_and_id:char-to:.%.log\")"
    action='action(type="omfile" file="'$out'" template="k8s" asyncWriting="on" ioBufferSize="1m")'
  fi
  cat >"$conf" <<CONF
global(workDirectory="$work/rs-state")
module(load="imfile" mode="inotify")
module(load="mmkubernetes")
template(name="raw" type="string" string="%msg%\n")
template(name="k8s" type="list") { property(name="msg") constant(value=" ") property(name="\$!kubernetes") constant(value="\n") }
input(type="imfile" File="$work/log/containers/*.log" Tag="bench" addMetadata="on" ruleset="out")
ruleset(name="out" queue.type="LinkedList" queue.size="200000" queue.dequeueBatchSize="1024") {
  $k8s
  $action
}
CONF
  rsyslogd -n -f "$conf" -i "$work/rs.pid" 2>"$work/rs.log" &
  local pid=$!
  sleep 1
  local c0 t0; c0=$(cpu_of $pid); t0=$(now)
  move_in
  local deadline=$((SECONDS + 1800)) got=0
  while [ "$got" -lt "$lines" ]; do
    [ $SECONDS -lt $deadline ] || { echo "rsyslog: timed out at $got of $lines"; exit 1; }
    kill -0 $pid 2>/dev/null || { cat "$work/rs.log"; exit 1; }
    sleep 0.1
    got=$( (wc -l <"$out") 2>/dev/null || echo 0)
  done
  wall=$(echo "$(now) - $t0" | bc -l)
  cpu=$(echo "$(cpu_of $pid) - $c0" | bc -l)
  hwm=$(hwm_of $pid)
  kill -TERM $pid; wait $pid 2>/dev/null || true
  move_back
  labelled=$({ head -1 "$out"; tail -1 "$out"; } | grep -cE '"app[._]example[._]com(\\)?/label-0": *"value-' || true)
  if [ "$1" = 1 ]; then sample_rs=$(tail -1 "$out"); fi
  kbytes=-
}

n_run=0
best() { # TOOL K8S: REPEAT runs, the least CPU kept
  local bc bh bw bk bl
  for _ in $(seq 1 "$repeat"); do
    "run_$1" "$2"
    if [ -z "${bc:-}" ] || [ "$(echo "$cpu < $bc" | bc -l)" = 1 ]; then
      bc=$cpu bh=$hwm bw=$wall bk=$kbytes bl=$labelled
    fi
  done
  cpu=$bc hwm=$bh wall=$bw kbytes=$bk labelled=$bl
}
declare -A C H
rows=()
row() {
  rows+=("$(printf '%-36s %7.2f %8.2f %9.1f %7.2f %12s %9s' "$1" "$cpu" "$(echo "$cpu / $gb" | bc -l)" \
    "$(echo "$hwm / 1024" | bc -l)" "$wall" "$kbytes" "$labelled/2")")
}
best logpipe 0; C[lp0]=$cpu H[lp0]=$hwm; row "logpipe-shipper, kubernetes off"
best logpipe 1; C[lp1]=$cpu H[lp1]=$hwm; row "logpipe-shipper, kubernetes on"
best rsyslog 0; C[rs0]=$cpu H[rs0]=$hwm; row "rsyslog imfile -> omfile"
best rsyslog 1; C[rs1]=$cpu H[rs1]=$hwm; row "rsyslog imfile -> mmkubernetes -> omfile"

echo
printf '%-36s %7s %8s %9s %7s %12s %9s\n' run "CPU s" "CPU s/GB" "peak MiB" "wall s" "Kafka bytes" labelled
printf '%s\n' "${rows[@]}"
echo
echo "logpipe's batch header (once per batch): ${sample_lp:0:400}..."
echo "rsyslog's line (every line): ${sample_rs:0:400}..."
printf 'logpipe: metadata on costs %.2fx the CPU and %.2fx the peak RSS of off\n' \
  "$(echo "${C[lp1]} / ${C[lp0]}" | bc -l)" "$(echo "${H[lp1]} / ${H[lp0]}" | bc -l)"
printf 'rsyslog: mmkubernetes costs %.2fx the CPU and %.2fx the peak RSS of without\n' \
  "$(echo "${C[rs1]} / ${C[rs0]}" | bc -l)" "$(echo "${H[rs1]} / ${H[rs0]}" | bc -l)"
printf 'with metadata, lines per CPU-second: logpipe (to Kafka, compressed) / rsyslog (to a local file): %.2fx\n' \
  "$(echo "${C[rs1]} / ${C[lp1]}" | bc -l)"
