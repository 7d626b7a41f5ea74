#!/usr/bin/env python3
"""kafka.create_topics (#28: nothing created the topics on Kubernetes): the
real aggregator against the test Kafka (auto-creation off or not, it asks
the admin API itself) creates the log topic with topic_partitions and the
dead-letter topic with one partition before it subscribes; a second start
finds them and changes nothing; a replication factor the cluster cannot
give is refused, logged, and the aggregator still runs.

usage: test_kafka_topics.py AGGREGATOR"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from lptest import spawn, Checks, free_port, stop_procs

AGG = os.path.abspath(sys.argv[1])
BROKERS = "127.0.0.1:" + os.environ.get("KAFKA_PORT", "9092")
check = Checks()
tmp = tempfile.mkdtemp(prefix="lp-topics-")
run = "lp-topics-%x" % int(time.time() * 1000)


def partitions(topic):
    """Partition count of topic from the broker's metadata (kcat -L -J), 0 if absent."""
    r = subprocess.run(["kcat", "-b", BROKERS, "-L", "-J"], capture_output=True,  # no -t: would create it
                       timeout=30)
    try:
        for t in json.loads(r.stdout)["topics"]:
            if t["topic"] == topic and not t.get("error"):
                return len(t["partitions"])
    except (ValueError, KeyError):
        pass
    return 0


def start(name, topic, dlt, rf):
    path = os.path.join(tmp, name + ".yaml")
    with open(path, "w") as f:
        f.write(f"""kafka:
  brokers: "{BROKERS}"
  topic: {topic}
  create_topics: true
  topic_partitions: 3
  topic_replication_factor: {rf}
aggregator:
  group_id: {run}
  dead_letter_dir: {tmp}/dlq
  dead_letter_topic: {dlt}
  outputs: [{{name: out, type: file, path: {tmp}/out}}]
  default_route: {{outputs: [out]}}
metrics:
  listen: "127.0.0.1:{free_port()}"
""")
    log = os.path.join(tmp, name + ".log")
    return spawn([AGG, "-c", path], stderr=open(log, "wb")), log


def wait(cond, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return True
        time.sleep(0.3)
    return False


topic, dlt = run, run + ".dead-letter"
check(partitions(topic) == 0 and partitions(dlt) == 0, "the topics do not exist before")
p, log = start("first", topic, dlt, 1)
try:
    check(wait(lambda: partitions(topic) == 3 and partitions(dlt) == 1),
          "the aggregator creates the log topic with 3 partitions and the dead-letter topic with 1 "
          "(%d, %d)" % (partitions(topic), partitions(dlt)))
    check(wait(lambda: "topic created" in open(log).read()), "and logs it")
finally:
    stop_procs({"aggregator": p})
p, log = start("second", topic, dlt, 1)
try:
    time.sleep(3)
    text = open(log).read()
    check(p.poll() is None and "topic created" not in text and "cannot create" not in text,
          "a second start finds them: nothing created, nothing refused")
finally:
    stop_procs({"aggregator": p})
bad = run + "-rf"
p, log = start("refused", bad, "", 9)
try:
    check(wait(lambda: "cannot create topic" in open(log).read()),
          "replication factor 9 on this cluster is refused and logged")
    time.sleep(1)
    check(p.poll() is None, "and the aggregator keeps running")
finally:
    stop_procs({"aggregator": p})
if check.failures:
    print("%d of %d checks failed (logs in %s)" % (len(check.failures), check.count, tmp))
    sys.exit(1)
shutil.rmtree(tmp, ignore_errors=True)
print("test_kafka_topics: %d checks passed" % check.count)
