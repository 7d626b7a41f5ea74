#!/usr/bin/env python3
"""Bucket retention end to end against the real S3 server (S3Proxy):
logpipe-retention with three policies over one s3 output's bucket.

Objects are laid out as the s3 output writes them
(<prefix>/<route>/YYYY/MM/DD/HH/<topic>-<partition>-<first>.ndjson.zst),
their ages set by the hour in the key:
- app (archive_after 7d → archive_prefix, delete_after 30d): objects 40, 20,
  10 and 3 days old and one without an hour in its key; the 10-day one is
  named by an open ledger record; archives 35 and 25 days old, and one of
  another route in the archive prefix;
- web (archive_after 2d → storage class in place, max_total_bytes): 10, 5
  and 1 days old;
- bulk (delete_after 1d): 1,100 empty objects (two DeleteObjects batches).

Checks: --dry-run --output json plans exactly the expected actions and
changes nothing; a run does them: the 40-day object and the 35-day archive
deleted, the 20-day object moved byte for byte to the archive prefix, the
10-day one kept (its batch may still be rewritten), the oldest web object
deleted for max_total_bytes and the next one archived in place, every bulk
object gone, the ledger and everything unselected untouched; one audit
line per action; a second run has nothing left to do for app and bulk;
once the ledger record is gone the 10-day object moves too; a policy whose
bucket cannot be listed reports an error and changes nothing.

usage: test_retention_bucket.py RETENTION"""
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from lptest import Checks, s3_env, s3_list, s3_put, s3_put_empty, s3_request

RET = os.path.abspath(sys.argv[1])
BROKERS = "127.0.0.1:" + os.environ.get("KAFKA_PORT", "9092")
check = Checks()
ep, bucket, ak, sk = s3_env()
run_id = "%x" % int(time.time() * 1000)
live = f"rt-{run_id}/live/"
cold = f"rt-{run_id}/cold/"
tmp = tempfile.mkdtemp(prefix="lp-rt-bucket-")
audit = os.path.join(tmp, "audit.ndjson")
now = datetime.datetime.now(datetime.timezone.utc).replace(minute=0, second=0, microsecond=0)


def hour_path(days):
    t = now - datetime.timedelta(days=days)
    return t.strftime("%Y/%m/%d/%H")


def obj(route, days, part, first):
    return f"{route}/{hour_path(days)}/logs-{part}-{first:020d}.ndjson.zst"


