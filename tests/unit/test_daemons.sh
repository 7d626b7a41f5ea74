#!/usr/bin/env bash
# The daemons' command line, as a user meets it: --check-config prints the
# effective config (secrets redacted) and exits 0, or FILE:LINE:COL errors and
# exits 2 (unknown key, wrong type, missing variable); a started daemon serves
# /metrics, /healthz and /readyz and stops cleanly on SIGTERM.
# Usage: test_daemons.sh SHIPPER AGGREGATOR RETENTION
set -u
fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

check() { # check NAME COND-RESULT
  if [ "$2" -eq 0 ]; then echo "ok   $1"; else echo "FAIL $1"; fail=1; fi
}

for bin in "$@"; do
  name=$(basename "$bin")

  "$bin" --version | grep -q "^$name " ; check "$name --version" $?
  "$bin" --bogus >/dev/null 2>&1; [ $? -eq 2 ]; check "$name unknown option exits 2" $?

  # valid, with a secret and a variable
  cat >"$tmp/good.yaml" <<'YAML'
kafka:
  brokers: ${LP_TEST_BROKERS:-127.0.0.1:9092}
  properties:
    sasl.password: hunter2
    sasl.mechanism: SCRAM-SHA-512
shipper:
  batch_linger: 250ms
YAML
  out=$("$bin" --check-config -c "$tmp/good.yaml" 2>&1); rc=$?
  [ $rc -eq 0 ]; check "$name --check-config good exits 0" $?
  echo "$out" | grep -q '"sasl.password": "<redacted>"'; check "$name redacts sasl.password" $?
  echo "$out" | grep -q hunter2; [ $? -ne 0 ]; check "$name never prints the secret" $?
  echo "$out" | grep -q 'batch_linger: 250ms'; check "$name prints effective values" $?

  # unknown key
  printf 'kafka:\n  brokers: x:1\n  topik: t\n' >"$tmp/bad1.yaml"
  out=$("$bin" --check-config -c "$tmp/bad1.yaml" 2>&1); rc=$?
  [ $rc -eq 2 ]; check "$name unknown key exits 2" $?
  echo "$out" | grep -qF "$tmp/bad1.yaml:3:3: unknown key 'kafka.topik'; did you mean 'topic'?"
  check "$name unknown key file:line:col + suggestion" $?

  # wrong type
  printf 'shipper:\n  max_line_bytes: [1]\n' >"$tmp/bad2.yaml"
  out=$("$bin" --check-config -c "$tmp/bad2.yaml" 2>&1); rc=$?
  [ $rc -eq 2 ]; check "$name wrong type exits 2" $?
  echo "$out" | grep -qF "$tmp/bad2.yaml:2:19: shipper.max_line_bytes: expected a size (e.g. 512, 64KiB, 5MiB, 1GB), got a list"
  check "$name wrong type file:line:col" $?

  # missing variable
  printf 'kafka:\n  brokers: ${LP_TEST_SURELY_UNSET}\n' >"$tmp/bad3.yaml"
  out=$(env -u LP_TEST_SURELY_UNSET "$bin" --check-config -c "$tmp/bad3.yaml" 2>&1); rc=$?
  [ $rc -eq 2 ]; check "$name missing variable exits 2" $?
  echo "$out" | grep -qF "$tmp/bad3.yaml:2:12: environment variable LP_TEST_SURELY_UNSET is not set"
  check "$name missing variable file:line:col" $?

  # the same error without --check-config: exits 2 before starting anything
  "$bin" -c "$tmp/bad1.yaml" >/dev/null 2>&1; [ $? -eq 2 ]; check "$name refuses to start on bad config" $?

  # later files override earlier ones
  printf 'kafka:\n  topic: override\n' >"$tmp/over.yaml"
  "$bin" --check-config -c "$tmp/good.yaml" -c "$tmp/over.yaml" 2>/dev/null | grep -q 'topic: "override"'
  check "$name -c merge" $?

  # run: endpoint up, SIGTERM stops it with status 0
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  mkdir -p "$tmp/logs"
  printf 'metrics:\n  listen: 127.0.0.1:%s\nshipper:\n  state_dir: %s/state\n  inputs:\n    - paths: [%s/logs/*.log]\nkafka:\n  brokers: 127.0.0.1:1\naggregator:\n  dead_letter_dir: %s/dlq\n  outputs: [{name: files, type: file, path: %s/segments}]\nretention:\n  audit_log: %s/audit.ndjson\n' \
    "$port" "$tmp" "$tmp" "$tmp" "$tmp" "$tmp" >"$tmp/run.yaml"
  "$bin" -c "$tmp/run.yaml" 2>"$tmp/$name.log" &
  pid=$!
  up=1
  for _ in $(seq 1 50); do
    if curl -fsS -m 2 "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; then up=0; break; fi
    sleep 0.1
  done
  check "$name serves /healthz" $up
  if [ "$name" != logpipe-retention ]; then
    # its Kafka (127.0.0.1:1) is unreachable: not ready, and it says why
    code=$(curl -sS -m 2 -o "$tmp/ready" -w '%{http_code}' "http://127.0.0.1:$port/readyz")
    [ "$code" = 503 ] && grep -q "not ready: kafka" "$tmp/ready"; check "$name /readyz false without Kafka" $?
  else
    curl -fsS -m 2 "http://127.0.0.1:$port/readyz" | grep -q ready; check "$name /readyz" $?
    # the daemon runs at once: the run is counted and audited in place
    ok=1
    for _ in $(seq 1 30); do
      if curl -fsS -m 2 "http://127.0.0.1:$port/metrics" | grep -q 'logpipe_retention_runs_total{result="ok"} 1'; then ok=0; break; fi
      sleep 0.1
    done
    check "$name counts its first run" $ok
  fi
  curl -fsS -m 2 "http://127.0.0.1:$port/metrics" | grep -q "^# TYPE logpipe_.*_start_time_seconds gauge"
  check "$name /metrics" $?
  kill -HUP $pid; sleep 0.3
  kill -0 $pid; check "$name survives SIGHUP" $?
  curl -fsS -m 2 "http://127.0.0.1:$port/metrics" | grep -q 'config_reloads_total{result="ok"} 1'
  check "$name SIGHUP reload" $?
  kill -TERM $pid
  rc=124
  for _ in $(seq 1 50); do
    if ! kill -0 $pid 2>/dev/null; then wait $pid; rc=$?; break; fi
    sleep 0.1
  done
  [ $rc -eq 0 ]; check "$name exits 0 on SIGTERM" $?
  grep -qE 'msg="?([a-z]+ )?stopped' "$tmp/$name.log"; check "$name logs its stop" $?
  kill -KILL $pid 2>/dev/null
done
exit $fail
