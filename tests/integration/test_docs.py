#!/usr/bin/env python3
"""The doc test: runs every command in docs/ (and deploy/README.md).

Fenced blocks whose info string is `sh` are run, line by line, as written:
in a private mount namespace (unshare) where /etc and /var/lib are overlays,
so `/etc/logpipe/logpipe.yaml` is a test configuration (Kafka and OpenSearch
on loopback, state under /var/lib/logpipe) and nothing touches the machine.
A line that starts a logpipe daemon without a one-shot flag (--check-config,
--once, --dry-run, ...) must still be running after 3 s and exit 0 on
SIGTERM; every other line must exit 0. `sh requires-docker` and
`sh requires-kubernetes` blocks are listed, not run; `sh run-by=scripts/test`
blocks must appear in scripts/test (which runs them). Also checks that
docs/metrics.md lists every metric the code registers, and that relative
links between docs resolve.

usage: test_docs.py SOURCE_DIR BUILD_DIR"""
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from lptest import free_port, Checks

src, build = sys.argv[1], sys.argv[2]
check = Checks()
failures = check.failures
ran = skipped = 0



def blocks(path):
    text = open(path).read()
    for m in re.finditer(r"^```([^\n`]*)\n(.*?)^```\s*$", text, re.M | re.S):
        line = text.count("\n", 0, m.start()) + 1
        yield m.group(1).strip(), m.group(2), line



ONE_SHOT = ("--check-config", "--once", "--dry-run", "--help", "--version", "--config-reference",
            "--test")
DAEMONS = ("logpipe-shipper", "logpipe-aggregator", "logpipe-retention")


def commands(body):
    """Lines of a block joined over trailing backslashes, without comments."""
    out, cur = [], ""
    for raw in body.splitlines():
        line = raw.rstrip()
        if line.endswith("\\"):
            cur += line[:-1] + " "
            continue
        cur += line
        cur = re.sub(r"\s+#\s.*$", "", cur)  # a trailing comment
        if cur.strip() and not cur.strip().startswith("#"):
            out.append(cur.strip())
        cur = ""
    return out


# Kafka's command-line tools the docs use, as a Kafka distribution's bin/
# scripts run them (java on the tool's main class), from the jars of the
# Kafka that scripts/services runs
kafka_libs = subprocess.run([os.path.join(src, "scripts", "services"), "jars", "kafka"],
                            stdout=subprocess.PIPE, text=True, check=True).stdout.strip()
kafka_bin = tempfile.mkdtemp(prefix="lp-docs-kafka-bin-")
for tool, cls in (("kafka-consumer-groups.sh", "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand"),):
    with open(os.path.join(kafka_bin, tool), "w") as f:
        f.write('#!/bin/sh\nexec java -cp "%s/*" %s "$@"\n' % (kafka_libs, cls))
    os.chmod(os.path.join(kafka_bin, tool), 0o755)


def script_for(cmds, tmp, config):
    lines = [
        "set -euo pipefail",
        f"mkdir -p {tmp}/etc-up {tmp}/etc-work {tmp}/var-up {tmp}/var-work",
        f"mount -t overlay overlay -o lowerdir=/etc,upperdir={tmp}/etc-up,workdir={tmp}/etc-work /etc",
        f"mount -t overlay overlay -o lowerdir=/var/lib,upperdir={tmp}/var-up,workdir={tmp}/var-work /var/lib",
        "mkdir -p /etc/logpipe /var/lib/logpipe/logs",
        f"cp {config} /etc/logpipe/logpipe.yaml",
        f"cd {src}",
        f"export PATH={build}/shipper:{build}/aggregator:{build}/retention:{kafka_bin}:$PATH",
    ]
    for c in cmds:
        words = c.split()
        q = c.replace("'", "'\\''")
        lines.append(f"echo '+ {q}'")
        if words[0] in DAEMONS and not any(w in ONE_SHOT for w in words):
            lines += [f"{c} & pid=$!", "sleep 3",
                      "kill -0 $pid || { echo 'daemon exited early'; exit 1; }",
                      "kill -TERM $pid", "wait $pid"]
        else:
            lines.append(c)
    return "\n".join(lines) + "\n"


