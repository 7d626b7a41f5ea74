#!/usr/bin/env python3
"""The shipper's pod metadata against a real Kubernetes API server (issue 29,
items 6 and 11): Debian's etcd and a kube-apiserver built from the
k8s.io/kubernetes module (tests/support/kube_api.py, tests/infra/kube/build.sh),
no stand-in. The shipper logs in as deploy/k8s's logpipe-shipper service
account (its RBAC applied from deploy/k8s/serviceaccounts.yaml, a token from
the TokenRequest API), the real Kafka, aggregator and OpenSearch downstream.

1. The backlog waits for the first list (item 11): pods created through the
   API (web-0 with labels, quiet-0 annotated logpipe.io/exclude) have lines in
   their files before the shipper starts; every backlog line of web-0 carries
   its labels (none ships pending) and quiet-0's backlog is not shipped.
   A label added through the API (a merge patch) is on later lines.
2. The account may list pods and get Jobs, nothing else: reading secrets
   with its token is refused (403).
3. A tenant's large pods (item 6): 200 pods of ~1.2 MB each (250 KiB of
   annotations, 900 env entries) created through the API on the shipper's
   node; a fresh shipper's first list stays well below deploy/'s 256 MiB
   limit (peak RSS, VmHWM, printed: 111 MiB here) and caches them all.

usage: test_k8s_apiserver.py SHIPPER AGGREGATOR"""
import json
import os
import sys
import tempfile
import time
from datetime import datetime, timezone
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import yaml
from kube_api import KubeAPI
from lptest import spawn, Checks, free_port, http, metric_sum, stop_procs

SHIPPER, AGG = map(os.path.abspath, sys.argv[1:3])
REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BROKERS = "127.0.0.1:" + os.environ.get("KAFKA_PORT", "9092")
ES = "http://127.0.0.1:" + os.environ.get("OPENSEARCH_PORT", "9200")
check = Checks()
tmp = tempfile.mkdtemp(prefix="lp-kapi-")
logs = os.path.join(tmp, "log", "containers")
os.makedirs(logs)
run = "kapi%x" % int(time.time() * 1000)
api = KubeAPI(tmp)
procs = {}


def pod(name, ns, node, labels=None, annotations=None, env=None):
    ctr = {"name": "app", "image": "registry.example/app:1.0"}
    if env:
        ctr["env"] = env
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": ns, "labels": labels or {},
                         "annotations": annotations or {}},
            "spec": {"nodeName": node, "containers": [ctr], "restartPolicy": "Always"}}


def log_file(name, ns, i):
    return os.path.join(logs, f"{name}_{ns}_app-{i:064x}.log")


def write(path, lines):
    with open(path, "a") as f:
        for l in lines:
            ts = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            f.write(f"{ts} stdout F {l}\n")


def wait(cond, secs, what):
    deadline = time.time() + secs
    while time.time() < deadline:
        if cond():
            return True
        time.sleep(0.3)
    return check(False, f"{what} (after {secs} s)")


def docs(pod_name):
    http("POST", f"{ES}/{run}-*/_refresh")
    st, body = http("POST", f"{ES}/{run}-*/_search", json.dumps(
        {"size": 1000, "query": {"term": {"kubernetes.pod.name": pod_name}}}))
    return [h["_source"] for h in json.loads(body)["hits"]["hits"]] if st == 200 else []


def shipper_config(name, port, token_file):
    path = os.path.join(tmp, f"{name}.yaml")
    with open(path, "w") as f:
        f.write(f"""kafka: {{brokers: "{BROKERS}", topic: {run}}}
shipper:
  state_dir: {tmp}/{name}-state
  inputs: [{{paths: ["{logs}/*.log"]}}]
  batch_linger: 50ms
  kubernetes:
    enabled: true
    api_url: {api.url}
    token_file: {token_file}
    ca_file: {api.ca_file}
    node_name: node-a
    first_list_wait: 60s
    retry_initial: 100ms
    retry_max: 1s
metrics: {{listen: "127.0.0.1:{port}"}}
""")
    return path


def hwm_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for l in f:
            if l.startswith("VmHWM:"):
                return int(l.split()[1])
    return -1


