#!/usr/bin/env python3
"""The bad-input corpus (tests/fixtures/bad/), each input with its expected
outcome (tests/fixtures/bad/expect.json):

  config/*.yaml  every daemon refuses it with exit 2 and the expected
                 FILE:LINE:COL message (plus a missing and, when not root,
                 an unreadable config file)
  logs/*.log     container logs (NUL bytes, invalid UTF-8, broken escapes,
                 lines that are not runtime JSON, deep JSON nesting, huge
                 numbers, and a 10 MB line made at run time) shipped by the
                 real shipper through Kafka to the real aggregator's file
                 output: every event arrives, flagged as expected, parse
                 failures kept with error.message
  kafka          messages produced by hand (a zstd bomb, a truncated frame,
                 an unknown format header, garbage): each lands in the dead
                 letter with the expected reason, and nothing else is lost

usage: test_bad_inputs.py BUILD_DIR LP_PRODUCE"""
import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from lptest import free_port, ndjson_lines, Checks

BUILD, PRODUCE = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
SRC = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
FIX = os.path.join(SRC, "tests", "fixtures", "bad")
BIN = {d: os.path.join(BUILD, d.split("-")[1], d) for d in
       ("logpipe-shipper", "logpipe-aggregator", "logpipe-retention")}
BROKERS = "127.0.0.1:9092"
expect = json.load(open(os.path.join(FIX, "expect.json")))
check = Checks()
failures = check.failures



# ---- configuration ----
os.chdir(FIX)
for name, want in sorted(expect["config"].items()):
    for d, exe in BIN.items():
        r = subprocess.run([exe, "--check-config", "-c", "config/" + name], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, env={"PATH": "/usr/bin:/bin"}, timeout=30)
        err = r.stderr.decode()
        check(r.returncode == 2 and ("config/%s:%s" % (name, want)) in err,
              "%s refuses config/%s with '%s' (exit %d: %s)" % (d, name, want, r.returncode, err[:300]))
