#!/usr/bin/env python3
"""Checks deploy/ without Docker or Kubernetes: every file parses; what the
files reference exists (build contexts, Dockerfile stages and COPY sources,
Debian packages, bind-mounted files, volumes, networks, ConfigMaps,
Secrets, PVCs, service accounts, probe ports, kustomization resources); the
metrics port of each daemon matches its configuration; every logpipe metric
named by the alert rules and the Grafana dashboard is one the code
registers; and the configuration embedded in the image, the Compose files
and the Kubernetes ConfigMap passes each daemon's --check-config.

usage: test_deploy.py SOURCE_DIR SHIPPER AGGREGATOR RETENTION"""
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import yaml
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from lptest import Checks

src, SHIP, AGG, RET = sys.argv[1:5]
BIN = {"logpipe-shipper": SHIP, "logpipe-aggregator": AGG, "logpipe-retention": RET}
deploy = os.path.join(src, "deploy")
check = Checks()
failures = check.failures



def load_all(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


work = tempfile.mkdtemp(prefix="lp-deploy-")


def check_config(daemon, files, env, what, secrets_dirs=()):
    """--check-config with files (host paths); ${file:} paths under
    secrets_dirs are pointed at dummy files."""
    args = [BIN[daemon], "--check-config"]
    for i, f in enumerate(files):
        text = open(f).read()
        for d in secrets_dirs:
            fake = os.path.join(work, "secrets", d.strip("/").replace("/", "_"))
            os.makedirs(fake, exist_ok=True)
            for name in re.findall(re.escape(d.rstrip("/")) + r"/([A-Za-z0-9_.-]+)", text):
                with open(os.path.join(fake, name), "w") as s:
                    s.write("dummy\n")
            text = text.replace(d.rstrip("/") + "/", fake + "/")
        p = os.path.join(work, "%s-%d.yaml" % (daemon, i))
        with open(p, "w") as o:
            o.write(text)
        args += ["-c", p]
    r = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env}, timeout=30)
    check(r.returncode == 0, "%s: %s --check-config: %s" % (what, daemon, r.stderr.decode()[-600:]))
    return yaml.safe_load(r.stdout) if r.returncode == 0 else None


def listen_port(cfg):
    return int(cfg["metrics"]["listen"].rsplit(":", 1)[1]) if cfg else None


# ---- the code's metric names ----
code_metrics = set()
patterns = []
for f in glob.glob(os.path.join(src, "*", "*.c")):
    text = open(f, errors="replace").read()
    code_metrics |= set(re.findall(r'"(logpipe_[a-z0-9_]+)"', text))
    patterns += [re.compile("^" + p.replace("%s", "[a-z]+") + "$")
                 for p in re.findall(r'"(logpipe_[a-z0-9_]*%s[a-z0-9_]*)"', text)]


def metric_known(name):
    base = re.sub(r"_(bucket|sum|count)$", "", name)
    return any(n in code_metrics or any(p.match(n) for p in patterns) for n in (name, base))


# ---- Dockerfile ----
dockerfile = open(os.path.join(deploy, "Dockerfile")).read()
stages = re.findall(r"^FROM\s+\S+\s+AS\s+(\S+)", dockerfile, re.M | re.I)
check(stages == ["build", "runtime"], "Dockerfile stages build, runtime: %s" % stages)
for m in re.finditer(r"^COPY\s+(?!--from)(.+)$", dockerfile, re.M):
    parts = m.group(1).split()
    for s in parts[:-1]:
        check(os.path.exists(os.path.join(src, s)), "Dockerfile COPY source exists: " + s)
runtime = dockerfile[dockerfile.index("AS runtime"):]
check(re.search(r"^USER\s+10001", runtime, re.M) is not None, "runtime stage runs as non-root")
check("build-essential" not in runtime and "cmake" not in runtime, "no compiler in the runtime stage")
expose = re.search(r"^EXPOSE\s+(\d+)", runtime, re.M).group(1)
check(re.search(r"HEALTHCHECK.*127\.0\.0\.1:%s/healthz" % expose, runtime, re.S) is not None,
      "HEALTHCHECK on /healthz of the exposed port")
pkgs = set()
for m in re.finditer(r"apt-get install[^\n]*\\\n((?:.*\\\n)*.*)", dockerfile):
    block = m.group(1).split("&&")[0]
    pkgs |= {w for w in re.split(r"[\s\\]+", block) if re.match(r"^[a-z0-9][a-z0-9.+-]+$", w)}
