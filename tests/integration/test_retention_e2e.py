#!/usr/bin/env python3
"""logpipe-retention end to end: a segment tree with set modification times
and the real OpenSearch (127.0.0.1:9200) started by scripts/services.

Files: four policies over one segment root (app: archive zstd after 2d,
delete after 30d; web: archive gzip into another directory after 1d; nginx:
delete after 14d and at most 350 KiB; scratch: min_free_bytes larger than
the disk, so emergency pruning takes everything), open segments with old
times in every route, a route no policy covers, archives from "earlier
runs" (one old enough to delete, one corrupt), and a 48 MiB segment that
the first run is killed with SIGKILL while archiving.

Checks: --dry-run --output json plans exactly the expected actions and
changes nothing; after the kill the source is intact; the rerun leaves every
expected archive (decompressed with the zstd/gzip CLIs to the original's
sha256), deletes exactly the expected files, leaves no temp file, keeps the
corrupt archive and reports it (exit 1), never touches open segments or
unselected files; the audit log holds one line per action; a third run has
nothing to do.

Indices: dated indices (40, 20, 5, 0 days old), an undated one, one outside
the pattern, and a data stream rolled over twice; --dry-run plans, then a
run deletes exactly the two old dated indices and the two older backing
indices (the write index stays).

usage: test_retention_e2e.py RETENTION"""
import datetime
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from lptest import spawn  # noqa: E402

RET = sys.argv[1]
ES = os.environ.get("LP_OPENSEARCH_URL", "http://127.0.0.1:9200")
DAY = 86400
tmp = tempfile.mkdtemp(prefix="lp-ret-e2e-")
seg = os.path.join(tmp, "segments")
arch = os.path.join(tmp, "archive")
now = time.time()
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what, flush=True)