r = subprocess.run([BIN["logpipe-shipper"], "--check-config", "-c", "config/no-such-file.yaml"],
                   stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
check(r.returncode == 2 and b"config/no-such-file.yaml:1:1: cannot open config file: No such file" in r.stderr,
      "a missing config file: %s" % r.stderr[:200])
if os.geteuid() != 0:
    tmpc = tempfile.mkdtemp()
    p = os.path.join(tmpc, "locked.yaml")
    open(p, "w").write("kafka: {}\n")
    os.chmod(p, 0)
    r = subprocess.run([BIN["logpipe-shipper"], "--check-config", "-c", p], stderr=subprocess.PIPE,
                       stdout=subprocess.DEVNULL)
    check(r.returncode == 2 and b"Permission denied" in r.stderr, "an unreadable config file")
    shutil.rmtree(tmpc)
else:
    print("(unreadable config file: skipped as root, permissions do not apply)")

# ---- data through the pipeline ----
tmp = tempfile.mkdtemp(prefix="lp-bad-")
logs = os.path.join(tmp, "log", "containers")
os.makedirs(logs)
for p in glob.glob(os.path.join(FIX, "logs", "*.log")):
    shutil.copy(p, logs)
# a 10 MB line (not kept in git)
big = os.path.join(logs, "ten-mb-line_bad_cri-%064x.log" % 8)
with open(big, "w") as f:
    f.write("2026-11-28T10:00:00.000000000Z stdout F before\n")
    f.write("2026-11-28T10:00:00.000000000Z stdout F " + "x" * (10 << 20) + "\n")
    f.write("2026-11-28T10:00:00.000000000Z stdout F after\n")



# lines crafted against a backtracking pattern (~40 ms each under PCRE2's
# default match limit): kept unparsed at the configured limit, counted
bt = os.path.join(logs, "regex-backtrack_bad_backtrack-%064x.log" % 9)
with open(bt, "w") as f:
    for i in range(300):
        f.write("2026-11-28T10:00:00.000000000Z stdout F %s!\n" % ("a" * 48))
    f.write("2026-11-28T10:00:00.000000000Z stdout F aaaa\n")

topic = "lp-bad-%d" % os.getpid()
cfg = os.path.join(tmp, "logpipe.yaml")
ports = {"shipper": free_port(), "aggregator": free_port()}
with open(cfg, "w") as f:
    f.write(f"""kafka: {{brokers: "{BROKERS}", topic: {topic}}}
shipper:
  state_dir: {tmp}/state
  inputs: [{{paths: ["{logs}/*.log"]}}]
  max_line_bytes: 256KiB
  batch_linger: 50ms
aggregator:
  group_id: {topic}
  max_decompressed_bytes: 1MiB
  dead_letter_dir: {tmp}/dead-letter
  parsers:
    - {{name: json, kind: json, on_failure: mark}}  # parse failures marked with error.message
    - {{name: backtracking, kind: regex, pattern: '^(?<k>(a|aa)+)+$', on_failure: mark}}
  routes:
    - {{name: app, match: [{{field: kubernetes.container.name, equals: app}}], parser: json, outputs: [files]}}
    - {{name: bt, match: [{{field: kubernetes.container.name, equals: backtrack}}], parser: backtracking, outputs: [files]}}
  default_route: {{outputs: [files]}}
  outputs: [{{name: files, type: file, path: {tmp}/segments, max_segment_age: 1s}}]
""")
procs = {}
for name in ("aggregator", "shipper"):
    extra = os.path.join(tmp, name + ".yaml")
    open(extra, "w").write('metrics: {listen: "127.0.0.1:%d"}\n' % ports[name])
    procs[name] = subprocess.Popen([BIN["logpipe-" + name], "-c", cfg, "-c", extra],
                                   stderr=open(os.path.join(tmp, name + ".log"), "wb"))

# Kafka messages made by hand, produced once the topic exists
kafka_cases = {}
zeros = subprocess.run(["zstd", "-q", "-19", "-c"], input=b"\0" * (20 << 20), stdout=subprocess.PIPE).stdout
kafka_cases["zstd-bomb"] = (zeros, {"content-encoding": "zstd"})
good = subprocess.run(["zstd", "-q", "-c"], input=(json.dumps({"logpipe": {"format": 1}}) + "\n").encode() * 50,
                      stdout=subprocess.PIPE).stdout
kafka_cases["truncated-frame"] = (good[: len(good) // 2], {"content-encoding": "zstd"})
kafka_cases["unknown-format"] = (b"{}\n", {"content-encoding": "identity", "logpipe-format": "99"})
kafka_cases["garbage"] = (os.urandom(300), {"content-encoding": "zstd"})


def produce():
    for name, (value, headers) in kafka_cases.items():
        p = os.path.join(tmp, name + ".bin")
        open(p, "wb").write(value)
        hs = ["logpipe-format=%s" % headers.get("logpipe-format", "1"),
              "content-type=application/x-ndjson", "content-encoding=%s" % headers["content-encoding"],
              "logpipe-records=1"]
        r = subprocess.run([PRODUCE, BROKERS, topic, "0", p] + hs, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, timeout=60)
        check(r.returncode == 0, "produce %s: %s" % (name, r.stderr[-300:]))


def events():
    out = []
    for p in glob.glob(os.path.join(tmp, "segments", "**", "*.ndjson*"), recursive=True):
        for line in open(p, "rb"):
            out.append(json.loads(line))
    return out


def dead():
    return ndjson_lines(os.path.join(tmp, "dead-letter", "*.ndjson"))


want_events = sum(c["events"] for c in expect["logs"].values()) + 301
produced = False
deadline = time.time() + 120
while time.time() < deadline:
    time.sleep(0.5)
    if not produced and time.time() > deadline - 110:
        produce()
        produced = True
    if len(events()) >= want_events and len(dead()) >= len(expect["kafka"]):
        time.sleep(2)  # anything more (a duplicate) would show now
        break
try:
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % ports["aggregator"], timeout=5) as r:
        limited = sum(float(l.split()[-1]) for l in r.read().decode().splitlines()
                      if l.startswith("logpipe_aggregator_regex_limited_total"))
except OSError:
    limited = -1
for p in procs.values():
    p.send_signal(signal.SIGTERM)
for name, p in procs.items():
    check(p.wait(timeout=120) == 0, "%s exits 0 on SIGTERM" % name)

evs = events()
by_case = {}
for e in evs:
    case = os.path.basename(e["log"]["file"]["path"]).split("_")[0]
    by_case.setdefault(case, []).append(e)
for case, want in sorted(expect["logs"].items()):
    got = by_case.get(case, [])
    check(len(got) == want["events"], "%s: %d events (want %d)" % (case, len(got), want["events"]))
    flags = sorted({f for e in got for f in e.get("logpipe", {}).get("flags", [])})
    check(flags == sorted(want.get("flags", [])), "%s: flags %s (want %s)" % (case, flags, want.get("flags", [])))
    for s in want.get("message_contains", []):
        check(any(s in e.get("message", "") for e in got), "%s: a message contains %r" % (case, s))
    for s in want.get("error_contains", []):
        check(any(s in json.dumps(e.get("error", {})) for e in got), "%s: error.message contains %r" % (case, s))
    if "max_message_bytes" in want:
        check(all(len(e.get("message", "").encode()) <= want["max_message_bytes"] for e in got),
              "%s: messages at most %d bytes" % (case, want["max_message_bytes"]))
got = by_case.get("regex-backtrack", [])
check(len(got) == 301, "regex-backtrack: %d events (want 301)" % len(got))
check(sum(1 for e in got if "match limit" in json.dumps(e.get("error", {}))) == 300,
      "regex-backtrack: 300 lines kept unparsed at the match limit")
check(sum(1 for e in got if e.get("k") == "aaaa") == 1, "regex-backtrack: the ordinary line parsed")
check(limited >= 300, "regex_limited_total counts them (%d)" % limited)
dl = dead()
check(len(dl) == len(expect["kafka"]), "dead letter entries %d (want %d)" % (len(dl), len(expect["kafka"])))
for name, want in sorted(expect["kafka"].items()):
    check(any(d["stage"] == "decode" and want in d["reason"] for d in dl),
          "kafka %s: dead letter with reason containing %r (got %s)" % (name, want, [d["reason"] for d in dl]))
print("bad inputs: %d config files, %d log files (%d events), %d Kafka messages; %d checks, %d failed"
      % (len(expect["config"]), len(expect["logs"]), len(evs), len(expect["kafka"]), check.count, len(failures)))
if failures:
    print("kept:", tmp)
    sys.exit(1)
shutil.rmtree(tmp)
