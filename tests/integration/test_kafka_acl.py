#!/usr/bin/env python3
"""The production Kafka of deploy/ (SASL_SSL, ACLs) on a real broker.

Runs deploy/kafka/broker.sh (server.properties: PLAIN over TLS, users from a
file read by Kafka's FileConfigProvider, the StandardAuthorizer, no topic
auto-creation) with Kafka's jars from scripts/services, on loopback ports,
with secrets made by deploy/kafka/make-secrets.sh; creates the topic and the
ACLs with deploy/kafka/setup.sh; then runs the real shipper and aggregator
with deploy/logpipe.prod-kafka.yaml (only /run/secrets/ is pointed at the
test's directory) and checks:

  - every line shipped arrives in the aggregator's files, once;
  - the shipper's credentials can produce to the log topic only: consuming
    it, joining the aggregators' group, or producing to another topic fail;
  - the aggregator's credentials cannot produce to the log topic;
  - a wrong password and a client without TLS/SASL are refused;
  - --check-config prints the SASL password redacted.

usage: test_kafka_acl.py BUILD_DIR"""
import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from lptest import spawn, free_port, Checks, stop_procs

BUILD = os.path.abspath(sys.argv[1])
SRC = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
DEPLOY = os.path.join(SRC, "deploy")
check = Checks()
tmp = tempfile.mkdtemp(prefix="lp-acl-")
secrets = os.path.join(tmp, "secrets")
port, ctl_port = free_port(), free_port()
bootstrap = "127.0.0.1:%d" % port
libs = subprocess.run([os.path.join(SRC, "scripts", "services"), "jars", "kafka"], check=True,
                      stdout=subprocess.PIPE, timeout=600).stdout.decode().strip()
log4j = "-Dlog4j2.configurationFile=" + os.path.join(SRC, "tests", "infra", "kafka", "log4j2.properties")
env = dict(os.environ, SECRETS=secrets, DATA=os.path.join(tmp, "data"), WORK=os.path.join(tmp, "work"),
           PORT=str(port), CONTROLLER_PORT=str(ctl_port), LISTEN_HOST="127.0.0.1", ADVERTISED_HOST="127.0.0.1",
           KAFKA_LIBS=libs, KAFKA_JAVA_OPTS=log4j, JAVA_TOOL_OPTIONS=log4j)
subprocess.run([os.path.join(DEPLOY, "kafka", "make-secrets.sh"), secrets, "localhost", "IP:127.0.0.1"],
               check=True, timeout=60)
pw = {u: open(os.path.join(secrets, "kafka-%s-password" % u)).read() for u in ("admin", "shipper", "aggregator")}
procs = {}
procs["broker"] = spawn([os.path.join(DEPLOY, "kafka", "broker.sh")], env=env,
                                   stdout=open(os.path.join(tmp, "broker.log"), "wb"), stderr=subprocess.STDOUT)


