#!/usr/bin/env python3
"""deploy/ against a real kube-apiserver (#28; tests/infra/kube, no kubelet,
so pods are stored but never run): what a platform team does on day one.

  - `kubectl apply -k deploy/k8s` creates every object of the reference
    manifests;
  - `helm install` of two releases side by side with the default values
    (each its own cluster-scoped PriorityClass and ClusterRole, no
    collision) and a third with ci/external-values.yaml (SASL_SSL Kafka,
    external OpenSearch, S3 archive, NetworkPolicy, Prometheus Operator
    objects: their CRDs stand in here, schemaless);
  - `helm upgrade` with a changed configuration rolls the pods' templates
    (checksum/config changes, the workloads' generation moves); an upgrade
    with a wrong value is refused by values.schema.json and the release
    stays where it was;
  - the service accounts' rights, by `kubectl auth can-i --as=...`: the
    shipper may get/list/watch pods and get jobs, nothing else; the
    aggregator may do nothing;
  - `helm uninstall` of one release leaves the other's objects.

usage: test_helm_apiserver.py"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from kube_api import KubeAPI
from lptest import Checks

SRC = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
TOOLS = os.environ.get("LP_TOOLS_DIR", os.path.join(SRC, ".run", "tools"))
CHART = os.path.join(SRC, "deploy", "helm", "logpipe")
check = Checks()
tmp = tempfile.mkdtemp(prefix="lp-helm-api-")
for tool in ("helm", "kubectl"):
    if not os.access(os.path.join(TOOLS, "bin", tool), os.X_OK):
        sys.exit(f"needs {TOOLS}/bin/{tool} (scripts/check-deploy, tests/infra/kube/build.sh)")
api = KubeAPI(tmp)
env = dict(os.environ, KUBECONFIG=api.kubeconfig(os.path.join(tmp, "kubeconfig")),
           HELM_CACHE_HOME=os.path.join(tmp, "helm-cache"), HELM_CONFIG_HOME=os.path.join(tmp, "helm-config"),
           HELM_DATA_HOME=os.path.join(tmp, "helm-data"))


def run(tool, *args):
    r = subprocess.run([os.path.join(TOOLS, "bin", tool)] + list(args), env=env, capture_output=True,
                       text=True, timeout=180)
    return r.returncode, r.stdout + r.stderr


def get(path):
    st, body = api.request("GET", path)
    return body if st == 200 else None


def can_i(sa, verb, resource, ns):
    r = subprocess.run([os.path.join(TOOLS, "bin", "kubectl"), "auth", "can-i", verb, resource,
                        "-n", ns, "--as", f"system:serviceaccount:{sa}"],
                       env=env, capture_output=True, text=True, timeout=60)
    return r.stdout.strip() or "?"  # stderr: warnings (a cluster-scoped resource)


try:
    # the Prometheus Operator's CRDs, schemaless (only the API types matter here)
    for kind, plural in (("ServiceMonitor", "servicemonitors"), ("PrometheusRule", "prometheusrules")):
        api.request("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", {
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{plural}.monitoring.coreos.com"},
            "spec": {"group": "monitoring.coreos.com", "scope": "Namespaced",
                     "names": {"kind": kind, "plural": plural, "singular": kind.lower(),
                               "listKind": kind + "List"},
                     "versions": [{"name": "v1", "served": True, "storage": True,
                                   "schema": {"openAPIV3Schema": {
                                       "type": "object", "x-kubernetes-preserve-unknown-fields": True}}}]}})
    for _ in range(60):
        if get("/apis/monitoring.coreos.com/v1") is not None:
            break
        import time
        time.sleep(0.5)

    rc, out = run("kubectl", "apply", "-k", os.path.join(SRC, "deploy", "k8s"))
    check(rc == 0, "kubectl apply -k deploy/k8s: %s" % out[-600:])
    check(get("/apis/apps/v1/namespaces/logpipe/daemonsets/logpipe-shipper") is not None,
          "the kustomize render's shipper DaemonSet is stored")

    installs = (("a", "team-a", []), ("b", "team-b", []),
                ("ext", "platform", ["-f", os.path.join(CHART, "ci", "external-values.yaml")]))
    for rel, ns, extra in installs:
        rc, out = run("helm", "install", rel, CHART, "-n", ns, "--create-namespace", *extra)
        check(rc == 0, f"helm install {rel} -n {ns} {' '.join(extra)}: {out[-600:]}")
    for rel in ("a", "b"):
        check(get(f"/apis/scheduling.k8s.io/v1/priorityclasses/{rel}-logpipe-node-critical") is not None,
              f"release {rel} has its own PriorityClass")
        check(get(f"/apis/rbac.authorization.k8s.io/v1/clusterroles/{rel}-logpipe-shipper-pods") is not None,
              f"release {rel} has its own ClusterRole")
    check(get("/apis/apps/v1/namespaces/platform/deployments/logs-aggregator") is not None and
          get("/apis/monitoring.coreos.com/v1/namespaces/platform/servicemonitors/logs") is not None and
          get("/apis/networking.k8s.io/v1/namespaces/platform/networkpolicies/logs") is not None,
          "the external-values release has its Deployment, ServiceMonitor and NetworkPolicy")

    # an upgrade with a changed configuration rolls the pods
    ds = "/apis/apps/v1/namespaces/team-a/daemonsets/a-logpipe-shipper"
    sts = "/apis/apps/v1/namespaces/team-a/statefulsets/a-logpipe-aggregator"
    before = get(ds)
    sts_before = get(sts)
    rc, out = run("helm", "upgrade", "a", CHART, "-n", "team-a", "--reuse-values",
                  "--set", "opensearch.index=logs-%Y.%m.%d")
    check(rc == 0, "helm upgrade a with another index: %s" % out[-400:])
    after = get(ds)
    sts_after = get(sts)
    ann = lambda o: o["spec"]["template"]["metadata"]["annotations"].get("checksum/config")
    check(before and after and ann(before) != ann(after) and
          after["metadata"]["generation"] > before["metadata"]["generation"],
          "the shipper's pod template rolls (checksum/config %s -> %s)"
          % (before and ann(before), after and ann(after)))
    check(sts_before and sts_after and ann(sts_before) != ann(sts_after),
          "and the aggregators' template too")
    cm = get("/api/v1/namespaces/team-a/configmaps/a-logpipe")
    check(cm and 'index: "logs-%Y.%m.%d"' in cm["data"]["pipeline.yaml"], "the new configuration is stored")

    rc, out = run("helm", "upgrade", "a", CHART, "-n", "team-a", "--reuse-values",
                  "--set", "aggregator.autoscaling.enabeld=false")
    check(rc != 0 and "enabeld" in out, "an upgrade with an unknown key is refused: %s" % out[-300:])
    rc, out = run("helm", "history", "a", "-n", "team-a", "-o", "json")
    hist = json.loads(out) if rc == 0 else []
    check(len(hist) == 2 and hist[-1]["status"] == "deployed",
          "and the release stays at revision 2: %s" % [(h["revision"], h["status"]) for h in hist])

    # the service accounts' rights
    sh, ag = "team-a:a-logpipe-shipper", "team-a:a-logpipe-aggregator"
    for verb, res in (("get", "pods"), ("list", "pods"), ("watch", "pods"), ("get", "jobs.batch")):
        check(can_i(sh, verb, res, "default") == "yes", f"the shipper may {verb} {res} (any namespace)")
    for verb, res in (("create", "pods"), ("delete", "pods"), ("get", "secrets"), ("list", "secrets"),
                      ("get", "configmaps"), ("list", "nodes"), ("list", "replicasets.apps"),
                      ("create", "pods/exec")):
        check(can_i(sh, verb, res, "team-a") == "no", f"the shipper may not {verb} {res}")
    for verb, res in (("get", "pods"), ("get", "secrets"), ("list", "configmaps"), ("create", "events")):
        check(can_i(ag, verb, res, "team-a") == "no", f"the aggregator may not {verb} {res}")
    check(can_i("team-b:b-logpipe-shipper", "list", "pods", "default") == "yes",
          "release b's shipper has its own binding")

    rc, out = run("helm", "uninstall", "b", "-n", "team-b")
    check(rc == 0, "helm uninstall b: %s" % out[-300:])
    check(get("/apis/scheduling.k8s.io/v1/priorityclasses/b-logpipe-node-critical") is None and
          get("/apis/scheduling.k8s.io/v1/priorityclasses/a-logpipe-node-critical") is not None and
          can_i(sh, "list", "pods", "default") == "yes",
          "uninstalling b removes its cluster objects and leaves a's")
finally:
    api.stop()
if check.failures:
    print("%d of %d checks failed (logs in %s)" % (len(check.failures), check.count, tmp))
    sys.exit(1)
shutil.rmtree(tmp, ignore_errors=True)
print("test_helm_apiserver: %d checks passed" % check.count)
