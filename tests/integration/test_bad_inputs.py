#!/usr/bin/env python3
"""The bad-input corpus (tests/fixtures/bad/), each input with its expected
outcome (tests/fixtures/bad/expect.json):

  config/*.yaml  every daemon refuses it with exit 2 and the expected
                 FILE:LINE:COL message (plus a missing and, when not root,
                 an unreadable config file); a secret or a cross-field
                 mistake in a section only other daemons read is refused by
                 those and passes the others (one file for three daemons)
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
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from lptest import spawn, free_port, metric_sum, ndjson_lines, Checks

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
# mistakes only the daemons reading their section see (secrets, cross-field
# checks); syntax, types and unknown keys every daemon refuses
READERS = {"aggregator": ("logpipe-aggregator", "logpipe-retention"),
           "retention": ("logpipe-retention",)}
SECTION_ONLY = {"bad-regex.yaml": "aggregator", "missing-secret-file.yaml": "aggregator",
                "overlapping-policies.yaml": "retention"}
for name, want in sorted(expect["config"].items()):
    for d, exe in BIN.items():
        r = subprocess.run([exe, "--check-config", "-c", "config/" + name], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, env={"PATH": "/usr/bin:/bin"}, timeout=30)
        err = r.stderr.decode()
        if name in SECTION_ONLY and d not in READERS[SECTION_ONLY[name]]:
            check(r.returncode == 0, "%s does not read %s: config/%s passes it (exit %d: %s)"
                  % (d, SECTION_ONLY[name], name, r.returncode, err[:300]))
            continue
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

# Forged ownership (a log line claiming another source's id, offsets and
# path), then an aggregator kill -9: the file output's recovery must trust
# none of it, so the victim source's later lines all arrive. The victim ships
# first (its source id is only known then); the forger's lines are written
# once it is.
victim = os.path.join(logs, "victim_bad_plain-%064x.log" % 10)
forger = os.path.join(logs, "forged_bad_app-%064x.log" % 11)


def cri(msgs):
    return "".join("2026-11-28T10:00:00.000000000Z stdout F %s\n" % m for m in msgs)


open(victim, "w").write(cri("victim line %d" % i for i in range(100)))

# One Kafka message of 1,000,000 tiny records (about 70 MB decoded, within
# max_decompressed_bytes): all of them arrive and the aggregator's memory
# stays under its budget (the decode working set counts in it).
TINY = 1000000
tiny_src = {"logpipe.format": 1, "logpipe.source_id": "%032x" % 0x71, "logpipe.input_format": "raw",
            "host.name": "bad-inputs", "kubernetes.container.name": "tiny"}
tiny_raw = (json.dumps(tiny_src) + "\n" + "".join(
    '{"@timestamp":"2026-12-01T00:00:00Z","log.offset":%d,"message":"x"}\n' % (i * 2) for i in range(TINY))).encode()
open(os.path.join(tmp, "tiny.ndjson"), "wb").write(tiny_raw)  # from a file: the frame says its size
tiny = subprocess.run(["zstd", "-q", "-3", "-c", os.path.join(tmp, "tiny.ndjson")], stdout=subprocess.PIPE).stdout
BUDGET_MIB = 256

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
  max_decompressed_bytes: 80MiB
  max_pending_bytes: {BUDGET_MIB}MiB
  dead_letter_dir: {tmp}/dead-letter
  parsers:
    - {{name: json, kind: json, on_failure: mark}}  # parse failures marked with error.message
    - {{name: backtracking, kind: regex, pattern: '^(?<k>(a|aa)+)+$', on_failure: mark}}
  routes:
    - {{name: app, match: [{{field: kubernetes.container.name, equals: app}}], parser: json, outputs: [files]}}
    - {{name: bt, match: [{{field: kubernetes.container.name, equals: backtrack}}], parser: backtracking, outputs: [files]}}
    - {{name: tiny, match: [{{field: kubernetes.container.name, equals: tiny}}], outputs: [tiny]}}
  default_route: {{outputs: [files]}}
  outputs:
    # segments stay open for the whole run: the kill -9 below leaves them
    # for recovery, forged lines included
    - {{name: files, type: file, path: {tmp}/segments, max_segment_age: 1h}}
    - {{name: tiny, type: file, path: {tmp}/tiny-segments, max_segment_age: 1h}}
""")
procs = {}


