#!/usr/bin/env python3
"""Chaos: the whole pipeline under a seeded fault schedule, and one line of
figures that says whether anything was lost or duplicated.

The real shipper, aggregator and retention worker run against the real
Kafka, OpenSearch and S3 server (scripts/services). A writer produces N tagged lines
across K container logs (Docker json-file and CRI; 16 KiB Docker partials,
CRI P/F parts, Java stack traces, invalid UTF-8, malformed JSON app logs,
over-long lines, values the index template maps differently and fields whose
type flips between lines, which must be indexed anyway) with rename
rotations every few MB, a rotation storm, and rotated files deleted once the
shipper's checkpoint shows them read. Meanwhile the schedule kills the
shipper and the aggregator (-9, sometimes SIGTERM), kills the retention
worker in the middle of archiving, restarts the Kafka broker, stops
OpenSearch for a while, stops the S3 server for 20 s, fills the segment filesystem (a tmpfs in a private
mount namespace), and once deletes a rotated file while the shipper is down
(a loss nobody can prevent: it must be counted exactly).

After quiescing it checks: every line is in OpenSearch exactly once (by its
tag; documents = distinct event ids) and in the file segments or their
archives exactly once, and in the bucket's objects exactly once — conflicts
included: the dead letter stays empty —
but for the unavoidable loss; every archive verifies;
bytes_lost equals what the shipper's own checkpoint says the deletion took.

usage: chaos.py BUILD_DIR SERVICES [--long] [--seed N]
A failing seed prints how to replay it."""
import glob
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from lptest import spawn, free_port, s3_env, s3_lines, s3_list

def _can_unshare():
    try:
        return subprocess.run(["unshare", "--mount", "--map-root-user", "true"],
                              stderr=subprocess.DEVNULL).returncode == 0
    except OSError:
        return False


if os.environ.get("LP_CHAOS_NS") is None and _can_unshare():
    # a private mount namespace: the segment filesystem can be a small tmpfs
    os.environ["LP_CHAOS_NS"] = "1"
    os.execvp("unshare", ["unshare", "--mount", "--map-root-user", sys.executable] + sys.argv)

BUILD, SERVICES = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
LONG = "--long" in sys.argv
SEED = int(sys.argv[sys.argv.index("--seed") + 1]) if "--seed" in sys.argv else \
    int(os.environ.get("LP_CHAOS_SEED", str(int(time.time()) % 1000000)))
rng = random.Random(SEED)
SHIPPER = os.path.join(BUILD, "shipper", "logpipe-shipper")
AGG = os.path.join(BUILD, "aggregator", "logpipe-aggregator")
RET = os.path.join(BUILD, "retention", "logpipe-retention")
BROKERS = "127.0.0.1:9092"
ES = "http://127.0.0.1:9200"

LINES = int(os.environ.get("LP_CHAOS_LINES", "1000000" if LONG else "200000"))
FILES = 8
WRITE_SECONDS = 240 if LONG else 75
KILLS = {"shipper": 9 if LONG else 4, "aggregator": 9 if LONG else 4, "retention": 3 if LONG else 2}
BROKER_RESTARTS = 3 if LONG else 1
OS_OUTAGE = 60 if LONG else 30
S3_OUTAGE = 20
ROTATE_BYTES = 4 << 20
PARTITIONS = 4  # scripts/services creates topics with num.partitions=4

run_id = "%d%d" % (SEED, os.getpid() % 1000)
topic = "lp-chaos-" + run_id
index = "lpchaos-" + run_id
tmp = tempfile.mkdtemp(prefix="lp-chaos-")
logs = os.path.join(tmp, "log", "containers")
os.makedirs(logs)
segdir = os.path.join(tmp, "segments")
os.makedirs(segdir)
tmpfs = False
if os.environ.get("LP_CHAOS_NS") == "1":
    tmpfs = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%dm" % (2048 if LONG else 640),
                            "lp-chaos", segdir]).returncode == 0
faults = []
t0 = time.time()


