#!/usr/bin/env python3
"""The shipper needs no capability (#28): container logs are root-owned 0640
in 0700 directories, and uid 0 reads them as their owner. Run as root, this
starts the real shipper under `setpriv` with every capability dropped
(bounding, inheritable, ambient sets empty; no_new_privs), as deploy/k8s,
the chart, compose.prod and the systemd unit run it, on such a tree of
kubelet-named files, with its state directory created root-owned 0700 as the
image creates /var/lib/logpipe-shipper, and checks against the test Kafka:

  - the process really holds no capability (/proc/PID/status CapEff/CapBnd);
  - it reads every line of every file and Kafka acknowledges all of them;
  - it writes its checkpoint into the 0700 state directory;
  - negative control: the same shipper as uid 10001 (also without
    capabilities) cannot open the files, so the tree really is protected.

Skipped (exit 0 with a note) when not run as root or without setpriv.

usage: test_least_privilege.py SHIPPER"""
import os
import shutil
import sys
import tempfile
import time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from lptest import spawn, Checks, free_port, metric_sum, metrics_text, stop_procs

SHIPPER = os.path.abspath(sys.argv[1])
KAFKA = os.environ.get("LOGPIPE_TEST_KAFKA", "127.0.0.1:" + os.environ.get("KAFKA_PORT", "9092"))
SETPRIV = shutil.which("setpriv")
if os.geteuid() != 0 or not SETPRIV:
    print("test_least_privilege: skipped (needs root and setpriv to drop capabilities)")
    sys.exit(0)

check = Checks()
tmp = tempfile.mkdtemp(prefix="lp-leastpriv-")
os.chmod(tmp, 0o755)
logs = os.path.join(tmp, "pods")
os.mkdir(logs, 0o700)
state = os.path.join(tmp, "state")
os.mkdir(state, 0o700)
N, FILES = 200, 3
for i in range(FILES):
    p = os.path.join(logs, "web-%d_shop_nginx-%064x.log" % (i, i + 1))
    with open(p, "w") as f:
        for k in range(N):
            f.write("2026-12-08T00:00:%02d.000000000Z stdout F file %d line %d\n" % (k % 60, i, k))
    os.chown(p, 0, 0)
    os.chmod(p, 0o640)
run = "lp-leastpriv-%x" % int(time.time() * 1000)


def config(port, state_dir):
    path = os.path.join(tmp, "logpipe-%d.yaml" % port)
    with open(path, "w") as f:
        f.write(f"""kafka:
  brokers: "{KAFKA}"
  topic: {run}
shipper:
  state_dir: {state_dir}
  inputs:
    - paths: ["{logs}/*.log"]
metrics:
  listen: "127.0.0.1:{port}"
""")
    return path


drop = [SETPRIV, "--inh-caps=-all", "--ambient-caps=-all", "--bounding-set=-all", "--no-new-privs"]


def caps(pid):
    with open("/proc/%d/status" % pid) as f:
        return {k: v.strip() for k, v in (line.split(":", 1) for line in f) if k.startswith("Cap")}


def wait_metric(port, name, want, timeout=60):
    deadline = time.time() + timeout
    v = 0
    while time.time() < deadline:
        v = metric_sum(port, name, metrics_text(port))
        if v >= want:
            break
        time.sleep(0.5)
    return v


port = free_port()
log = open(os.path.join(tmp, "shipper-root.log"), "wb")
proc = spawn(drop + ["--", SHIPPER, "-c", config(port, state)], stderr=log)
try:
    time.sleep(1)
    c = caps(proc.pid) if proc.poll() is None else {}
    check(c.get("CapEff") == "0000000000000000" and c.get("CapBnd") == "0000000000000000"
          and c.get("CapAmb") == "0000000000000000",
          "the shipper runs as uid 0 with no capability at all: %s" % c)
    read = wait_metric(port, "logpipe_shipper_read_lines_total", N * FILES)
    check(read == N * FILES, "it reads every line of the root-owned 0640 files in a 0700 directory: %d of %d"
          % (read, N * FILES))
    acked = wait_metric(port, "logpipe_shipper_delivered_messages_total", 1)
    check(acked >= 1, "and Kafka acknowledges them (%d messages delivered)" % acked)
finally:
    stop_procs({"shipper": proc})
written = [n for n in os.listdir(state)]
check(len(written) > 0, "its checkpoint is written into the root-owned 0700 state directory: %s" % written)

# negative control: uid 10001 without capabilities cannot read the tree
port = free_port()
state2 = os.path.join(tmp, "state-10001")
os.mkdir(state2, 0o700)
os.chown(state2, 10001, 10001)
log = open(os.path.join(tmp, "shipper-10001.log"), "wb")
proc = spawn(drop + ["--reuid=10001", "--regid=10001", "--clear-groups", "--",
                                SHIPPER, "-c", config(port, state2)], stderr=log)
try:
    time.sleep(3)
    read = metric_sum(port, "logpipe_shipper_read_lines_total", metrics_text(port))
    check(read == 0, "negative control: as uid 10001 it reads nothing of the tree (%d lines)" % read)
finally:
    stop_procs({"shipper": proc})
if check.failures:
    print("%d of %d checks failed (logs in %s)" % (len(check.failures), check.count, tmp))
    sys.exit(1)
shutil.rmtree(tmp, ignore_errors=True)
print("test_least_privilege: %d checks passed" % check.count)