def body(n, tag):
    return (tag * (n // len(tag) + 1))[:n].encode()


objects = {
    "a40": (live + obj("app", 40, 0, 0), body(100, "a40")),
    "a20": (live + obj("app", 20, 0, 100), body(300, "a20")),
    "a10": (live + obj("app", 10, 0, 200), body(100, "a10")),
    "a3": (live + obj("app", 3, 0, 300), body(100, "a3")),
    "readme": (live + "app/README", b"not ours, no hour: age from LastModified"),
    "c35": (cold + obj("app", 35, 1, 0), body(100, "c35")),
    "c25": (cold + obj("app", 25, 1, 100), body(100, "c25")),
    "cweb": (cold + obj("web", 90, 1, 0), body(100, "cweb")),
    "w10": (live + obj("web", 10, 2, 0), body(1000, "w10")),
    "w5": (live + obj("web", 5, 2, 100), body(1000, "w5")),
    "w1": (live + obj("web", 1, 2, 200), body(1000, "w1")),
    "other": (live + obj("other", 90, 3, 0), body(100, "other")),
}
ledger = live + "_logpipe/ledger/archive/logs/0/%020d-%020d.json" % (200, 300)
bulk = [live + obj("bulk", 3, 4, i * 10) for i in range(1100)]

for key, data in objects.values():
    s3_put(key, data)
s3_put(ledger, b'{"first":200,"end":300}')
s3_put_empty(bulk)

cfg = os.path.join(tmp, "logpipe.yaml")
with open(cfg, "w") as f:
    f.write(f"""kafka: {{brokers: "{BROKERS}", topic: logs}}
aggregator:
  group_id: rt-bucket-{run_id}   # never committed to: every ledger record stays open
  outputs:
    - name: archive
      type: s3
      endpoint: {ep}
      bucket: {bucket}
      path_style: true
      prefix: rt-{run_id}/live
      access_key_id: {ak}
      secret_access_key: {sk}
retention:
  audit_log: {audit}
  policies:
    - name: app-bucket
      output: archive
      routes: [app]
      archive_after: 7d
      archive_prefix: rt-{run_id}/cold
      delete_after: 30d
    - name: web-bucket
      output: archive
      routes: [web]
      archive_after: 2d
      archive_storage_class: STANDARD_IA
      max_total_bytes: 2500
    - name: bulk-bucket
      output: archive
      routes: [bulk]
      delete_after: 1d
metrics: {{enabled: false}}
""")


def run(*args):
    r = subprocess.run([RET, "-c", cfg, *args], capture_output=True, text=True, timeout=300)
    return r


def listing():
    return dict(s3_list(f"rt-{run_id}/"))


def content(key):
    st, b = s3_request("GET", key)
    return b if st == 200 else None


def short(target):
    """An action's target as a name of objects (or 'bulk')."""
    key = target.split("/", 3)[3]  # s3://bucket/key
    for name, (k, _) in objects.items():
        if k == key:
            return name
    if key in bulk:
        return "bulk"
    return key


def actions(report):
    out = {}
    for a in report["actions"]:
        name = short(a["target"])
        if name == "bulk":
            out["bulk"] = out.get("bulk", 0) + 1
            continue
        out[name] = (a["policy"], a["action"], a["result"], a.get("reason", "").split(";")[0])
    return out


before = listing()
check(len(before) == len(objects) + 1 + len(bulk), f"set-up: {len(before)} objects listed")

# ---- dry run: the plan, nothing changed ----
r = run("--dry-run", "--output", "json")
check(r.returncode == 0, f"dry run exit {r.returncode}: {r.stderr[-2000:]}")
rep = json.loads(r.stdout)
got = actions(rep)
want = {
    "a40": ("app-bucket", "delete", "planned", "delete_after 30d"),
    "a20": ("app-bucket", "archive", "planned", "archive_after 7d"),
    "a10": ("app-bucket", "archive", "skipped",
            "its batch may still be rewritten (open ledger record): not moved"),
    "c35": ("app-bucket", "delete", "planned", "delete_after 30d"),
    "w10": ("web-bucket", "delete", "planned", "max_total_bytes 2.4 KiB"),
    "w5": ("web-bucket", "archive", "planned", "archive_after 2d"),
    "bulk": len(bulk),
}
check(got == want, f"dry-run actions:\n  got  {got}\n  want {want}")
dest = [a.get("archive") for a in rep["actions"] if short(a["target"]) == "a20"]
check(dest == [f"s3://{bucket}/{cold}{objects['a20'][0][len(live):]}"], f"a20's archive: {dest}")
kinds = {p["name"]: p["kind"] for p in rep["policies"]}
check(kinds == {"app-bucket": "bucket", "web-bucket": "bucket", "bulk-bucket": "bucket"},
      f"summary kinds {kinds}")
check(listing() == before, "a dry run changed the bucket")
check(not os.path.exists(audit), "a dry run wrote the audit log")
t = run("--dry-run")
if os.environ.get("LP_SHOW"):
    print(t.stdout[:3000])
check(t.returncode == 0 and "app-bucket" in t.stdout and "bucket" in t.stdout,
      f"the table report: {t.stdout[:2000]}")

# ---- a run ----
r = run("--once", "--output", "json")
check(r.returncode == 0, f"run exit {r.returncode}: {r.stdout[-1500:]} {r.stderr[-2000:]}")
rep = json.loads(r.stdout) if r.stdout.strip() else {"actions": []}
done = {k: (v[:2] + ("ok" if v[2] == "planned" else v[2],) + v[3:]) if isinstance(v, tuple)
        else v for k, v in want.items()}
check(actions(rep) == done, f"run actions:\n  got  {actions(rep)}\n  want {done}")
after = listing()
gone = [n for n in ("a40", "a20", "c35", "w10") if objects[n][0] in after]
check(not gone, f"still there: {gone}")
kept = [n for n in ("a10", "a3", "readme", "c25", "cweb", "w5", "w1", "other")
        if content(objects[n][0]) != objects[n][1]]
check(not kept, f"changed or missing: {kept}")
moved = cold + objects["a20"][0][len(live):]
check(content(moved) == objects["a20"][1], "the archived object's bytes")
check(not [k for k in bulk if k in after], "bulk objects left")
check(ledger in after, "the ledger record was touched")
with open(audit) as f:
    lines = [json.loads(l) for l in f if l.strip()]
check(len(lines) == len(rep["actions"]) == 6 + len(bulk),
      f"audit lines {len(lines)}, actions {len(rep['actions'])}")
check(all(l["result"] in ("ok", "skipped") for l in lines), "audit results")
check(any(l.get("archive") == f"s3://{bucket}/{moved}" for l in lines), "audit names the archive")

# ---- again: nothing left for app and bulk (web repeats its class change:
# S3Proxy reports every object as STANDARD) ----
r = run("--once", "--output", "json")
check(r.returncode == 0, f"second run exit {r.returncode}")
again = {k: v for k, v in actions(json.loads(r.stdout)).items() if k not in ("w5",)}
check(again == {"a10": ("app-bucket", "archive", "skipped", want["a10"][3])},
      f"second run: {again}")

# ---- the batch committed (its ledger record pruned): now it moves ----
st, _ = s3_request("DELETE", ledger)
check(st in (200, 204), f"delete the ledger record: {st}")
r = run("--once", "--output", "json")
check(r.returncode == 0, f"third run exit {r.returncode}")
check(actions(json.loads(r.stdout)).get("a10") ==
      ("app-bucket", "archive", "ok", "archive_after 7d"), "a10 moved once committed")
check(content(cold + objects["a10"][0][len(live):]) == objects["a10"][1] and
      objects["a10"][0] not in listing(), "a10 in the archive prefix only")

# ---- a bucket that cannot be listed: an error, nothing done ----
with open(cfg) as f:
    text = f.read()
bad = os.path.join(tmp, "bad.yaml")
with open(bad, "w") as f:
    f.write(text.replace(f"secret_access_key: {sk}", "secret_access_key: wrong-secret"))
before = listing()
r = subprocess.run([RET, "-c", bad, "--once", "--output", "json"], capture_output=True,
                   text=True, timeout=300)
check(r.returncode == 1, f"wrong credentials: exit {r.returncode}")
errs = [a for a in json.loads(r.stdout)["actions"] if a["result"] == "error"]
check(len(errs) == 3 and all("cannot list" in a["reason"] for a in errs) and
      all("wrong-secret" not in json.dumps(a) for a in errs), f"errors: {errs}")
check(listing() == before, "a failed listing changed the bucket")

if check.failures:
    print(f"{len(check.failures)} of {check.count} checks failed (files in {tmp})")
    sys.exit(1)
print(f"bucket retention: {check.count} checks passed")