try:
    # deploy/k8s's accounts and RBAC, applied through the API
    api.ensure_namespace("logpipe")
    paths = {"ServiceAccount": "/api/v1/namespaces/{ns}/serviceaccounts",
             "Role": "/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/roles",
             "ClusterRole": "/apis/rbac.authorization.k8s.io/v1/clusterroles",
             "ClusterRoleBinding": "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings"}
    with open(os.path.join(REPO, "deploy", "k8s", "serviceaccounts.yaml")) as f:
        for obj in yaml.safe_load_all(f):
            if not obj:
                continue
            st, body = api.request("POST", paths[obj["kind"]].format(
                ns=obj["metadata"].get("namespace", "")), obj)
            check(st == 201, f"apply {obj['kind']} {obj['metadata']['name']}: {st}")
    st, body = api.request("POST", "/api/v1/namespaces/logpipe/serviceaccounts/logpipe-shipper/token",
                           {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                            "spec": {"expirationSeconds": 3600}})
    check(st == 201, f"a token for logpipe-shipper: {st}")
    token_file = os.path.join(tmp, "token")
    with open(token_file, "w") as f:
        f.write(body["status"]["token"] + "\n")
    shipper_api = KubeAPI.__new__(KubeAPI)  # the same server, the shipper's token
    shipper_api.__dict__.update(api.__dict__)
    shipper_api.token = body["status"]["token"]
    st, _ = shipper_api.request("GET", "/api/v1/namespaces/logpipe/secrets")
    check(st == 403, f"the shipper's account cannot read secrets ({st})")
    st, _ = shipper_api.request("GET", "/api/v1/pods?fieldSelector=spec.nodeName%3Dnode-a&limit=1")
    check(st == 200, f"... and may list pods ({st})")

    # 1. the backlog of known pods waits for the first list
    for ns in ("shop", "ops"):
        api.ensure_namespace(ns)
    api.create_pod(pod("web-0", "shop", "node-a", labels={"app": "web", "tier": "front"}))
    api.create_pod(pod("quiet-0", "ops", "node-a", annotations={"logpipe.io/exclude": "true"}))
    api.create_pod(pod("far-0", "shop", "node-b", labels={"app": "far"}))
    write(log_file("web-0", "shop", 1), [f"web backlog {i}" for i in range(100)])
    write(log_file("quiet-0", "ops", 2), [f"quiet backlog {i}" for i in range(50)])
    ports = {"ship": free_port(), "agg": free_port(), "big": free_port()}
    with open(os.path.join(tmp, "agg.yaml"), "w") as f:
        f.write(f"""kafka: {{brokers: "{BROKERS}", topic: {run}}}
aggregator:
  group_id: {run}
  commit_interval: 200ms
  dead_letter_dir: {tmp}/dead-letter
  outputs:
    - {{name: search, type: elasticsearch, url: "{ES}", index: "{run}-%Y.%m.%d", flush_interval: 100ms}}
metrics: {{listen: "127.0.0.1:{ports['agg']}"}}
""")
    procs["agg"] = spawn([AGG, "-c", os.path.join(tmp, "agg.yaml")],
                                    stderr=open(os.path.join(tmp, "agg.log"), "wb"))
    procs["ship"] = spawn([SHIPPER, "-c", shipper_config("ship", ports["ship"], token_file)],
                                     stderr=open(os.path.join(tmp, "ship.log"), "wb"))
    wait(lambda: len(docs("web-0")) == 100, 90, "web-0's backlog indexed")
    web = docs("web-0")
    labelled = [d for d in web if d.get("kubernetes", {}).get("labels", {}).get("app") == "web"
                and d.get("logpipe", {}).get("metadata") != "pending"]
    check(len(labelled) == 100, f"every backlog line of web-0 has its labels ({len(labelled)} of "
          f"{len(web)}; {json.dumps(web[:1])[:300]})")
    check(metric_sum(ports["ship"], "logpipe_shipper_excluded_events_total") == 50 and
          not docs("quiet-0"), "quiet-0's backlog is excluded, not shipped")
    check(metric_sum(ports["ship"], "logpipe_shipper_k8s_pods") == 2,
          "the cache holds node-a's pods only (the field selector)")
    # a label added through the API reaches later lines
    st, _ = api.request("PATCH", "/api/v1/namespaces/shop/pods/web-0",
                        {"metadata": {"labels": {"release": "canary"}}},
                        content_type="application/merge-patch+json")
    check(st == 200, f"patch web-0's labels: {st}")
    time.sleep(2)
    write(log_file("web-0", "shop", 1), [f"web live {i}" for i in range(10)])
    wait(lambda: len(docs("web-0")) == 110, 60, "web-0's later lines indexed")
    canary = [d for d in docs("web-0") if d["message"].startswith("web live") and
              d.get("kubernetes", {}).get("labels", {}).get("release") == "canary"]
    check(len(canary) == 10, f"the new label is on every later line ({len(canary)})")

    # 3. a tenant's 200 pods of ~1.2 MB each
    api.ensure_namespace("big")
    big_ann = {f"tenant.example.com/blob-{k}": "x" * (50 * 1024) for k in range(5)}
    big_env = [{"name": f"ENV_{k:04d}", "value": "v" * 1000} for k in range(900)]
    t0 = time.time()
    for i in range(200):
        api.create_pod(pod(f"big-{i}", "big", "node-a", labels={"i": str(i)},
                           annotations=big_ann, env=big_env))
    st, body = api.request("GET", "/api/v1/namespaces/big/pods/big-0")
    size = len(json.dumps(body))
    print(f"200 pods of {size / 1e6:.2f} MB created in {time.time() - t0:.0f} s")
    check(size > 1_100_000, f"each pod is ~1.2 MB ({size} bytes)")
    procs["big"] = spawn([SHIPPER, "-c", shipper_config("big", ports["big"], token_file)],
                                    stderr=open(os.path.join(tmp, "big.log"), "wb"))
    wait(lambda: metric_sum(ports["big"], "logpipe_shipper_k8s_synced") == 1, 180,
         "the fresh shipper's first list completed")
    pods = metric_sum(ports["big"], "logpipe_shipper_k8s_pods")
    peak = hwm_kib(procs["big"].pid) / 1024
    print(f"first list of 202 pods (~{202 * size / 1e6:.0f} MB): shipper peak RSS {peak:.1f} MiB")
    check(pods == 202, f"the cache holds all 202 of node-a's pods ({pods})")
    check(0 < peak < 160, f"the first list's peak RSS stays well under deploy/'s 256 MiB "
          f"limit ({peak:.1f} MiB; 437 MiB with pages of 500)")
finally:
    stop_procs(procs)
    api.stop()

if check.failures:
    print(f"{len(check.failures)} of {check.count} checks failed (logs in {tmp})")
    sys.exit(1)
print(f"test_k8s_apiserver: {check.count} checks passed")