def start(name):
    extra = os.path.join(tmp, name + ".yaml")
    open(extra, "w").write('metrics: {listen: "127.0.0.1:%d"}\n' % ports[name])
    procs[name] = spawn([BIN["logpipe-" + name], "-c", cfg, "-c", extra],
                                   stderr=open(os.path.join(tmp, name + ".log"), "ab"))


for name in ("aggregator", "shipper"):
    start(name)

# Kafka messages made by hand, produced once the topic exists
kafka_cases = {}
zeros = subprocess.run(["zstd", "-q", "-19", "-c"], input=b"\0" * (100 << 20), stdout=subprocess.PIPE).stdout
kafka_cases["zstd-bomb"] = (zeros, {"content-encoding": "zstd"})
good = subprocess.run(["zstd", "-q", "-c"], input=(json.dumps({"logpipe": {"format": 1}}) + "\n").encode() * 50,
                      stdout=subprocess.PIPE).stdout
kafka_cases["truncated-frame"] = (good[: len(good) // 2], {"content-encoding": "zstd"})
kafka_cases["unknown-format"] = (b"{}\n", {"content-encoding": "identity", "logpipe-format": "99"})
kafka_cases["garbage"] = (os.urandom(300), {"content-encoding": "zstd"})


def produce(name, value, headers):
    p = os.path.join(tmp, name + ".bin")
    open(p, "wb").write(value)
    hs = ["logpipe-format=%s" % headers.get("logpipe-format", "1"),
          "content-type=application/x-ndjson", "content-encoding=%s" % headers["content-encoding"],
          "logpipe-records=%d" % headers.get("records", 1)]
    r = subprocess.run([PRODUCE, BROKERS, topic, "0", p] + hs, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, timeout=60)
    check(r.returncode == 0, "produce %s: %s" % (name, r.stderr[-300:]))


def segment_lines(root):
    """The complete lines of the segments under root (an open segment's
    line being written is left for the next look)."""
    out = []
    for p in glob.glob(os.path.join(root, "**", "*.ndjson*"), recursive=True):
        with open(p, "rb") as f:
            out += [l for l in f if l.endswith(b"\n")]
    return out


def events():
    return [json.loads(l) for l in segment_lines(os.path.join(tmp, "segments"))]


def case_of(e):
    return os.path.basename(e["log"]["file"]["path"]).split("_")[0]


def tiny_offsets():
    return [int(m) for l in segment_lines(os.path.join(tmp, "tiny-segments"))
            for m in re.findall(rb'"offset":(\d+)', l)[:1]]


def dead():
    return ndjson_lines(os.path.join(tmp, "dead-letter", "*.ndjson"))


def wait_for(what, cond, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return True
        time.sleep(0.5)
    check(False, "timed out (%d s) waiting for %s" % (timeout, what))
    return False


def settled():
    """Everything consumed is stored and the commit after it done."""
    if metric_sum(ports["aggregator"], "logpipe_aggregator_consumer_lag") != 0:
        return False
    time.sleep(3)  # commit_interval is 1 s
    return metric_sum(ports["aggregator"], "logpipe_aggregator_consumer_lag") == 0


time.sleep(5)  # the shipper creates the topic with its first batch
for name, (value, headers) in kafka_cases.items():
    produce(name, value, headers)
produce("tiny", tiny, {"content-encoding": "zstd", "records": TINY})

want_events = sum(c["events"] for c in expect["logs"].values()) + 301 + 100
wait_for("every corpus event and dead letter", lambda: len(events()) >= want_events and
         len(dead()) >= len(expect["kafka"]) and len(tiny_offsets()) >= TINY, 180)
hwm_kib = int(re.search(r"VmHWM:\s+(\d+)", open("/proc/%d/status" % procs["aggregator"].pid).read()).group(1))
decode_bytes = metric_sum(ports["aggregator"], "logpipe_aggregator_decode_bytes")
limited = metric_sum(ports["aggregator"], "logpipe_aggregator_regex_limited_total") or -1

# the forgeries, once the victim's source id is known
vsid = next(e["logpipe"]["source_id"] for e in events() if case_of(e) == "victim")
forged = [json.dumps({"logpipe": {"source_id": vsid, "format": 1}, "message": "forged nested",
                      "log": {"offset": -2, "file": {"path": victim}}}),
          json.dumps({"logpipe.source_id": vsid, "log.offset": 9000000000000000000, "message": "forged dotted",
                      "log.file.path": victim}),
          json.dumps({"event": {"id": "0" * 32}, "host": {"name": "evil"}, "message": "forged identity",
                      "@timestamp": "2026-11-28T10:00:00Z"})]
open(forger, "w").write(cri(forged))
wait_for("the forged lines", lambda: sum(1 for e in events() if case_of(e) == "forged") >= 3, 60)
wait_for("the aggregator to store and commit everything", settled, 60)
procs["aggregator"].kill()  # kill -9: the open segments hold the forged lines
procs["aggregator"].wait(timeout=30)
start("aggregator")
with open(victim, "a") as f:
    f.write(cri("victim line %d" % i for i in range(100, 200)))
wait_for("the victim's lines after the restart",
         lambda: sum(1 for e in events() if case_of(e) == "victim") >= 200, 90)
time.sleep(2)  # anything more (a duplicate) would show now

for p in procs.values():
    p.send_signal(signal.SIGTERM)
for name, p in procs.items():
    check(p.wait(timeout=120) == 0, "%s exits 0 on SIGTERM" % name)

evs = events()
by_case = {}
for e in evs:
    by_case.setdefault(case_of(e), []).append(e)
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

# the 1,000,000 tiny records: each once, within the memory budget
offs = tiny_offsets()
check(len(offs) == TINY and set(offs) == set(range(0, 2 * TINY, 2)),
      "tiny: %d records in the files, %d distinct (want each of %d once)" % (len(offs), len(set(offs)), TINY))
check(hwm_kib < BUDGET_MIB * 1024, "tiny: aggregator peak RSS %d MiB under the %d MiB budget"
      % (hwm_kib // 1024, BUDGET_MIB))
check(decode_bytes is not None and decode_bytes < 16 << 20,
      "the decode working set is given back after the big message (%s bytes)" % decode_bytes)

# forged ownership: owned fields come from metadata, the claims are kept,
# and the victim lost nothing across the kill -9 and recovery
got = sorted(by_case.get("forged", []), key=lambda e: e["log"]["offset"])
fsid = {e["logpipe"]["source_id"] for e in got}
check(len(got) == 3 and len(fsid) == 1 and vsid not in fsid, "forged: 3 events under their own source id (%s)" % fsid)
want_offs, o = [], 0
for line in cri(forged).splitlines(True):
    want_offs.append(o)
    o += len(line.encode())
check([e["log"]["offset"] for e in got] == want_offs, "forged: log.offset is the real one (%s)"
      % [e["log"]["offset"] for e in got])
check(all(e["log"]["file"]["path"].endswith(os.path.basename(forger)) for e in got), "forged: log.file.path is real")
check(all(e.get("host", {}).get("name") != "evil" and e["event"]["id"] != "0" * 32 for e in got),
      "forged: host.name and event.id are the pipeline's")
kept = [k for e in got for k in e.get("logpipe", {}).get("kept", [])]
claims = [k for k in kept if k["field"].split(".")[0] in ("logpipe", "log", "event", "host")]
check(sum(1 for k in claims if vsid in k["value"]) == 2 and any("evil" in k["value"] for k in claims) and
      all(k["reason"] == "owned" for k in claims),
      "forged: each claim kept with reason owned (%s)" % json.dumps(kept)[:400])
vic = [e["log"]["offset"] for e in by_case.get("victim", [])]
want_v, o = set(), 0
for i in range(200):
    want_v.add(o)
    o += len(cri(["victim line %d" % i]).encode())
check(len(vic) == 200 and set(vic) == want_v,
      "victim: %d lines, %d distinct, %d missing after the forgery and kill -9 (want 200 each once)"
      % (len(vic), len(set(vic)), len(want_v - set(vic))))

dl = dead()
check(len(dl) == len(expect["kafka"]), "dead letter entries %d (want %d)" % (len(dl), len(expect["kafka"])))
for name, want in sorted(expect["kafka"].items()):
    check(any(d["stage"] == "decode" and want in d["reason"] for d in dl),
          "kafka %s: dead letter with reason containing %r (got %s)" % (name, want, [d["reason"] for d in dl]))
print("bad inputs: %d config files, %d log files (%d events), %d Kafka messages, %d tiny records "
      "(aggregator peak RSS %d MiB, budget %d MiB); %d checks, %d failed"
      % (len(expect["config"]), len(expect["logs"]) + 4, len(evs), len(expect["kafka"]) + 1, len(offs),
         hwm_kib // 1024, BUDGET_MIB, check.count, len(failures)))
if failures:
    print("kept:", tmp)
    sys.exit(1)
shutil.rmtree(tmp)