def sha(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


def unpacked_sha(path):
    tool = ["zstd", "-dcq"] if path.endswith(".zst") else ["gzip", "-dc"]
    p = subprocess.run(tool + [path], stdout=subprocess.PIPE, check=True)
    return hashlib.sha256(p.stdout).hexdigest()


def write(rel, size, age_s, content=None):
    p = os.path.join(seg, rel)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    with open(p, "wb") as f:
        if content is not None:
            f.write(content)
        else:
            n = 0
            i = 0
            while n < size:
                line = ('{"@timestamp":"2026-11-01T10:00:%02d.%06dZ","message":"%s line %d",'
                        '"log":{"level":"info"},"kubernetes":{"pod":{"name":"pod-%d"}}}\n'
                        % (i % 60, i, rel, i, i % 7)).encode()
                line = line[: size - n] if n + len(line) > size else line
                f.write(line)
                n += len(line)
                i += 1
    t = now - age_s
    os.utime(p, (t, t))
    return p


def tree():
    """path -> sha256 of every file under tmp (but the audit log)."""
    out = {}
    for d, _, fs in os.walk(tmp):
        for f in fs:
            p = os.path.join(d, f)
            if not p.endswith("audit.ndjson"):
                out[p] = sha(p)
    return out


H = 3600
# app: archive after 2d, delete after 30d
app_keep = write("app/2026-11-28/10/0-500.ndjson", 200_000, 5 * H)
app_arch = [write("app/2026-11-25/10/0-100.ndjson", 300_000, 3 * DAY),
            write("app/2026-11-20/09/1-0.ndjson", 500_000, 8 * DAY)]
app_big = write("app/2026-11-24/00/2-0.ndjson", 48 << 20, 4 * DAY)  # killed mid-archive
app_del = write("app/2026-10-01/00/0-0.ndjson", 100_000, 40 * DAY)  # past both: deleted
old_archive = os.path.join(seg, "app/2026-10-05/00/3-0.ndjson.zst")
os.makedirs(os.path.dirname(old_archive))
subprocess.run(["zstd", "-q", "-o", old_archive, "-"], input=b"old\n" * 1000, check=True)
os.utime(old_archive, (now - 35 * DAY, now - 35 * DAY))
young_archive = os.path.join(seg, "app/2026-11-10/00/3-9.ndjson.zst")
os.makedirs(os.path.dirname(young_archive))
subprocess.run(["zstd", "-q", "-o", young_archive, "-"], input=b"young\n" * 1000, check=True)
os.utime(young_archive, (now - 18 * DAY, now - 18 * DAY))
corrupt = write("app/2026-10-06/00/4-0.ndjson.zst", 0, 33 * DAY, content=b"\x28\xb5\x2f\xfdgarbage")
# web: gzip into another directory after 1d
web_arch = [write("web/2026-11-26/01/0-0.ndjson", 120_000, 2 * DAY),
            write("web/2026-11-25/01/0-7.ndjson", 80_000, 3 * DAY)]
web_keep = write("web/2026-11-28/11/0-9.ndjson", 50_000, H)
# nginx: delete after 14d, at most 350 KiB (the two oldest young ones go)
ngx_age = write("nginx/2026-11-08/00/0-0.ndjson", 100 << 10, 20 * DAY)
ngx = [write("nginx/2026-11-28/0%d/0-%d.ndjson" % (i, i), 100 << 10, (5 - i) * H) for i in range(5)]
# scratch: min_free_bytes above the disk's size: emergency pruning of all
scratch = [write("scratch/x/%d.ndjson" % i, 1000, (i + 1) * DAY) for i in range(3)]
# never touched: open segments (old times) and a route without policy
opens = [write("%s/2026-10-01/00/9-0.ndjson.open" % r, 5000, 60 * DAY)
         for r in ("app", "web", "nginx", "scratch")]
other = write("other/2026-01-01/00/0-0.ndjson", 5000, 300 * DAY)

expect_archived = {p: sha(p) for p in app_arch + [app_big] + web_arch}
expect_deleted = set([app_del, old_archive, ngx_age, ngx[0], ngx[1]] + scratch)
expect_untouched = {p: sha(p) for p in [app_keep, web_keep, young_archive, corrupt, other]
                    + ngx[2:] + opens}

cfg = os.path.join(tmp, "retention.yaml")
with open(cfg, "w") as f:
    f.write(f"""retention:
  audit_log: {tmp}/audit.ndjson
  policies:
    - {{name: app, path: {seg}, routes: [app], archive_after: 2d, delete_after: 30d}}
    - name: web
      path: {seg}
      routes: [web]
      archive_after: 1d
      archive_codec: gzip
      archive_root: {arch}
    - {{name: nginx, path: {seg}, routes: [nginx], delete_after: 14d, max_total_bytes: 350KiB}}
    - {{name: scratch, path: {seg}, glob: "scratch/**", min_free_bytes: 1000000TiB}}
metrics: {{enabled: false}}
""")


def archive_name(p):
    if p in web_arch:
        return os.path.join(arch, os.path.relpath(p, seg)) + ".gz"
    return p + ".zst"


# ---- dry run: the plan, and nothing changes ----
before = tree()
dr = subprocess.run([RET, "-c", cfg, "--dry-run", "--output", "json"], stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE, timeout=120)
check(dr.returncode == 0, "dry run exit 0 (got %d: %s)" % (dr.returncode, dr.stderr[-500:]))
plan = json.loads(dr.stdout)
planned_arch = {a["target"] for a in plan["actions"] if a["action"] == "archive"}
planned_del = {a["target"] for a in plan["actions"] if a["action"] == "delete"}
check(planned_arch == set(expect_archived), "dry run archives: %s" % sorted(planned_arch ^ set(expect_archived)))
# the corrupt archive is planned for deletion (age); verification keeps it in the real run
check(planned_del == expect_deleted | {corrupt}, "dry run deletes: %s" % sorted(planned_del ^ (expect_deleted | {corrupt})))
check(all(a["result"] == "planned" for a in plan["actions"]), "dry run: all planned")
check(tree() == before, "dry run changed nothing")
check(not os.path.exists(os.path.join(tmp, "audit.ndjson")), "dry run wrote no audit log")
pol = {p["name"]: p for p in plan["policies"]}
check(pol["scratch"]["delete_count"] == 3 and pol["nginx"]["delete_count"] == 3,
      "dry run per-policy counts %s" % pol)
table = subprocess.run([RET, "-c", cfg, "--dry-run"], stdout=subprocess.PIPE, timeout=120).stdout.decode()
check("min_free_bytes" in table and "ARCHIVE (files)" in table, "dry run table")

# ---- a run killed with SIGKILL while it archives the big segment ----
proc = spawn([RET, "-c", cfg, "--once"], stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL)
tmpfile = app_big + ".zst.archiving"
deadline = time.time() + 60
while time.time() < deadline and proc.poll() is None:
    if os.path.exists(tmpfile) and os.path.getsize(tmpfile) > 0:
        break
    time.sleep(0.002)
killed = proc.poll() is None
if killed:
    proc.send_signal(signal.SIGKILL)
proc.wait()
check(killed, "the first run was killed mid-archive (it finished first: make the segment bigger)")
check(os.path.exists(app_big) and sha(app_big) == expect_archived[app_big],
      "after kill -9 the big source is intact")
check(not os.path.exists(app_big + ".zst"), "no final archive name after kill -9 mid-compress")
leftover = os.path.exists(tmpfile)
print("killed=%s temp_left=%s" % (killed, leftover), flush=True)

# ---- the rerun finishes everything ----
r = subprocess.run([RET, "-c", cfg, "--once", "--output", "json"], stdout=subprocess.PIPE,
                   stderr=subprocess.PIPE, timeout=300)
check(r.returncode == 1, "rerun exit 1 because of the corrupt archive (got %d)" % r.returncode)
rep = json.loads(r.stdout)
errors = [a for a in rep["actions"] if a["result"] == "error"]
check(len(errors) == 1 and errors[0]["target"] == corrupt,
      "the one error is the corrupt archive: %s" % errors)
check(b"EMERGENCY PRUNING" in r.stderr, "emergency pruning logged loudly")
for p, h in expect_archived.items():
    a = archive_name(p)
    check(not os.path.exists(p), "source removed: " + p)
    check(os.path.exists(a) and unpacked_sha(a) == h, "archive holds the source: " + a)
for p in expect_deleted:
    check(not os.path.exists(p), "deleted: " + p)
for p, h in expect_untouched.items():
    check(os.path.exists(p) and sha(p) == h, "untouched: " + p)
temps = [os.path.join(d, f) for d, _, fs in os.walk(tmp) for f in fs if f.endswith(".archiving")]
check(temps == [], "no temp files left: %s" % temps)
# archives keep the segment's modification time
for p in app_arch:
    check(abs(os.stat(p + ".zst").st_mtime - (now - (3 * DAY if p == app_arch[0] else 8 * DAY))) < 2,
          "archive keeps mtime: " + p)
# audit log: one line per action of the rerun (and the cleanup), each with the run id
audit = [json.loads(l) for l in open(os.path.join(tmp, "audit.ndjson"))]
rerun = [a for a in audit if a["run_id"] == rep["run_id"]]
check(len(rerun) == len(rep["actions"]), "audit lines = actions (%d vs %d)" % (len(rerun), len(rep["actions"])))
# the killed run did some before the kill: count over both
ok_arch = sum(1 for a in audit if a["action"] == "archive" and a["result"] == "ok")
ok_del = sum(1 for a in audit if a["action"] == "delete" and a["result"] == "ok")
arch_targets = [a["target"] for a in audit if a["action"] == "archive" and a["result"] == "ok"]
check(sorted(arch_targets) == sorted(expect_archived), "each archived exactly once: %s" % arch_targets)
check(ok_arch == len(expect_archived), "audit archives %d" % ok_arch)
check(ok_del == len(expect_deleted), "audit deletes %d" % ok_del)
if leftover:
    check(any(a["action"] == "cleanup" for a in rerun), "the temp file's cleanup is audited")
for a in rerun:
    if a["action"] == "archive":
        check(a.get("bytes_out", 0) > 0 and a["ratio"] > 1, "archive ratio in audit")

# ---- nothing left to do ----
r3 = subprocess.run([RET, "-c", cfg, "--once", "--output", "json"], stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE, timeout=120)
rep3 = json.loads(r3.stdout)
left = [a for a in rep3["actions"] if a["target"] != corrupt]
check(left == [], "third run: nothing to do but report the corrupt archive: %s" % left)

# ---- index retention against OpenSearch ----
def es(method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(ES + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


run = "%d" % (os.getpid() % 100000)
pfx = "lprt%s" % run
today = datetime.datetime.now(datetime.timezone.utc).date()


def dated(days):
    return "%s-logs-%s" % (pfx, (today - datetime.timedelta(days=days)).strftime("%Y.%m.%d"))


made = [dated(40), dated(20), dated(5), dated(0), pfx + "-logs-nodate", pfx + "-other-2020.01.01"]
for ix in made:
    s, b = es("PUT", "/" + ix, {"settings": {"number_of_replicas": 0}})
    check(s == 200, "create %s: %s" % (ix, b))
s, b = es("PUT", "/_index_template/" + pfx + "-ds",
          {"index_patterns": [pfx + "-ds-*"], "data_stream": {}, "priority": 900,
           "template": {"settings": {"number_of_replicas": 0}}})
check(s == 200, "data stream template: %s" % b)
stream = pfx + "-ds-app"
s, b = es("PUT", "/_data_stream/" + stream)
check(s == 200, "create data stream: %s" % b)
for _ in range(2):
    time.sleep(1.1)
    s, b = es("POST", "/%s/_rollover" % stream)
    check(s == 200, "rollover: %s" % b)
time.sleep(2.2)
s, b = es("GET", "/_data_stream/" + stream)
backing = [i["index_name"] for i in b["data_streams"][0]["indices"]]
check(len(backing) == 3, "three backing indices: %s" % backing)
icfg = os.path.join(tmp, "indices.yaml")
with open(icfg, "w") as f:
    f.write(f"""retention:
  audit_log: {tmp}/audit-indices.ndjson
  elasticsearch:
    - {{name: dated, url: "{ES}", index_pattern: "{pfx}-logs-*", delete_after: 10d}}
    - {{name: streams, url: "{ES}", index_pattern: "{pfx}-ds-*", delete_after: 2s}}
metrics: {{enabled: false}}
""")
want = {dated(40), dated(20)} | set(backing[:2])
dr = subprocess.run([RET, "-c", icfg, "--dry-run", "--output", "json"], stdout=subprocess.PIPE,
                    timeout=120)
plan = json.loads(dr.stdout)
planned = {a["target"] for a in plan["actions"] if a["action"] == "index_delete"}
check(planned == want, "index dry run plans %s, wanted %s" % (sorted(planned), sorted(want)))
s, b = es("GET", "/_cat/indices/%s-*?format=json&expand_wildcards=all" % pfx)
s2, b2 = es("GET", "/_cat/indices/.ds-%s-*?format=json&expand_wildcards=all" % pfx)
check(len(b) + len(b2) >= len(made) + 3 - 0, "dry run deleted no index")
r = subprocess.run([RET, "-c", icfg, "--once", "--output", "json"], stdout=subprocess.PIPE,
                   stderr=subprocess.PIPE, timeout=120)
check(r.returncode == 0, "index run exit 0: %s" % r.stderr[-800:])
rep = json.loads(r.stdout)
done = {a["target"] for a in rep["actions"] if a["action"] == "index_delete" and a["result"] == "ok"}
check(done == want, "indices deleted %s, wanted %s" % (sorted(done), sorted(want)))
left = set()
for pat in ("%s-*" % pfx, ".ds-%s-*" % pfx):
    s, b = es("GET", "/_cat/indices/%s?format=json&expand_wildcards=all" % pat)
    left |= {x["index"] for x in b}
check(left == (set(made) | set(backing)) - want, "indices left: %s" % sorted(left))
s, b = es("GET", "/_data_stream/" + stream)
check(s == 200 and [i["index_name"] for i in b["data_streams"][0]["indices"]] == backing[2:],
      "the data stream keeps its write index")

# clean up what we made
es("DELETE", "/_data_stream/" + stream)
es("DELETE", "/_index_template/" + pfx + "-ds")
for ix in made:
    es("DELETE", "/" + ix)

print("archived=%d deleted=%d untouched=%d killed=%d indices_deleted=%d backing_kept=1 failures=%d"
      % (len(expect_archived), len(expect_deleted), len(expect_untouched), int(killed), len(done),
         len(failures)), flush=True)
if failures:
    print("kept for inspection:", tmp)
    sys.exit(1)
shutil.rmtree(tmp)