if shutil.which("apt-cache"):
    for p in sorted(pkgs):
        r = subprocess.run(["apt-cache", "show", p], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        check(r.returncode == 0, "Dockerfile installs a Debian package that exists: " + p)
check({"librdkafka1", "libcurl4", "libmicrohttpd12"} <= pkgs, "runtime libraries listed")
image_cfg = os.path.join(deploy, "logpipe.yaml")
check("COPY deploy/logpipe.yaml /etc/logpipe/logpipe.yaml" in dockerfile, "image config copied")
for d in BIN:
    check_config(d, [image_cfg], {}, "image default config")

# ---- Compose ----
compose = {f: load_all(os.path.join(deploy, f))[0]
           for f in ("compose.yaml", "compose.dev.yaml", "compose.prod.yaml")}
base = compose["compose.yaml"]
services = base["services"]
for name, s in services.items():
    b = s.get("build")
    if b:
        ctx = os.path.normpath(os.path.join(deploy, b["context"]))
        check(os.path.isdir(ctx), "%s: build context exists" % name)
        check(os.path.isfile(os.path.join(ctx, b["dockerfile"])), "%s: dockerfile exists" % name)
        check(b.get("target") in stages, "%s: build target is a Dockerfile stage" % name)
for fname, doc in compose.items():
    for name, s in doc.get("services", {}).items():
        # an overlay may add a service of its own (compose.prod.yaml's
        # kafka-setup) when it says what image runs it
        check(name in services or "image" in s,
              "%s: service %s is defined in compose.yaml or has an image" % (fname, name))
        for v in s.get("volumes", []) or []:
            source = v.split(":")[0]
            if source.startswith("."):
                check(os.path.exists(os.path.join(deploy, source)), "%s/%s: bind source %s exists" % (fname, name, source))
            elif not source.startswith("/"):
                check(source in base.get("volumes", {}) or source in (doc.get("volumes") or {}),
                      "%s/%s: named volume %s declared" % (fname, name, source))
        check(not ("network_mode" in s and "networks" in s),
              "%s/%s: network_mode and networks are exclusive" % (fname, name))
        for n in s.get("networks", []) or []:
            check(n in base.get("networks", {}), "%s/%s: network %s declared" % (fname, name, n))
        for dep in (s.get("depends_on") or {}):
            check(dep in services or dep in doc.get("services", {}),
                  "%s/%s: depends on %s, a service" % (fname, name, dep))
        for sec in s.get("secrets", []) or []:
            sec = sec["source"] if isinstance(sec, dict) else sec  # long form: source + target
            check(sec in doc.get("secrets", {}), "%s/%s: secret %s declared" % (fname, name, sec))
    for sec, spec in (doc.get("secrets") or {}).items():
        check(spec["file"].startswith("./secrets/"), "%s: secret %s lives in deploy/secrets/" % (fname, sec))
# every secret compose.prod.yaml mounts is made by deploy/*/make-secrets.sh
made = tempfile.mkdtemp(prefix="lp-secrets-")
for tool in ("kafka", "opensearch"):
    subprocess.run([os.path.join(src, "deploy", tool, "make-secrets.sh"), made], check=True, timeout=120)
for sec, spec in (compose["compose.prod.yaml"].get("secrets") or {}).items():
    check(os.path.isfile(os.path.join(made, spec["file"][len("./secrets/"):])),
          "compose.prod.yaml: secret %s is made by deploy/kafka or deploy/opensearch make-secrets.sh" % sec)
shutil.rmtree(made)
gitignore = open(os.path.join(src, ".gitignore")).read()
check("/deploy/secrets/" in gitignore, "deploy/secrets/ is ignored by git")
for overlay in ("compose.dev.yaml", "compose.prod.yaml"):
    for name in ("shipper", "aggregator", "retention"):
        s = dict(services[name])
        o = compose[overlay]["services"].get(name, {})
        env = dict(s.get("environment", {}))
        env.update(o.get("environment", {}) or {})
        env = {k: str(v) for k, v in env.items() if "${" not in str(v)}
        cmd = o.get("command", s["command"])
        check(cmd[0] in BIN, "%s/%s: runs a logpipe daemon" % (overlay, name))
        mounts = {}
        for v in (s.get("volumes", []) or []) + (o.get("volumes", []) or []):
            parts = v.split(":")
            if parts[0].startswith("."):
                mounts[parts[1]] = os.path.join(deploy, parts[0])
        files = []
        for i, a in enumerate(cmd):
            if a == "-c":
                path = cmd[i + 1]
                host = image_cfg if path == "/etc/logpipe/logpipe.yaml" else mounts.get(path)
                check(host is not None, "%s/%s: config %s is in the image or mounted" % (overlay, name, path))
                if host:
                    files.append(host)
        cfg = check_config(cmd[0], files, env, "%s/%s" % (overlay, name), ["/run/secrets"])
        for p in (o.get("ports") or []):
            check(p.split(":")[-1] == str(listen_port(cfg)),
                  "%s/%s: published port %s is the metrics port" % (overlay, name, p))

# ---- Kubernetes ----
k8s = os.path.join(deploy, "k8s")
kust = load_all(os.path.join(k8s, "kustomization.yaml"))[0]
docs = []
for r in kust["resources"]:
    check(os.path.isfile(os.path.join(k8s, r)), "kustomization resource exists: " + r)
    docs += load_all(os.path.join(k8s, r))
kinds = {}
for d in docs:
    check("apiVersion" in d and "kind" in d and "name" in d.get("metadata", {}),
          "k8s object has apiVersion, kind, metadata.name: %s" % str(d)[:80])
    kinds.setdefault(d["kind"], {})[d["metadata"]["name"]] = d
    if d["kind"] not in ("Namespace", "PriorityClass", "ClusterRole", "ClusterRoleBinding"):  # cluster-scoped
        check(d["metadata"].get("namespace") == "logpipe", "%s/%s in namespace logpipe" % (d["kind"], d["metadata"]["name"]))
external_secrets = {"logpipe-es", "logpipe-es-retention"}  # created by the operator (kustomization.yaml says how)
cm = kinds["ConfigMap"]["logpipe"]
cm_files = {}
for key, text in cm["data"].items():
    cm_files[key] = os.path.join(work, "k8s-" + key)
    with open(cm_files[key], "w") as f:
        f.write(text)
images = set()
for kind in ("DaemonSet", "Deployment", "StatefulSet", "CronJob"):
    for name, d in kinds.get(kind, {}).items():
        spec = d["spec"]["jobTemplate"]["spec"]["template"]["spec"] if kind == "CronJob" else d["spec"]["template"]["spec"]
        if kind != "CronJob":
            check(d["spec"]["selector"]["matchLabels"].items() <= d["spec"]["template"]["metadata"]["labels"].items(),
                  "%s: selector matches the pod labels" % name)
        check(spec.get("serviceAccountName") in kinds.get("ServiceAccount", {}), "%s: service account exists" % name)
        vols = {v["name"]: v for v in spec.get("volumes", [])}
        for t in d["spec"].get("volumeClaimTemplates", []):  # a StatefulSet's own claims
            vols[t["metadata"]["name"]] = {"name": t["metadata"]["name"], "claimTemplate": t}
        for v in vols.values():
            if "configMap" in v:
                check(v["configMap"]["name"] in kinds["ConfigMap"], "%s: ConfigMap %s exists" % (name, v["configMap"]["name"]))
            if "secret" in v:
                check(v["secret"]["secretName"] in external_secrets | set(kinds.get("Secret", {})),
                      "%s: Secret %s is known" % (name, v["secret"]["secretName"]))
            if "persistentVolumeClaim" in v:
                check(v["persistentVolumeClaim"]["claimName"] in kinds.get("PersistentVolumeClaim", {}),
                      "%s: PVC exists" % name)
        for c in spec["containers"]:
            images.add(c["image"])
            mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
            for m in c.get("volumeMounts", []):
                check(m["name"] in vols, "%s: volume %s is declared" % (name, m["name"]))
            args = c["args"]
            check(args[0] in BIN, "%s: runs a logpipe daemon" % name)
            files = []
            for i, a in enumerate(args):
                if a != "-c":
                    continue
                cfgpath = args[i + 1]
                cfgvol = vols.get(mounts.get(os.path.dirname(cfgpath)), {})
                ok = cfgvol.get("configMap", {}).get("name") == "logpipe" and os.path.basename(cfgpath) in cm["data"]
                check(ok, "%s: -c %s is a key of the mounted ConfigMap" % (name, cfgpath))
                if ok:
                    files.append(cm_files[os.path.basename(cfgpath)])
            secret_dirs = [p for p, v in mounts.items() if "secret" in vols.get(v, {})]
            env = {e["name"]: e.get("value", "dummy-node") for e in c.get("env", [])}
            cfg = check_config(args[0], files, env, "k8s %s" % name, secret_dirs)
            ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
            if kind != "CronJob":
                mport = "ret-metrics" if args[0] == "logpipe-retention" else "metrics"
                check(ports.get(mport) == listen_port(cfg), "%s/%s: containerPort %s = metrics.listen" % (name, c["name"], mport))
                for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
                    hg = c.get(probe, {}).get("httpGet", {})
                    check(hg.get("path") == path and hg.get("port") in ports, "%s: %s on %s" % (name, probe, path))
            sc = c.get("securityContext", {})
            check(sc.get("readOnlyRootFilesystem") and sc.get("allowPrivilegeEscalation") is False,
                  "%s: read-only root, no privilege escalation" % name)
check(len(images) == 1, "one image for every workload: %s" % images)

# the object-storage layout (deploy/k8s-s3): its pipeline.yaml passes the
# aggregator's and retention's --check-config with the base logpipe.yaml
s3_patch = load_all(os.path.join(deploy, "k8s-s3", "configmap-patch.yaml"))[0]
s3_pipe = os.path.join(work, "k8s-s3-pipeline.yaml")
with open(s3_pipe, "w") as f:
    f.write(s3_patch["data"]["pipeline.yaml"])
for daemon in ("logpipe-aggregator", "logpipe-retention"):
    out = check_config(daemon, [cm_files["logpipe.yaml"], s3_pipe], {}, "k8s-s3",
                       ["/run/secrets/logpipe", "/run/secrets/logpipe-s3", "/run/secrets/logpipe-retention"])
    if daemon == "logpipe-aggregator" and out:
        kinds_out = [o.get("type") for o in out["aggregator"]["outputs"]]
        check("s3" in kinds_out and "file" not in kinds_out,
              "k8s-s3: the aggregator writes the bucket, not a volume: %s" % kinds_out)
s3_kust = load_all(os.path.join(deploy, "k8s-s3", "kustomization.yaml"))[0]
for r in s3_kust["resources"]:
    check(os.path.exists(os.path.join(deploy, "k8s-s3", r)), "k8s-s3 resource exists: " + r)
s3_dep = load_all(os.path.join(deploy, "k8s-s3", "aggregator.yaml"))[0]
check(s3_dep["kind"] == "Deployment" and "replicas" not in s3_dep["spec"],
      "k8s-s3: the aggregator is a Deployment whose replicas the HPA owns")
check(not any("persistentVolumeClaim" in v for v in s3_dep["spec"]["template"]["spec"]["volumes"]),
      "k8s-s3: no claim on the aggregators")
workloads = [x for k in ("Deployment", "StatefulSet", "DaemonSet") for x in kinds.get(k, {}).values()]
for name, d in kinds.get("HorizontalPodAutoscaler", {}).items():
    ref = d["spec"]["scaleTargetRef"]
    check(ref["name"] in kinds.get(ref["kind"], {}), "HPA targets an existing %s" % ref["kind"])
for name, d in kinds.get("StatefulSet", {}).items():
    check(d["spec"]["serviceName"] in kinds.get("Service", {}), "StatefulSet %s: its Service exists" % name)
    for t in d["spec"].get("volumeClaimTemplates", []):
        check("ReadWriteMany" not in t["spec"]["accessModes"], "StatefulSet %s: claims are ReadWriteOnce" % name)
for name, d in kinds.get("PodDisruptionBudget", {}).items():
    sel = d["spec"]["selector"]["matchLabels"]
    check(any(sel.items() <= x["spec"]["template"]["metadata"]["labels"].items() for x in workloads),
          "PDB selects a workload's pods")
for name, d in kinds.get("Service", {}).items():
    check(any(d["spec"]["selector"].items() <= x["spec"]["template"]["metadata"]["labels"].items()
              for x in workloads), "Service %s selects pods" % name)
for x in workloads:
    pcn = x["spec"]["template"]["spec"].get("priorityClassName")
    if pcn:
        check(pcn in kinds.get("PriorityClass", {}) or not pcn.startswith("system-"),
              "%s: priority class %s is defined here (system-* only in kube-system)" % (x["metadata"]["name"], pcn))

# the shipper's pod cache: get/list/watch pods only, bound to its account,
# with a projected token where the client looks for it; nobody else
roles = kinds.get("ClusterRole", {})
binds = kinds.get("ClusterRoleBinding", {})
check(set(roles) == {"logpipe-shipper-pods"} and roles["logpipe-shipper-pods"]["rules"] ==
      [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]},
       {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["get"]}],
      "the one ClusterRole reads pods (and gets Jobs) and nothing else")