def log(msg):
    print("[%6.1f] %s" % (time.time() - t0, msg), flush=True)



ports = {"shipper": free_port(), "aggregator": free_port()}
S3_ENDPOINT, S3_BUCKET, S3_KEY, S3_SECRET = s3_env()
S3_PREFIX = "chaos-" + topic
cfg = os.path.join(tmp, "logpipe.yaml")
with open(cfg, "w") as f:
    f.write(f"""kafka:
  brokers: "{BROKERS}"
  topic: {topic}
  properties: {{session.timeout.ms: "6000", heartbeat.interval.ms: "1000"}}
shipper:
  state_dir: {tmp}/state
  inputs: [{{paths: ["{logs}/*.log"]}}]
  multiline: {{mode: java}}
  max_line_bytes: 64KiB
  batch_linger: 50ms
  checkpoint_interval: 200ms
  rescan_interval: 500ms
  rotate_wait: 5s
aggregator:
  group_id: {topic}
  workers: 2
  max_pending_bytes: 8MiB
  commit_interval: 200ms
  drain_timeout: 5s
  dead_letter_dir: {tmp}/dead-letter
  parsers: [{{name: app, kind: json}}]
  routes:
    - {{name: apps, match: [{{field: kubernetes.namespace, equals: apps}}], parser: app, outputs: [search, files, bucket]}}
  default_route: {{outputs: [search, files, bucket]}}
  outputs:
    - name: search
      type: elasticsearch
      url: {ES}
      index: "{index}-%Y.%m.%d"
      template_name: {index}
      bulk_max_actions: 2000
      retry_initial: 100ms
      retry_max: 2s
    - {{name: files, type: file, path: {segdir}, max_segment_bytes: 4MiB, max_segment_age: 3s}}
    - name: bucket
      type: s3
      endpoint: {S3_ENDPOINT}
      bucket: {S3_BUCKET}
      path_style: true
      prefix: {S3_PREFIX}
      access_key_id: {S3_KEY}
      secret_access_key: {S3_SECRET}
      max_object_bytes: 2MiB
      max_object_age: 3s
      retry_initial: 100ms
      retry_max: 2s
retention:
  audit_log: {tmp}/retention-audit.ndjson
  policies: [{{name: chaos, output: files, archive_after: 4s}}]
metrics: {{enabled: false}}
""")
portcfg = {}
for name, port in ports.items():
    portcfg[name] = os.path.join(tmp, name + "-port.yaml")
    with open(portcfg[name], "w") as f:
        f.write('metrics: {enabled: true, listen: "127.0.0.1:%d"}\n' % port)

# ---- processes ----
procs = {}
plog = {n: open(os.path.join(tmp, n + ".log"), "ab") for n in ("shipper", "aggregator", "retention")}
lock = threading.Lock()


def metrics(name):
    try:
        return urllib.request.urlopen("http://127.0.0.1:%d/metrics" % ports[name], timeout=2).read().decode()
    except Exception:
        return ""


def msum(text, name):
    v = [float(x) for x in re.findall(r"^" + re.escape(name) + r"(?:\{[^}]*\})? (\S+)$", text, re.M)]
    return sum(v) if v else None


def start(name):
    exe = {"shipper": SHIPPER, "aggregator": AGG}[name]
    procs[name] = spawn([exe, "-c", cfg, "-c", portcfg[name]], stderr=plog[name])
    for _ in range(300):
        if metrics(name):
            return
        if procs[name].poll() is not None:
            fail("%s exited %s at start; log %s" % (name, procs[name].returncode, plog[name].name))
        time.sleep(0.05)


def stop(name, sig):
    p = procs.pop(name)
    p.send_signal(sig)
    rc = p.wait(timeout=180)
    if sig == signal.SIGTERM and rc != 0:
        fail("%s exited %d on SIGTERM" % (name, rc))


lost_seen = {}  # shipper pid -> its bytes_lost (a counter per process)


def note_lost():
    p = procs.get("shipper")
    v = msum(metrics("shipper"), "logpipe_shipper_bytes_lost_total") if p else None
    if v is not None:
        lost_seen[p.pid] = v


