# shellcheck shell=bash disable=SC2154  # es, brokers, count, shipper, work: the caller's
# Helpers shared by the aggregator benchmarks (sourced): bench/lib.sh's
# (CPU and peak RSS of a pid, a free port, a metric's value), es_count, and
# ship DIR TOPIC MODE (the real shipper into a 4-partition topic; prints the
# records shipped). Needs es, brokers, count, shipper and work set by
# the caller.
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
es_count() {
  curl -fsS -m 10 -XPOST "$es/$1/_refresh" >/dev/null 2>&1 || true
  { curl -fsS -m 10 "$es/$1/_count" 2>/dev/null || true; } | sed -n 's/.*"count":\([0-9]*\).*/\1/p'
}

# ---- input: logs shipped once per mode
ship() { # DIR TOPIC MODE -> prints records
  local port; port=$(free_port)
  "$count" "$brokers" "$2" --create 4 >/dev/null
  cat >"$work/ship-$3.yaml" <<YAML
kafka: {brokers: "$brokers", topic: $2}
shipper: {state_dir: $work/ship-state-$2, inputs: [{paths: ["$1/*.log"]}], mode: $3, rescan_interval: 1s}
metrics: {listen: "127.0.0.1:$port"}
log: {level: warn}
YAML
  "$shipper" -c "$work/ship-$3.yaml" 2>"$work/ship-$2.log" &
  local pid=$! total; total=$(cat "$1"/*.log | wc -c)
  while :; do
    rd=$(metric "$port" logpipe_shipper_read_bytes_total); lag=$(metric "$port" logpipe_shipper_lag_bytes)
    infl=$(metric "$port" logpipe_shipper_inflight_bytes)
    [ "${rd:-0}" -ge "$total" ] && [ "${lag:-1}" = 0 ] && [ "${infl:-1}" = 0 ] && break
    kill -0 $pid 2>/dev/null || { cat "$work/ship-$2.log"; exit 1; }
    sleep 0.2
  done
  metric "$port" logpipe_shipper_events_total
  kill -TERM $pid; wait $pid || true
}