check([(b["roleRef"]["name"], [(x["kind"], x["name"], x.get("namespace")) for x in b["subjects"]])
       for b in binds.values()] == [("logpipe-shipper-pods", [("ServiceAccount", "logpipe-shipper", "logpipe")])],
      "it is bound to the shipper's service account only")
ds = kinds.get("DaemonSet", {}).get("logpipe-shipper", {}).get("spec", {}).get("template", {}).get("spec", {})
tok = [v for v in ds.get("volumes", []) if any("serviceAccountToken" in src for src in v.get("projected", {}).get("sources", []))]
mnt = [m for c in ds.get("containers", []) for m in c.get("volumeMounts", []) if tok and m["name"] == tok[0]["name"]]
check(ds.get("automountServiceAccountToken") is False and len(tok) == 1 and
      [m["mountPath"] for m in mnt] == ["/var/run/secrets/kubernetes.io/serviceaccount"],
      "the shipper mounts a projected token where shipper.kubernetes reads it (no automount)")
for x in workloads:
    if x["metadata"]["name"] != "logpipe-shipper":
        sp = x["spec"]["template"]["spec"]
        check(sp.get("automountServiceAccountToken") is False and not any(
            "projected" in v for v in sp.get("volumes", [])), "%s: no API token" % x["metadata"]["name"])