if subprocess.run(["unshare", "--mount", "--map-root-user", "true"], stderr=subprocess.DEVNULL).returncode != 0:
    print("FAIL: the doc test needs unprivileged user and mount namespaces (unshare --mount "
          "--map-root-user); enable them (sysctl kernel.unprivileged_userns_clone=1) or run as root")
    sys.exit(1)
tmp = tempfile.mkdtemp(prefix="lp-docs-")
port = free_port()
with open(os.path.join(tmp, "logpipe.yaml"), "w") as f:
    f.write(f"""# the doc test's /etc/logpipe/logpipe.yaml
kafka: {{brokers: "127.0.0.1:9092", topic: logpipe.doctest}}
shipper:
  state_dir: /var/lib/logpipe/state
  inputs: [{{paths: ["/var/lib/logpipe/logs/*.log"]}}]
aggregator:
  group_id: logpipe-doctest
  dead_letter_dir: /var/lib/logpipe/dead-letter
  outputs: [{{name: files, type: file, path: /var/lib/logpipe/segments}}]
retention:
  audit_log: /var/lib/logpipe/retention-audit.ndjson
  policies: [{{name: files, output: files, archive_after: 1d}}]
metrics: {{listen: "127.0.0.1:{port}"}}
""")

docs = sorted(glob.glob(os.path.join(src, "docs", "*.md"))) + [os.path.join(src, "deploy", "README.md")]
test_script = open(os.path.join(src, "scripts", "test")).read()
for d in docs:
    rel = os.path.relpath(d, src)
    for info, body, line in blocks(d):
        words = info.split()
        if not words or words[0] != "sh":
            continue
        cmds = commands(body)
        where = "%s:%d" % (rel, line)
        if "requires-docker" in words or "requires-kubernetes" in words:
            skipped += len(cmds)
            print("not run (%s): %s" % (words[1], where))
            continue
        if any(w.startswith("run-by=") for w in words):
            by = [w for w in words if w.startswith("run-by=")][0][7:]
            check(by == "scripts/test", "%s: run-by names scripts/test" % where)
            for c in cmds:
                check(c in test_script, "%s: scripts/test runs '%s'" % (where, c))
            ran += len(cmds)
            continue
        check(len(words) == 1, "%s: unknown block mark '%s'" % (where, info))
        sh = os.path.join(tmp, "block.sh")
        with open(sh, "w") as f:
            f.write(script_for(cmds, os.path.join(tmp, "ns%d" % ran), os.path.join(tmp, "logpipe.yaml")))
        r = subprocess.run(["unshare", "--mount", "--map-root-user", "bash", sh],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=180)
        out = r.stdout.decode(errors="replace")
        check(r.returncode == 0, "%s: block failed (exit %d):\n%s" % (where, r.returncode, out[-2000:]))
        print("ran %d command(s): %s" % (len(cmds), where), flush=True)
        ran += len(cmds)

# links between docs
for d in docs:
    for target in re.findall(r"\]\(([^)#:\s]+)(?:#[^)]*)?\)", open(d).read()):
        check(os.path.exists(os.path.normpath(os.path.join(os.path.dirname(d), target))),
              "%s: link %s resolves" % (os.path.relpath(d, src), target))

# every registered metric is documented
metrics_doc = open(os.path.join(src, "docs", "metrics.md")).read()
for f in glob.glob(os.path.join(src, "*", "*.c")):
    for name in re.findall(r'"(logpipe_[a-z0-9_%]+)"', open(f, errors="replace").read()):
        if name.endswith("_"):
            continue
        names = [name.replace("%s", d) for d in ("shipper", "aggregator", "retention")] if "%s" in name else [name]
        for n in names:
            check("`%s`" % n in metrics_doc, "docs/metrics.md lists %s" % n)

shutil.rmtree(tmp, ignore_errors=True)
print("docs: %d commands run (or run by scripts/test), %d marked for Docker/Kubernetes, %d failures"
      % (ran, skipped, len(failures)))
sys.exit(1 if failures else 0)