def fail(msg):
    print("CHAOS FAILURE (seed %d): %s" % (SEED, msg), flush=True)
    if tmpfs:  # the tmpfs dies with the namespace: keep a copy
        subprocess.run(["cp", "-a", segdir, os.path.join(tmp, "segments-kept")])
    print("replay: LP_CHAOS_SEED=%d scripts/chaos%s   (kept: %s)" % (SEED, " --long" if LONG else "", tmp), flush=True)
    for p in procs.values():
        p.kill()
    os._exit(1)


def services(action, what):
    r = subprocess.run([SERVICES, action, what], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=300)
    if r.returncode != 0:
        fail("scripts/services %s %s: %s" % (action, what, r.stderr.decode()[-500:]))


# ---- the writer ----
HEX = "%064x"
names = []
for i in range(FILES):
    ns = "apps" if i % 2 == 0 else "batch"
    names.append(os.path.join(logs, "c%d-pod_%s_c%d-%s.log" % (i, ns, i, HEX % (i + 1))))
fmt = ["docker" if i < FILES // 2 else "cri" for i in range(FILES)]
expected = set()     # tags that must arrive
conflicts = set()    # tags with a value the template maps differently or a flipped type: indexed anyway
written = [0]
sizes = [0] * FILES
rotated = []         # rotated paths still on disk
unavoidable = {}     # tag -> path of a file deleted while the shipper was down
lines_of = {}        # path of a rotated file -> tags in it
cur_tags = [[] for _ in range(FILES)]
now_ts = lambda: time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + ".%06dZ" % (time.time() % 1 * 1e6)


def emit(i, text, stream="stdout"):
    """One physical event's lines in file i's format (text may hold \n for
    multiline events; long text is split into runtime partials)."""
    out = []
    for ln in text.split("\n"):
        if fmt[i] == "docker":
            chunks = [ln[k:k + 16384] for k in range(0, len(ln), 16384)] or [""]
            for k, c in enumerate(chunks):
                last = k == len(chunks) - 1
                out.append(json.dumps({"log": c + ("\n" if last else ""), "stream": stream, "time": now_ts()}))
        else:
            chunks = [ln[k:k + 8192] for k in range(0, len(ln), 8192)] or [""]
            for k, c in enumerate(chunks):
                out.append("%s %s %s %s" % (now_ts(), stream, "F" if k == len(chunks) - 1 else "P", c))
    return "".join(o + "\n" for o in out)


def line_for(i, seq):
    tag = "c%d-s%d" % (i, seq)
    r = rng.random()
    if i % 2 == 0:  # JSON app logs (parsed)
        if r < 0.0005:
            conflicts.add(tag)  # the template maps http.response.status_code as long: kept
            return tag, json.dumps({"level": "info", "msg": tag, "http": {"response": {"status_code": "teapot"}}})
        if r < 0.001:
            conflicts.add(tag)  # detail is a string in the other lines: the cluster refuses, healed
            return tag, json.dumps({"level": "info", "msg": tag, "detail": {"code": seq}})
        if r < 0.002:
            return tag, '{"level":"warn","msg":"%s truncated json' % tag
        return tag, json.dumps({"level": rng.choice(["info", "WARNING", "error"]), "msg": tag,
                                "n": seq, "detail": "ok", "pad": "x" * rng.randrange(20, 300)})
    if r < 0.002:
        # a stack trace: one event of four lines (java multiline rules)
        return tag, "%s ERROR failed: boom\n\tat a.B.c(B.java:1)\n\tat a.B.d(B.java:2)\n\t... 3 more" % tag
    if r < 0.003:
        return tag, "%s long %s" % (tag, "y" * rng.randrange(20000, 90000))  # partials; over 64 KiB truncated
    if r < 0.004:
        return tag, "%s bad utf8 \udcff\udcfe end" % tag
    return tag, "%s worker line %d %s" % (tag, seq, "z" * rng.randrange(10, 200))


def encode(s):
    return s.encode("utf-8", "surrogateescape")


def rotate(i):
    p = names[i]
    k = 1
    while os.path.exists("%s.%d" % (p, k)):
        k += 1
    dst = "%s.%d" % (p, k)
    os.rename(p, dst)
    with lock:
        rotated.append(dst)
        lines_of[dst] = cur_tags[i]
        cur_tags[i] = []
    sizes[i] = 0
    return dst


def checkpoint_offsets():
    try:
        with open(os.path.join(tmp, "state", "checkpoints.json")) as f:
            d = json.load(f)
    except Exception:
        return {}
    out = {}
    for e in d.get("files", d if isinstance(d, list) else []):
        out[(int(e.get("dev", 0)), int(e.get("ino", 0)))] = (int(e.get("offset", 0)), int(e.get("size", 0)))
    return out


def delete_read_rotated():
    """Deletes rotated files the shipper's checkpoint shows fully read."""
    ck = checkpoint_offsets()
    with lock:
        for p in list(rotated):
            try:
                st = os.stat(p)
            except FileNotFoundError:
                rotated.remove(p)
                continue
            off = ck.get((st.st_dev, st.st_ino))
            if off and off[0] >= st.st_size:
                os.unlink(p)
                rotated.remove(p)


writer_done = threading.Event()
schedule_over = threading.Event()
pause_writer = threading.Event()
unavoid_req = threading.Event()
unavoid_done = threading.Event()


def writer():
    fh = [open(n, "ab") for n in names]
    seq = [0] * FILES
    per_sec = LINES / WRITE_SECONDS
    start_t = time.time()
    storm_at = LINES // 3

    def serve_unavoidable():
        if not unavoid_req.is_set():
            return
        # the shipper is down: rotate the last file and delete the rotated part
        i = FILES - 1
        fh[i].flush()
        fh[i].close()
        with lock:
            tags = list(cur_tags[i])
        dst = rotate(i)
        os.unlink(dst)
        with lock:
            if dst in rotated:
                rotated.remove(dst)
            for t in tags:
                unavoidable[t] = dst
        fh[i] = open(names[i], "ab")
        unavoid_req.clear()
        unavoid_done.set()

    while written[0] < LINES:
        serve_unavoidable()
        target = int((time.time() - start_t) * per_sec)
        if written[0] >= target:
            time.sleep(0.005)
            continue
        for _ in range(min(500, target - written[0], LINES - written[0])):
            i = rng.randrange(FILES)
            tag, text = line_for(i, seq[i])
            seq[i] += 1
            b = encode(emit(i, text, "stderr" if rng.random() < 0.1 else "stdout"))
            fh[i].write(b)
            sizes[i] += len(b)
            with lock:
                expected.add(tag)
                cur_tags[i].append(tag)
            written[0] += 1
            if sizes[i] > ROTATE_BYTES:
                fh[i].flush()
                fh[i].close()
                rotate(i)
                fh[i] = open(names[i], "ab")
            if written[0] == storm_at:
                # a rotation storm: one file rotated 15 times within a second
                for _ in range(15):
                    for _ in range(20):
                        t2, x2 = line_for(0, seq[0])
                        seq[0] += 1
                        fh[0].write(encode(emit(0, x2)))
                        with lock:
                            expected.add(t2)
                            cur_tags[0].append(t2)
                        written[0] += 1
                    fh[0].flush()
                    fh[0].close()
                    rotate(0)
                    fh[0] = open(names[0], "ab")
                    time.sleep(0.05)
                faults.append("rotation-storm")
        for h in fh:
            h.flush()
        delete_read_rotated()
    # faults run one after another, and a broker restart or a full disk can
    # push the last of them past the end of writing: keep serving the
    # rotate-and-delete request until the schedule is over
    while not schedule_over.is_set():
        serve_unavoidable()
        time.sleep(0.05)
    for h in fh:
        h.close()
    writer_done.set()


# ---- retention runs (some killed while archiving) ----
ret_kills = [0]
ret_kill_wanted = [0]
ret_stop = threading.Event()


def retention_loop():
    while not ret_stop.is_set():
        p = spawn([RET, "-c", cfg, "--once"], stdout=subprocess.DEVNULL, stderr=plog["retention"])
        if ret_kill_wanted[0] > ret_kills[0]:
            deadline = time.time() + 20
            while time.time() < deadline and p.poll() is None:
                if glob.glob(os.path.join(segdir, "**", "*.archiving"), recursive=True):
                    p.send_signal(signal.SIGKILL)
                    ret_kills[0] += 1
                    faults.append("retention:kill-9-mid-archive")
                    break
                time.sleep(0.001)
        p.wait()
        time.sleep(1)


# ---- the schedule ----
def schedule():
    ev = []
    for name in ("shipper", "aggregator"):
        for k in range(KILLS[name]):
            ev.append((rng.uniform(3, WRITE_SECONDS), "kill", name))
    for k in range(KILLS["retention"]):
        ev.append((rng.uniform(10, WRITE_SECONDS), "kill", "retention"))
    for k in range(BROKER_RESTARTS):
        ev.append((rng.uniform(10, WRITE_SECONDS - 10), "broker", None))
    ev.append((rng.uniform(15, WRITE_SECONDS - OS_OUTAGE / 2), "opensearch", None))
    ev.append((rng.uniform(10, WRITE_SECONDS - S3_OUTAGE / 2), "s3", None))
    ev.append((rng.uniform(10, WRITE_SECONDS - 10), "diskfull", None))
    ev.append((rng.uniform(10, WRITE_SECONDS - 10), "unavoidable", None))
    return sorted(ev, key=lambda e: e[0])


def fault(kind, name):
    if kind == "kill" and name in ("shipper", "aggregator"):
        sig = signal.SIGTERM if rng.random() < 0.2 else signal.SIGKILL
        if name == "shipper":
            note_lost()
        stop(name, sig)
        faults.append("%s:%s" % (name, "term" if sig == signal.SIGTERM else "kill-9"))
        time.sleep(rng.uniform(0.2, 2.0))
        start(name)
    elif kind == "kill":
        ret_kill_wanted[0] += 1
    elif kind == "broker":
        log("broker stop")
        services("down", "kafka")
        time.sleep(rng.uniform(3, 8))
        services("start", "kafka")
        faults.append("broker-restart")
        log("broker back")
    elif kind == "opensearch":
        def outage():
            log("opensearch stop for %ds" % OS_OUTAGE)
            services("down", "opensearch")
            time.sleep(OS_OUTAGE)
            services("start", "opensearch")
            faults.append("opensearch-outage-%ds" % OS_OUTAGE)
            log("opensearch back")
        threading.Thread(target=outage, daemon=True).start()
    elif kind == "s3":
        def outage():
            log("object store stop for %ds" % S3_OUTAGE)
            services("down", "s3")
            time.sleep(S3_OUTAGE)
            services("start", "s3")
            faults.append("s3-outage-%ds" % S3_OUTAGE)
            log("object store back")
        threading.Thread(target=outage, daemon=True).start()
    elif kind == "diskfull":
        if not tmpfs:
            log("no tmpfs for the segments: disk-full fault skipped")
            return
        ballast = os.path.join(segdir, "ballast")
        subprocess.run(["sh", "-c", "cat /dev/zero > '%s' 2>/dev/null; true" % ballast])
        log("segment filesystem full")
        time.sleep(15)
        os.unlink(ballast)
        faults.append("disk-full-15s")
        log("segment filesystem has room again")
    elif kind == "unavoidable":
        # the shipper is down; a file is rotated and its rotated part deleted
        note_lost()
        stop("shipper", signal.SIGKILL)
        i = FILES - 1
        ck = checkpoint_offsets()
        st = os.stat(names[i])
        off, size = ck.get((st.st_dev, st.st_ino), (0, 0))
        unavoid_done.clear()
        unavoid_req.set()
        if not unavoid_done.wait(60):
            fail("the writer did not rotate for the deletion")
        unavoidable_bytes[0] += max(0, size - off)
        faults.append("shipper:kill-9+rotated-file-deleted")
        log("deleted a rotated file while the shipper was down (checkpoint %d of %d bytes seen)" % (off, size))
        start("shipper")


unavoidable_bytes = [0]


def es(method, path, body=None):
    req = urllib.request.Request(ES + path, data=json.dumps(body).encode() if body is not None else None,
                                 method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")
    except Exception as e:
        return 0, {"error": str(e)}


# ---- run ----
log("seed %d, %d lines, %d files, tmpfs segments: %s" % (SEED, LINES, FILES, tmpfs))
start("aggregator")
start("shipper")
rt = threading.Thread(target=retention_loop, daemon=True)
rt.start()
wt = threading.Thread(target=writer, daemon=True)
wt.start()
for at, kind, name in schedule():
    while time.time() - t0 < at:
        time.sleep(0.05)
    log("fault: %s %s" % (kind, name or ""))
    fault(kind, name)
schedule_over.set()
wt.join()
log("writer done: %d lines" % written[0])
while ret_kills[0] < ret_kill_wanted[0] and time.time() - t0 < WRITE_SECONDS + 120:
    time.sleep(0.5)

# ---- quiesce ----
deadline = time.time() + (1200 if LONG else 420)
while time.time() < deadline:
    delete_read_rotated()
    note_lost()
    st = metrics("shipper")
    ag = metrics("aggregator")
    ship_lag = msum(st, "logpipe_shipper_lag_bytes")
    # every partition must be assigned to the (one) aggregator with no lag:
    # a partition still held by a killed member's stale session shows no
    # lag series at all
    lags = [float(x) for x in re.findall(r"^logpipe_aggregator_consumer_lag\{[^}]*\} (\S+)$", ag, re.M)]
    cons_lag = sum(lags) if len(lags) == PARTITIONS else None
    if ship_lag == 0 and msum(st, "logpipe_shipper_inflight_bytes") == 0 and cons_lag == 0 and \
            msum(ag, "logpipe_aggregator_assigned_partitions") == PARTITIONS and \
            (msum(ag, "logpipe_aggregator_pending_bytes") or 0) == 0:
        break
    time.sleep(1)
else:
    fail("did not quiesce: shipper lag %s, consumer lag %s" % (ship_lag, cons_lag))
log("quiesced")
note_lost()
lost_metric = sum(lost_seen.values())
stop("shipper", signal.SIGTERM)
stop("aggregator", signal.SIGTERM)
ret_stop.set()
rt.join()
r = subprocess.run([RET, "-c", cfg, "--once"], stdout=subprocess.DEVNULL, stderr=plog["retention"])

# ---- check ----
es("POST", "/%s-*/_refresh" % index)
tag_re = re.compile(r"c\d+-s\d+")
es_tags = {}
ids = set()
docs = 0
st, b = es("POST", "/%s-*/_search?scroll=2m" % index, {"size": 5000, "_source": ["message", "event.id"], "sort": ["_doc"]})
while st == 200 and b["hits"]["hits"]:
    for h in b["hits"]["hits"]:
        docs += 1
        ids.add(h["_source"].get("event", {}).get("id"))
        m = tag_re.search(h["_source"].get("message", ""))
        if m:
            es_tags[m.group(0)] = es_tags.get(m.group(0), 0) + 1
    st, b = es("POST", "/_search/scroll", {"scroll": "2m", "scroll_id": b["_scroll_id"]})
if st != 200:
    fail("reading OpenSearch: %s" % b)
file_tags = {}
where = {}
segments = archives = 0
bad_archives = []
for p in glob.glob(os.path.join(segdir, "**", "*.ndjson*"), recursive=True):
    if p.endswith(".zst"):
        archives += 1
        r = subprocess.run(["zstd", "-dcq", p], stdout=subprocess.PIPE)
        if r.returncode != 0:
            bad_archives.append(p)
        data = r.stdout
    elif p.endswith(".ndjson") or p.endswith(".ndjson.open"):
        segments += 1
        data = open(p, "rb").read()
    else:
        continue
    for line in data.splitlines():
        try:
            msg = json.loads(line).get("message", "")
        except ValueError:
            fail("a segment line is not JSON: %s" % p)
        m = tag_re.search(msg)
        if m:
            file_tags[m.group(0)] = file_tags.get(m.group(0), 0) + 1
            where.setdefault(m.group(0), []).append(os.path.relpath(p, segdir))
bucket_tags = {}
objects = 0
for key, _ in s3_list(S3_PREFIX + "/"):
    if "/_logpipe/" in key:
        continue
    objects += 1
    for doc in s3_lines(key):
        m = tag_re.search(doc.get("message", ""))
        if m:
            bucket_tags[m.group(0)] = bucket_tags.get(m.group(0), 0) + 1
dead = []
for p in glob.glob(os.path.join(tmp, "dead-letter", "*.ndjson")):
    dead += [json.loads(l) for l in open(p) if l.strip()]
dead_tags = set()
dead_ids = set()
for d in dead:
    dead_ids.add(d.get("event", {}).get("event", {}).get("id") or json.dumps(d.get("kafka")))
    m = tag_re.search(json.dumps(d))
    if m:
        dead_tags.add(m.group(0))

must = expected - set(unavoidable)
es_missing = [t for t in must if t not in es_tags]
es_dup = [t for t, n in es_tags.items() if n > 1]
file_missing = [t for t in must if t not in file_tags]
file_dup = [t for t, n in file_tags.items() if n > 1]
bucket_missing = [t for t in must if t not in bucket_tags]
bucket_dup = [t for t, n in bucket_tags.items() if n > 1]
lost_unavoidable = [t for t in unavoidable if t not in file_tags]
kills = sum(1 for f in faults if "kill" in f or "term" in f)
summary = ("lines=%d indexed=%d distinct_ids=%d segments=%d archives=%d objects=%d lost=%d duplicated=%d "
           "dead_letter=%d distinct (%d entries; expected 0) conflicts_indexed=%d unavoidable_lines=%d bytes_lost=%d (expected %d) faults=%d kills=%d [%s] seed=%d"
           % (len(expected), docs, len(ids), segments, archives, objects,
              len(es_missing) + len(file_missing) + len(bucket_missing),
              len(es_dup) + len(file_dup) + len(bucket_dup), len(dead_ids), len(dead), sum(1 for t in conflicts if t in es_tags), len(lost_unavoidable), lost_metric,
              unavoidable_bytes[0], len(faults), kills, " ".join(sorted(set(faults))), SEED))
print(summary, flush=True)
problems = []
if es_missing:
    problems.append("missing in OpenSearch: %s" % es_missing[:10])
if es_dup or file_dup:
    problems.append("duplicated: %s %s in %s" % (es_dup[:10], file_dup[:10], [where[t] for t in file_dup[:5]]))
if file_missing:
    problems.append("missing in files: %s" % file_missing[:10])
if bucket_missing:
    problems.append("missing in the bucket: %s" % bucket_missing[:10])
if bucket_dup:
    problems.append("duplicated in the bucket: %s" % bucket_dup[:10])
if docs != len(ids):
    problems.append("documents %d != distinct event ids %d" % (docs, len(ids)))
if dead:
    problems.append("dead letter not empty: %s (conflicts must be kept or healed, not refused)"
                    % json.dumps(dead)[:500])
if bad_archives:
    problems.append("archives that do not verify: %s" % bad_archives[:5])
if int(lost_metric) != unavoidable_bytes[0]:
    problems.append("bytes_lost %d != %d the deletion took" % (lost_metric, unavoidable_bytes[0]))
if kills < sum(KILLS.values()):
    problems.append("only %d kills happened" % kills)
if problems:
    fail("; ".join(problems))
if tmpfs:
    subprocess.run(["umount", segdir])
shutil.rmtree(tmp, ignore_errors=True)
es("DELETE", "/%s-*" % index)
print("chaos: ok in %.0f s" % (time.time() - t0))
