#!/usr/bin/env python3
"""logpipe-shipper end to end against the real Kafka broker on 127.0.0.1:9092.

Four container log files (two Docker json-file with 16 KiB partials, two CRI
with P/F parts) are written while the shipper runs, through: rename
rotations, a rotation storm, a copytruncate, and two kill -9 of the shipper
followed by restarts. Afterwards the topic is dumped and every line written
must be there (by its generator/sequence tag); duplicates are counted and
reported (the event id removes them downstream), losses fail the test.

usage: test_shipper_e2e.py SHIPPER TOPIC_DUMP   (env LP_KAFKA_BROKERS)"""
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from lptest import spawn, free_port

SHIPPER, DUMP = sys.argv[1], sys.argv[2]
BROKERS = os.environ.get("LP_KAFKA_BROKERS", "127.0.0.1:9092")
SEED = int(os.environ.get("LP_SEED", "20261128"))
LINES_PER_FILE = int(os.environ.get("LP_LINES", "6000"))
rng = random.Random(SEED)
tmp = tempfile.mkdtemp(prefix="lp-e2e-")
logs = os.path.join(tmp, "logs")
os.makedirs(logs)
topic = "lp-e2e-%d-%d" % (os.getpid(), int(time.time()))



port = free_port()
cfg = os.path.join(tmp, "shipper.yaml")
with open(cfg, "w") as f:
    f.write(f"""kafka:
  brokers: "{BROKERS}"
  topic: {topic}
shipper:
  state_dir: {tmp}/state
  inputs:
    - paths: ["{logs}/*.log"]
    - {{paths: ["{logs}/legacy/*.log"], format: cri, encoding: gbk}}
  batch_linger: 50ms
  batch_max_records: 500
  checkpoint_interval: 100ms
  rescan_interval: 500ms
  rotate_wait: 1s
metrics:
  listen: 127.0.0.1:{port}
""")

# an old application's CRI log in GBK (shipper.inputs[].encoding): shipped
# as UTF-8, a byte GBK does not have as U+FFFD
os.makedirs(os.path.join(logs, "legacy"))
LEGACY = {"legacy 1 \u4e2d\u6587\u65e5\u5fd7 caf\u00e9": None,
          "legacy 2 \u8ba2\u5355\u5931\u8d25": None}
with open(os.path.join(logs, "legacy", "old-app.log"), "wb") as f:
    for msg in LEGACY:
        f.write(b"2026-11-28T07:21:00.000000001Z stdout F " + msg.encode("gbk") + b"\n")
    f.write(b"2026-11-28T07:21:00.000000001Z stdout F legacy 3 cut \x81\n")
LEGACY["legacy 3 cut \ufffd"] = None

proc = None
shipper_log = open(os.path.join(tmp, "shipper.log"), "ab")


def start():
    global proc
    proc = spawn([SHIPPER, "-c", cfg], stderr=shipper_log)
    for _ in range(100):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return
        except Exception:
            time.sleep(0.05)
    raise SystemExit("shipper did not come up")


def metric(name):
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
    except Exception:
        return None
    m = re.search(r"^" + re.escape(name) + r" (\d+)$", text, re.M)
    return int(m.group(1)) if m else None


