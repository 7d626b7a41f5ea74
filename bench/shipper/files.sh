#!/usr/bin/env bash
# Shipper cost with many files (not a test): N container log files of 20
# CRI lines each in one directory (like /var/log/containers), shipped to the
# real Kafka broker by logpipe-shipper, and read by rsyslog's imfile (inotify
# mode, to a local file) as the peer. For each N prints wall time until every
# line is acknowledged (logpipe) or written (rsyslog), CPU seconds, peak RSS,
# logpipe's mean rescan time over the settled files (rescan_interval 1s,
# close_inactive 2s: settled means every file closed idle, watched by stat),
# and each per file. Goal: cost per file flat from 1,000 to 50,000.
#
#   bench/shipper/files.sh [N...]          (default 1000 10000 50000)
# Needs: a build in build/, Kafka on 127.0.0.1:9092 (scripts/services up kafka),
# rsyslog (Debian). logpipe needs no open-file limit above N (it closes idle
# files and makes new ones wait at max_open_files); rsyslog does.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
[ $# -gt 0 ] || set -- 1000 10000 50000
brokers=${LP_KAFKA_BROKERS:-127.0.0.1:9092}
build=${LP_BUILD:-$repo/build}
shipper=$build/shipper/logpipe-shipper
work=$(mktemp -d /tmp/lp-bench-files-XXXXXX)
trap 'pkill -P $$ 2>/dev/null || true; rm -rf "$work"' EXIT
clk=$(getconf CLK_TCK)
cpu_of() { awk -v clk="$clk" '{ printf "%.2f", ($14 + $15) / clk }' "/proc/$1/stat"; }
hwm_of() { awk '/VmHWM/ { print $2 }' "/proc/$1/status"; } # KiB
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
metric() { { curl -fsS -m 5 "http://127.0.0.1:$1/metrics" 2>/dev/null || true; } | awk -v n="$2" '$1 == n { s += $2 } END { printf "%.6f", s }'; }
now() { date +%s.%N; }
command -v rsyslogd >/dev/null || { echo "missing rsyslogd (apt-get install rsyslog)"; exit 2; }

printf '%8s | %-8s %8s %8s %8s | %10s %10s %10s %12s\n' files who wall_s cpu_s rss_MiB \
  "ms/file" "cpu_ms/file" "KiB/file" "rescan_ms"
for n in "$@"; do
  # more descriptors help rsyslog (one per file); logpipe closes idle files
  # and needs none beyond its max_open_files
  ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
  dir="$work/$n/containers"
  mkdir -p "$dir"
  python3 - "$dir" "$n" <<'PY'
import sys
d, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    with open("%s/pod-%d_bench_app-%064x.log" % (d, i, i), "w") as f:
        f.write("".join("2026-12-02T00:00:00.%09dZ stdout F file %d line %d of twenty\n" % (k, i, k)
                        for k in range(20)))
PY
  lines=$((n * 20))

  # ---- logpipe
  topic=lp-bench-files-$$-$n
  port=$(free_port)
  cat >"$work/$n/ship.yaml" <<YAML
kafka: {brokers: "$brokers", topic: $topic}
shipper:
  state_dir: $work/$n/state
  inputs: [{paths: ["$dir/*.log"]}]
  rescan_interval: 1s
  close_inactive: 2s
metrics: {listen: "127.0.0.1:$port"}
log: {level: warn}
YAML
  t0=$(now)
  "$shipper" -c "$work/$n/ship.yaml" 2>"$work/$n/ship.log" &
  pid=$!
  deadline=$(($(date +%s) + 600))
  while :; do
    ev=$(metric "$port" logpipe_shipper_events_total)
    if [ "${ev%.*}" -ge "$lines" ] &&
       [ "$(metric "$port" logpipe_shipper_delivered_messages_total)" = "$(metric "$port" logpipe_shipper_batches_total)" ]; then
      break
    fi
    [ "$(date +%s)" -lt "$deadline" ] || { echo "logpipe: timed out at $ev of $lines lines"; break; }
    sleep 0.2
  done
  wall=$(python3 -c "print(f'{$(now) - $t0:.2f}')")
  cpu=$(cpu_of $pid)
  hwm=$(hwm_of $pid)
  # the settled state: every file closed idle (close_inactive 2s), then a
  # few rescans that only stat them
  deadline=$(($(date +%s) + 120))
  while [ "$(metric "$port" logpipe_shipper_files)" != "0.000000" ] && [ "$(date +%s)" -lt "$deadline" ]; do sleep 0.5; done
  s0=$(metric "$port" logpipe_shipper_rescan_seconds_sum); c0=$(metric "$port" logpipe_shipper_rescan_seconds_count)
  sleep 4
  s1=$(metric "$port" logpipe_shipper_rescan_seconds_sum); c1=$(metric "$port" logpipe_shipper_rescan_seconds_count)
  rescan=$(python3 -c "c = $c1 - $c0; print(f'{($s1 - $s0) / c * 1000:.1f}' if c else '-')")
  idle=$(metric "$port" logpipe_shipper_idle_files); idle=${idle%.*}
  rss=$(awk '/VmRSS/ { print $2 }' "/proc/$pid/status")
  kill -TERM $pid; wait $pid || true
  printf '%8d | %-8s %8s %8s %8d | %10s %10s %10s %12s\n' "$n" logpipe "$wall" "$cpu" $((hwm / 1024)) \
    "$(python3 -c "print(f'{$wall * 1000 / $n:.3f}')")" "$(python3 -c "print(f'{$cpu * 1000 / $n:.3f}')")" \
    "$(python3 -c "print(f'{$hwm / $n:.2f}')")" "$rescan"
  echo "         settled: $idle of $n files closed idle, RSS $((rss / 1024)) MiB ($(python3 -c "print(f'{$rss / $n:.2f}')") KiB/file), rescan $(python3 -c "print(f'{$rescan * 1000 / $n:.2f}' if '$rescan' != '-' else '-')") us/file"

  # ---- rsyslog imfile (inotify) to a local file
  out="$work/$n/rsyslog.out"
  cat >"$work/$n/rsyslog.conf" <<CONF
global(workDirectory="$work/$n/rsyslog-state")
module(load="imfile" mode="inotify")
input(type="imfile" File="$dir/*.log" Tag="bench" ruleset="out")
template(name="raw" type="string" string="%msg%\n")
ruleset(name="out") { action(type="omfile" file="$out" template="raw") }
CONF
  mkdir -p "$work/$n/rsyslog-state"
  : >"$out"
  t0=$(now)
  rsyslogd -n -f "$work/$n/rsyslog.conf" -i "$work/$n/rsyslog.pid" 2>"$work/$n/rsyslog.log" &
  rpid=$!
  # until every line is out, or 30 s without progress (then wall and CPU
  # are those of the last progress)
  got=0; last=$(now); t_last=$t0; cpu=0
  while [ "$got" -lt "$lines" ]; do
    sleep 0.2
    kill -0 $rpid 2>/dev/null || { echo "rsyslog died: $(tail -c 300 "$work/$n/rsyslog.log")"; break; }
    g=$(wc -l <"$out")
    if [ "$g" -gt "$got" ]; then got=$g; last=$(now); t_last=$last; cpu=$(cpu_of $rpid); fi
    if python3 -c "import sys; sys.exit(0 if $(now) - $last > 30 else 1)"; then
      echo "rsyslog: stuck at $got of $lines lines for 30 s"
      break
    fi
  done
  wall=$(python3 -c "print(f'{$t_last - $t0:.2f}')")
  hwm=$(hwm_of $rpid)
  kill -TERM $rpid; wait $rpid 2>/dev/null || true
  printf '%8d | %-8s %8s %8s %8d | %10s %10s %10s %12s\n' "$n" rsyslog "$wall" "$cpu" $((hwm / 1024)) \
    "$(python3 -c "print(f'{$wall * 1000 / $n:.3f}')")" "$(python3 -c "print(f'{$cpu * 1000 / $n:.3f}')")" \
    "$(python3 -c "print(f'{$hwm / $n:.2f}')")" "-"
  rm -rf "${work:?}/$n"
done