def kcat(user, password, *args, stdin=None, timeout=30):
    """kcat as user over SASL_SSL; (exit code, stderr + stdout)."""
    cmd = ["kcat", "-b", bootstrap, "-X", "security.protocol=SASL_SSL", "-X", "sasl.mechanisms=PLAIN",
           "-X", "sasl.username=" + user, "-X", "sasl.password=" + password,
           "-X", "ssl.ca.location=" + os.path.join(secrets, "kafka-ca.pem")] + list(args)
    try:
        r = subprocess.run(cmd, input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        return -1, ((e.stderr or b"") + (e.stdout or b"")).decode(errors="replace")
    return r.returncode, (r.stderr + r.stdout).decode(errors="replace")


try:
    deadline = time.time() + 120
    ready = False
    while time.time() < deadline and procs["broker"].poll() is None:
        rc, out = kcat("admin", pw["admin"], "-L", "-m", "5", timeout=20)
        if rc == 0 and "1 brokers" in out:
            ready = True
            break
        time.sleep(1)
    if not check(ready, "the SASL_SSL broker of deploy/kafka/server.properties starts (log: %s)"
                 % os.path.join(tmp, "broker.log")):
        raise SystemExit(1)

    topic, group = "logpipe.acl-%d" % os.getpid(), "logpipe-aggregator-acl"
    r = subprocess.run([os.path.join(DEPLOY, "kafka", "setup.sh")], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       env=dict(env, BOOTSTRAP=bootstrap, TOPIC=topic, GROUP=group, PARTITIONS="4"), timeout=180)
    check(r.returncode == 0, "deploy/kafka/setup.sh creates the topic and the ACLs: %s" % r.stdout.decode()[-500:])

    # the daemons, with the production overlay as shipped (only /run/secrets/ moved)
    overlay = open(os.path.join(DEPLOY, "logpipe.prod-kafka.yaml")).read()
    logs = os.path.join(tmp, "log")
    os.makedirs(logs)
    lines = ["2026-12-02T10:00:00.000000000Z stdout F acl line %d" % i for i in range(1000)]
    open(os.path.join(logs, "acl_prod_app-%064x.log" % 1), "w").write("\n".join(lines) + "\n")
    base = os.path.join(tmp, "logpipe.yaml")
    open(base, "w").write(f"""kafka: {{brokers: "{bootstrap}", topic: {topic}}}
shipper:
  state_dir: {tmp}/state
  inputs: [{{paths: ["{logs}/*.log"]}}]
  batch_linger: 50ms
aggregator:
  group_id: {group}
  dead_letter_dir: {tmp}/dead-letter
  default_route: {{outputs: [files]}}
  outputs: [{{name: files, type: file, path: {tmp}/segments, max_segment_age: 1s}}]
""")
    metrics = {}
    for d in ("shipper", "aggregator"):
        run = os.path.join(tmp, "run-" + d)
        os.makedirs(run)
        shutil.copy(os.path.join(secrets, "kafka-%s-password" % d), os.path.join(run, "kafka-password"))
        shutil.copy(os.path.join(secrets, "kafka-ca.pem"), os.path.join(run, "kafka-ca.pem"))
        ov = os.path.join(tmp, "prod-kafka-%s.yaml" % d)
        open(ov, "w").write(overlay.replace("/run/secrets/", run + "/"))
        metrics[d] = free_port()
        m = os.path.join(tmp, "metrics-%s.yaml" % d)
        open(m, "w").write('metrics: {listen: "127.0.0.1:%d"}\n' % metrics[d])
        args = [os.path.join(BUILD, d, "logpipe-" + d), "-c", base, "-c", ov, "-c", m]
        denv = dict(os.environ, KAFKA_USERNAME=d)
        if d == "shipper":
            r = subprocess.run(args + ["--check-config"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               env=denv, timeout=30)
            out = r.stdout.decode()
            check(r.returncode == 0 and "sasl.password" in out and pw["shipper"] not in out and "<redacted>" in out,
                  "--check-config with the overlay redacts the SASL password (exit %d)" % r.returncode)
        procs[d] = spawn(args, env=denv, stderr=open(os.path.join(tmp, d + ".log"), "wb"))

    def offsets():
        out = []
        for p in glob.glob(os.path.join(tmp, "segments", "**", "*.ndjson*"), recursive=True):
            with open(p, "rb") as f:
                out += [json.loads(l)["log"]["offset"] for l in f if l.endswith(b"\n")]
        return out

    deadline = time.time() + 90
    while time.time() < deadline and len(offsets()) < len(lines):
        time.sleep(0.5)
    time.sleep(1)
    got = offsets()
    check(len(got) == len(lines) and len(set(got)) == len(lines),
          "every line through SASL_SSL arrives once: %d of %d (%d distinct)" % (len(got), len(lines), len(set(got))))

    # what each credential may not do
    rc, out = kcat("shipper", pw["shipper"], "-C", "-t", topic, "-o", "beginning", "-e", "-c", "1")
    check("authorization failed" in out.lower() and "acl line" not in out,
          "the shipper cannot read the log topic (%s)" % out.strip()[-200:])
    rc, out = kcat("shipper", pw["shipper"], "-G", group, topic, "-o", "beginning", "-e", "-c", "1", timeout=20)
    check("authorization failed" in out.lower() and "acl line" not in out,
          "the shipper cannot join the aggregators' group (%s)" % out.strip()[-200:])
    rc, out = kcat("shipper", pw["shipper"], "-P", "-t", topic + "-other", stdin=b"x\n")
    check(rc != 0 and "authorization failed" in out.lower(),
          "the shipper cannot produce to (or create) another topic (%s)" % out.strip()[-200:])
    rc, out = kcat("aggregator", pw["aggregator"], "-P", "-t", topic, stdin=b"forged\n")
    check(rc != 0 and "authorization failed" in out.lower(),
          "the aggregator cannot produce to the log topic (%s)" % out.strip()[-200:])
    rc, out = kcat("shipper", "wrong-" + pw["shipper"], "-L", "-m", "5", timeout=20)
    check(rc != 0 and "authentication failed" in out.lower(), "a wrong password is refused (%s)" % out.strip()[-200:])
    try:
        r = subprocess.run(["kcat", "-b", bootstrap, "-L", "-m", "5"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=20)
        plain_ok = r.returncode == 0
    except subprocess.TimeoutExpired:
        plain_ok = False
    check(not plain_ok, "a client without TLS and SASL gets nothing")
    time.sleep(2)
    check(len(offsets()) == len(lines), "nothing else reached the files (%d)" % len(offsets()))
finally:
    rcs = {}
    for d in ("shipper", "aggregator"):
        if d in procs:
            procs[d].send_signal(signal.SIGTERM)
            rcs[d] = procs[d].wait(timeout=120)
    stop_procs(procs)
for d, rc in rcs.items():
    check(rc == 0, "%s exits 0 on SIGTERM" % d)

print("kafka acl: %d checks, %d failed" % (check.count, len(check.failures)))
if check.failures:
    print("kept:", tmp)
    sys.exit(1)
shutil.rmtree(tmp)