def wait_caught_up(timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        time.sleep(0.3)
        lag, infl = metric("logpipe_shipper_lag_bytes"), metric("logpipe_shipper_inflight_bytes")
        if lag == 0 and infl == 0:
            return True
    return False


class Gen:
    """Writes numbered lines of one container in Docker or CRI format."""

    def __init__(self, g, fmt):
        self.g, self.fmt, self.seq = g, fmt, 0
        self.path = os.path.join(logs, f"app-{g}_ns_c{g}-{g:064x}.log")
        self.expected = {}  # seq -> message length

    def line(self):
        s = self.seq
        self.seq += 1
        big = s % 211 == 7
        msg = f"g={self.g} seq={s} " + ("B" * 40000 if big else "payload %08x" % (s * 2654435761 % 2**32))
        self.expected[s] = len(msg)
        ts = "2026-11-28T07:21:00.%09dZ" % (s % 10**9)
        if self.fmt == "docker":
            chunks = [msg[i:i + 16384] for i in range(0, len(msg), 16384)] or [""]
            out = []
            for k, c in enumerate(chunks):
                last = k == len(chunks) - 1
                out.append(json.dumps({"log": c + ("\n" if last else ""), "stream": "stdout" if s % 4 else "stderr", "time": ts}))
            return "\n".join(out) + "\n"
        parts = [msg[i:i + 9000] for i in range(0, len(msg), 9000)] if (big or s % 13 == 0) else [msg]
        if s % 13 == 0 and not big:
            parts = [msg[:5], msg[5:12], msg[12:]]
        stream = "stdout" if s % 3 else "stderr"
        return "".join(f"{ts} {stream} {'F' if k == len(parts) - 1 else 'P'} {p}\n" for k, p in enumerate(parts))

    def write(self, n):
        with open(self.path, "a") as f:
            for _ in range(n):
                f.write(self.line())


gens = [Gen(0, "docker"), Gen(1, "docker"), Gen(2, "cri"), Gen(3, "cri")]
kills = rotations = truncations = 0
start()
total_rounds = 60
per_round = LINES_PER_FILE // total_rounds
for r in range(total_rounds):
    for g in gens:
        g.write(per_round)
    time.sleep(rng.uniform(0.01, 0.06))
    if r == 10:  # rename rotation of file 0
        os.rename(gens[0].path, gens[0].path + ".1")
        rotations += 1
    if r == 15:  # a file rotated while its last line has no newline yet
        with open(gens[3].path, "a") as f:
            f.write(gens[3].line().rstrip("\n"))
        os.rename(gens[3].path, gens[3].path + ".1")
        rotations += 1
    if r == 20:  # kill -9 mid-stream, restart
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills += 1
        time.sleep(0.3)
        start()
    if r == 25:  # rotation storm on file 1 (the rotated names do not match the glob)
        for k in range(5):
            gens[1].write(20)
            os.rename(gens[1].path, gens[1].path + f".{k + 1}")
            rotations += 1
    if r == 35:  # copytruncate of file 2, once the shipper has read it all
        if not wait_caught_up():
            raise SystemExit("shipper did not catch up before the truncation")
        shutil.copy(gens[2].path, gens[2].path + ".1")
        os.truncate(gens[2].path, 0)
        truncations += 1
    if r == 45:  # kill -9 again, right after a burst
        for g in gens:
            g.write(200)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills += 1
        start()

caught_up = wait_caught_up(120)
try:
    ready = urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2).status == 200
except Exception:
    ready = False
lost_metric = metric('logpipe_shipper_bytes_lost_total{reason="truncated"}')
proc.send_signal(signal.SIGTERM)
rc = proc.wait(timeout=60)

dump = subprocess.run([DUMP, BROKERS, topic, "60000"], capture_output=True, text=True)
seen = {}
event_ids = set()
records = 0
bad_len = 0
for line in dump.stdout.splitlines():
    rec = json.loads(line)
    records += 1
    if rec["message"].startswith("legacy "):
        LEGACY[rec["message"]] = rec
        continue
    event_ids.add(rec["event_id"])
    m = re.match(r"g=(\d+) seq=(\d+) ", rec["message"])
    if not m:
        continue
    key = (int(m.group(1)), int(m.group(2)))
    seen[key] = seen.get(key, 0) + 1
    if len(rec["message"]) != gens[key[0]].expected.get(key[1], -1):
        bad_len += 1

written = sum(len(g.expected) for g in gens)
missing = [(g.g, s) for g in gens for s in g.expected if (g.g, s) not in seen]
dups = sum(c - 1 for c in seen.values())
print(f"lines={written} present={written - len(missing)} lost={len(missing)} "
      f"duplicates={dups} distinct_event_ids={len(event_ids)} records={records} "
      f"kills={kills} rotations={rotations} truncations={truncations} "
      f"bytes_lost_metric={lost_metric} seed={SEED}")
ok = True
if dump.returncode != 0:
    print("topic dump failed:", dump.stderr.strip()[-500:])
    ok = False
if missing:
    print("missing (first 10):", missing[:10])
    ok = False
if bad_len:
    print(f"{bad_len} records with a wrong message length (partials not rejoined?)")
    ok = False
if len(event_ids) != written:
    print(f"distinct event ids {len(event_ids)} != lines {written}")
    ok = False
if not caught_up:
    print("the shipper did not catch up")
    ok = False
got_legacy = {m: r is not None for m, r in LEGACY.items()}
print(f"legacy GBK lines shipped as UTF-8: {sum(got_legacy.values())} of {len(LEGACY)}")
if not all(got_legacy.values()):
    print("legacy GBK lines missing or not converted:", [m for m, g in got_legacy.items() if not g])
    ok = False
# nothing was lost, so nothing may be counted lost (a false alarm on the
# operators' loss alert), by any of the shipper processes of the run
shipper_log.flush()
counted = [l for l in open(shipper_log.name, errors="replace")
           if re.search(r"unread_bytes_lost=[1-9]", l)]
if counted:
    print(f"{len(counted)} log lines count bytes lost while none were; first: {counted[0].strip()[:300]}")
    ok = False
if not ready:
    print("/readyz was not 200 with Kafka up")
    ok = False
if rc != 0:
    print(f"shipper exited {rc} on SIGTERM")
    ok = False
if not ok:
    print(f"replay: LP_SEED={SEED} {' '.join(sys.argv)}; shipper log {shipper_log.name}")
    sys.exit(1)
shutil.rmtree(tmp)
