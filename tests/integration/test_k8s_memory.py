"""A tenant's large pods against the node's shipper (#29): 200 pods of
~1.2 MB each (annotations and env entries, what the API allows one pod) on
the shipper's node, served by the stand-in API server. The shipper's first
list must complete with every pod cached and its peak RSS well under the
256 MiB memory limit deploy/ gives it (pages of 500 took it to 541 MiB, an
OOM-kill and a relist at every restart), and it must give the pages' memory
back once synced. No Kafka or OpenSearch is needed (the shipper has no files
to ship). Not run on the ThreadSanitizer build (its shadow memory is not
ours).

usage: test_k8s_memory.py SHIPPER"""
import os
import shutil
import sys
import tempfile
import time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from lptest import spawn, free_port, metric_sum, Checks
from k8s_standin import StandIn, pod

SHIPPER = os.path.abspath(sys.argv[1])
check = Checks()
tmp = tempfile.mkdtemp(prefix="lp-k8s-mem-")
api = StandIn("mem-token")
for i in range(200):
    p = pod(f"big-{i}", "tenant", "node-a", labels={"app": "big"},
            annotations={f"tenant.example.com/blob-{k}": "x" * 1000 for k in range(600)})
    p["spec"]["containers"][0]["env"] = [{"name": f"ENV_{k}", "value": "y" * 900} for k in range(600)]
    api.add(p)
with open(os.path.join(tmp, "token"), "w") as f:
    f.write("mem-token\n")
port = free_port()
os.makedirs(os.path.join(tmp, "logs"))
with open(os.path.join(tmp, "shipper.yaml"), "w") as f:
    f.write(f"""kafka: {{brokers: "127.0.0.1:1", topic: mem}}
shipper:
  state_dir: {tmp}/state
  inputs: [{{paths: ["{tmp}/logs/*.log"]}}]
  kubernetes: {{enabled: true, api_url: "{api.url}", token_file: {tmp}/token, ca_file: "", node_name: node-a, request_timeout: 120s}}
metrics: {{listen: 127.0.0.1:{port}}}
log: {{level: warn}}
""")
proc = spawn([SHIPPER, "-c", os.path.join(tmp, "shipper.yaml")],
                        stderr=open(os.path.join(tmp, "shipper.log"), "wb"))


def status(key):
    with open(f"/proc/{proc.pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024  # MiB
    return -1


deadline = time.time() + 120
while time.time() < deadline and metric_sum(port, "logpipe_shipper_k8s_synced") != 1:
    time.sleep(0.2)
check(metric_sum(port, "logpipe_shipper_k8s_synced") == 1, "the first list of 200 large pods completed")
time.sleep(1)
pods = metric_sum(port, "logpipe_shipper_k8s_pods")
hwm, rss = status("VmHWM"), status("VmRSS")
check(pods == 200, f"every pod cached ({pods})")
check(0 < hwm < 160, f"peak RSS {hwm:.1f} MiB, under 160 MiB (the limit is 256 MiB)")
check(0 < rss < 48, f"RSS once synced {rss:.1f} MiB: the pages' memory went back")
lists = [r for r in api.requests if r[0] == "/api/v1/pods" and "watch" not in r[1]]
check(len(lists) == 8, f"the list came in pages of 25 ({len(lists)} pages)")
proc.terminate()
proc.wait(timeout=30)
api.stop()
print(f"k8s memory: 200 pods of ~1.2 MB, peak RSS {hwm:.1f} MiB, synced {rss:.1f} MiB, {len(lists)} pages")
print(f"{check.count} checks, {len(check.failures)} failed")
if check.failures:
    print("kept:", tmp)
    sys.exit(1)
shutil.rmtree(tmp)
