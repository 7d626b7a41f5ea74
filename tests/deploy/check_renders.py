#!/usr/bin/env python3
"""Checks of rendered manifests that no schema makes (scripts/check-deploy):

  - least privilege: no container adds a capability or may escalate; every
    one drops ALL, has a read-only root and RuntimeDefault seccomp; only the
    shipper runs as uid 0 or mounts a hostPath, and its hostPaths are the
    log directories, read-only, plus its one writable state directory;
  - (chart renders) every cluster-scoped object's name starts with the
    release's fullname; every workload's pod template carries
    checksum/config;
  - (chart renders) the rendered configuration passes each daemon's own
    --check-config, files and secrets laid out as the pods mount them.

usage: check_renders.py BUILD_DIR KIND:LABEL:FILE [KIND:LABEL:FILE...]
       KIND: helm (with FULLNAME after a second colon: helm=logs) or kustomize"""
import os
import re
import subprocess
import sys
import tempfile
import yaml

BUILD = sys.argv[1]
LOG_DIRS = ("/var/log/containers", "/var/log/pods", "/var/lib/docker/containers")
failures = []
count = 0


def check(cond, what):
    global count
    count += 1
    if not cond:
        failures.append(what)
        print("FAIL:", what)


def pod_specs(doc):
    k = doc["kind"]
    if k == "Pod":
        return doc["spec"]
    if k in ("DaemonSet", "StatefulSet", "Deployment", "Job"):
        return doc["spec"]["template"]["spec"]
    return None


def is_shipper(doc):
    labels = doc["metadata"].get("labels", {})
    return labels.get("app.kubernetes.io/component") == "shipper" or \
        labels.get("app.kubernetes.io/name") == "logpipe-shipper"


def privileges(label, doc):
    spec = pod_specs(doc)
    name = "%s %s/%s" % (label, doc["kind"], doc["metadata"]["name"])
    pod_seccomp = (spec.get("securityContext") or {}).get("seccompProfile", {}).get("type")
    host = {v["name"]: v["hostPath"]["path"] for v in spec.get("volumes", []) if "hostPath" in v}
    for c in spec.get("containers", []) + spec.get("initContainers", []):
        sc = c.get("securityContext") or {}
        cn = "%s container %s" % (name, c["name"])
        caps = sc.get("capabilities") or {}
        check(not caps.get("add"), "%s adds no capability (%s)" % (cn, caps.get("add")))
        check("ALL" in (caps.get("drop") or []), "%s drops ALL capabilities" % cn)
        check(sc.get("allowPrivilegeEscalation") is False and not sc.get("privileged"),
              "%s cannot escalate" % cn)
        check(sc.get("readOnlyRootFilesystem") is True, "%s has a read-only root" % cn)
        check((sc.get("seccompProfile") or {}).get("type", pod_seccomp) == "RuntimeDefault",
              "%s runs under the RuntimeDefault seccomp profile" % cn)
        if not is_shipper(doc):
            check(sc.get("runAsUser", (spec.get("securityContext") or {}).get("runAsUser")) != 0,
                  "%s does not run as uid 0" % cn)
        writable = []
        for m in c.get("volumeMounts", []):
            if m["name"] not in host:
                continue
            path = host[m["name"]]
            if m.get("readOnly"):
                check(path.rstrip("/") in LOG_DIRS, "%s mounts hostPath %s: a log directory" % (cn, path))
            else:
                writable.append(path)
        check(len(writable) <= 1 and all("logpipe" in p for p in writable),
              "%s: at most one writable hostPath, its state directory (%s)" % (cn, writable))
    if not is_shipper(doc):
        check(not host, "%s mounts no hostPath (%s)" % (name, list(host.values())))


def check_config(label, cm, work):
    """Each daemon's --check-config on the ConfigMap's files, secrets faked."""
    d = os.path.join(work, label)
    secrets = os.path.join(d, "secrets")
    os.makedirs(secrets)
    files = []
    for fname in ("logpipe.yaml", "pipeline.yaml", "extra.yaml"):
        if fname not in cm["data"]:
            continue
        text = cm["data"][fname].replace("/run/secrets/logpipe/", secrets + "/")
        text = text.replace("/var/lib/logpipe-shipper", os.path.join(d, "shipper-state"))
        text = text.replace("/var/lib/logpipe", os.path.join(d, "data"))
        for ref in re.findall(r"\$\{file:([^}]+)\}", text):
            os.makedirs(os.path.dirname(ref), exist_ok=True)
            with open(ref, "w") as f:
                f.write("secret-for-check\n")
        p = os.path.join(d, fname)
        with open(p, "w") as f:
            f.write(text)
        files += ["-c", p]
    for daemon, sub in (("shipper", "shipper"), ("aggregator", "aggregator"), ("retention", "retention")):
        exe = os.path.join(BUILD, sub, "logpipe-" + daemon)
        r = subprocess.run([exe] + files + ["--check-config"], capture_output=True, text=True,
                           timeout=60, env=dict(os.environ, NODE_NAME="node-1"))
        check(r.returncode == 0, "%s: logpipe-%s --check-config on the rendered configuration: %s"
              % (label, daemon, (r.stdout + r.stderr)[-800:]))


work = tempfile.mkdtemp(prefix="lp-renders-")
for arg in sys.argv[2:]:
    kind, label, path = arg.split(":", 2)
    docs = [d for d in yaml.safe_load_all(open(path)) if d]
    fullname = kind.split("=", 1)[1] if "=" in kind else None
    for doc in docs:
        if pod_specs(doc) is not None:
            privileges(label, doc)
            if fullname and doc["kind"] not in ("Pod", "Job"):  # the helm test: no rollout
                ann = doc["spec"]["template"]["metadata"].get("annotations") or {}
                check("checksum/config" in ann, "%s %s/%s rolls on a config change (checksum/config)"
                      % (label, doc["kind"], doc["metadata"]["name"]))
        if fullname and doc["kind"] in ("PriorityClass", "ClusterRole", "ClusterRoleBinding"):
            check(doc["metadata"]["name"].startswith(fullname + "-"),
                  "%s %s %s carries the release's name" % (label, doc["kind"], doc["metadata"]["name"]))
    if fullname:
        cms = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == fullname]
        check(len(cms) == 1, "%s: one ConfigMap %s" % (label, fullname))
        if cms:
            check_config(label, cms[0], work)
subprocess.run(["rm", "-rf", work])
if failures:
    sys.exit("check_renders: %d of %d checks failed" % (len(failures), count))
print("check_renders: %d checks passed over %d renders" % (count, len(sys.argv) - 2))