# ---- the scrape job the alerts expect ----
scrape = load_all(os.path.join(deploy, "prometheus", "scrape.yaml"))[0]["scrape_configs"]
job = [j for j in scrape if j["job_name"] == "logpipe"]
check(len(job) == 1, "scrape.yaml has the job the alerts select (job=\"logpipe\")")
if job:
    rl = job[0]["relabel_configs"]
    keep_ports = [r["regex"] for r in rl if r.get("action") == "keep" and
                  r["source_labels"] == ["__meta_kubernetes_pod_container_port_name"]]
    check(keep_ports and all(re.fullmatch(keep_ports[0], p) for p in ("metrics", "ret-metrics")),
          "scrape.yaml keeps the metrics ports of every daemon")
    check(any(r.get("target_label") == "daemon" for r in rl), "scrape.yaml labels targets with daemon")
    for x in workloads:
        for c in x["spec"]["template"]["spec"]["containers"]:
            names = [p["name"] for p in c.get("ports", [])]
            check(any(re.fullmatch(keep_ports[0], n) for n in names) if keep_ports else False,
                  "%s/%s: a port the scrape job keeps" % (x["metadata"]["name"], c["name"]))

# ---- alerts, dashboard, saved objects ----
rules = load_all(os.path.join(deploy, "prometheus", "logpipe-alerts.yaml"))[0]
exprs = []
for g in rules["groups"]:
    for r in g["rules"]:
        exprs.append(r["expr"])
        if "record" in r:  # a recording rule: a name of the logpipe: namespace
            check(r["record"].startswith("logpipe:"), "recording rule %s is logpipe:..." % r["record"])
            continue
        check("docs/operations.md#" in r["annotations"]["description"], "alert %s links the runbook" % r["alert"])
        anchor = r["annotations"]["description"].split("docs/operations.md#")[1].split()[0]
        ops = os.path.join(src, "docs", "operations.md")
        if os.path.exists(ops):
            heads = {re.sub(r"[^a-z0-9 -]", "", h.lower()).strip().replace(" ", "-")
                     for h in re.findall(r"^#+\s+(.*)$", open(ops).read(), re.M)}
            check(anchor in heads, "alert %s: runbook section #%s exists" % (r["alert"], anchor))
dash = json.load(open(os.path.join(deploy, "grafana", "logpipe-dashboard.json")))
for p in dash["panels"]:
    exprs += [t["expr"] for t in p["targets"]]
for e in exprs:
    for m in re.findall(r"\blogpipe_[a-z0-9_]+", e):
        check(metric_known(m), "metric %s (in %r) is registered by the code" % (m, e[:60]))
objs = [json.loads(l) for l in open(os.path.join(deploy, "kibana", "logpipe-saved-objects.ndjson")) if l.strip()]
ids = {o["id"] for o in objs}
for o in objs:
    for ref in o.get("references", []):
        check(ref["id"] in ids, "saved object %s references %s in the file" % (o["id"], ref["id"]))
check(any(o["type"] == "index-pattern" and o["attributes"]["timeFieldName"] == "@timestamp" for o in objs),
      "a data view on @timestamp")

shutil.rmtree(work)
print("deploy/: %d checks, %d failed" % (check.count, len(failures)))
sys.exit(1 if failures else 0)
