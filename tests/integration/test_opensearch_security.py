#!/usr/bin/env python3
"""The production OpenSearch of deploy/ (security plugin, TLS, users) on a real node.

Starts one OpenSearch 2.19 node with the real security plugin (jars from
`scripts/services jars opensearch-secure`) configured exactly as
deploy/compose.prod.yaml configures the image: deploy/opensearch/opensearch.yml,
the roles of deploy/opensearch/security/, certificates made by
deploy/opensearch/make-secrets.sh. Then runs deploy/opensearch/setup.sh (the
compose service opensearch-setup) and the real shipper, aggregator and
retention with deploy/logpipe.yaml + deploy/logpipe.prod.yaml as shipped (only
/run/secrets/, /var/lib/logpipe and the host name are pointed at the test's
directory and port) through the test Kafka of scripts/services, and checks:

  - nothing answers without TLS, a password or with a wrong one;
  - setup.sh makes the users, can run again, and rotates a password;
  - the aggregator logs in as "logpipe", installs its template and indexes
    every line once; retention logs in as "logpipe-retention" and deletes the
    index past delete_after, nothing else;
  - each role can do only its part: logpipe neither reads nor deletes,
    logpipe-retention neither reads nor writes documents.

What it does not cover: the image's entrypoint and Compose itself (no Docker
engine runs on these machines), OpenSearch Dashboards' login.

usage: test_opensearch_security.py BUILD_DIR"""
import base64
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from lptest import spawn, free_port, Checks, stop_procs

BUILD = os.path.abspath(sys.argv[1])
SRC = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
DEPLOY = os.path.join(SRC, "deploy")
KAFKA = os.environ.get("LOGPIPE_TEST_KAFKA", "127.0.0.1:9092")
check = Checks()
tmp = tempfile.mkdtemp(prefix="lp-ossec-")
secrets = os.path.join(tmp, "secrets")
http_port, transport_port = free_port(), free_port()
url = "https://127.0.0.1:%d" % http_port  # not "localhost": a minimal root may not resolve it

subprocess.run([os.path.join(DEPLOY, "opensearch", "make-secrets.sh"), secrets, "localhost", "IP:127.0.0.1"],
               check=True, timeout=120)


def secret(name):
    with open(os.path.join(secrets, name)) as f:
        return f.read()


def request(method, path, user=None, password=None, body=None, admin_cert=False, base=None):
    """(status, parsed JSON or text) of one HTTPS request; status 0 when no answer."""
    ctx = ssl.create_default_context(cafile=os.path.join(secrets, "ca.pem"))
    if admin_cert:
        ctx.load_cert_chain(os.path.join(secrets, "opensearch-admin.pem"), os.path.join(secrets, "opensearch-admin.key"))
    data = None
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
    req = urllib.request.Request((base or url) + path, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/x-ndjson" if path.startswith("/_bulk") else "application/json")
    if user is not None:
        req.add_header("Authorization", "Basic " + base64.b64encode(("%s:%s" % (user, password)).encode()).decode())
    try:
        with urllib.request.urlopen(req, context=ctx if (base or url).startswith("https") else None,
                                    timeout=30) as r:
            status, raw = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    except (urllib.error.URLError, OSError, ssl.SSLError) as e:
        return 0, str(e)
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode(errors="replace")


# the node: the shipped opensearch.yml and security configuration, the secrets as certs/
node_dir = subprocess.run([os.path.join(SRC, "scripts", "services"), "jars", "opensearch-secure"], check=True,
                          stdout=subprocess.PIPE, timeout=900).stdout.decode().strip()
home = os.path.join(tmp, "opensearch")
for d in ("config/certs", "data", "logs", "modules"):
    os.makedirs(os.path.join(home, d))
shutil.copy(os.path.join(DEPLOY, "opensearch", "opensearch.yml"), os.path.join(home, "config"))
shutil.copytree(os.path.join(DEPLOY, "opensearch", "security"), os.path.join(home, "config", "opensearch-security"))
for f in ("ca.pem", "opensearch-node.pem", "opensearch-node.key"):
    shutil.copy(os.path.join(secrets, f), os.path.join(home, "config", "certs"))
shutil.copy(os.path.join(SRC, "tests", "infra", "opensearch", "log4j2.properties"), os.path.join(home, "config"))
shutil.copytree(os.path.join(node_dir, "plugin"), os.path.join(home, "plugins"),
                ignore=shutil.ignore_patterns(".complete", "fetch.log"))
procs = {}
procs["opensearch"] = spawn(
    ["java", "-Xms512m", "-Xmx512m", "-Dlog4j2.configurationFile=" + os.path.join(home, "config", "log4j2.properties"),
     "-Dopensearch.path.home=" + home, "-cp", os.path.join(node_dir, "libs", "*"),
     os.path.join(SRC, "tests", "infra", "opensearch", "Launcher.java"), home, str(http_port), str(transport_port)],
    stdout=open(os.path.join(tmp, "opensearch.log"), "wb"), stderr=subprocess.STDOUT)


rcs = {}
try:
    setup = [os.path.join(DEPLOY, "opensearch", "setup.sh")]
    senv = dict(os.environ, OPENSEARCH_URL=url, SECRETS=secrets, WAIT_SECONDS="180")
    r = subprocess.run(setup, env=senv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=240)
    if not check(r.returncode == 0 and r.stdout.decode().count(" ready") == 4,
                 "deploy/opensearch/setup.sh waits for the node and makes the four users: %s (node log: %s)"
                 % (r.stdout.decode()[-600:], os.path.join(tmp, "opensearch.log"))):
        raise SystemExit(1)
    r = subprocess.run(setup, env=senv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
    check(r.returncode == 0, "setup.sh runs again without harm: %s" % r.stdout.decode()[-300:])

    pw = {"admin": secret("opensearch-admin-password"), "dashboards": secret("opensearch-dashboards-password"),
          "logpipe": secret("es-password"), "logpipe-retention": secret("es-retention-password")}
    st, _ = request("GET", "/_cluster/health")
    check(st == 401, "no password, no access (HTTP %d)" % st)
    st, _ = request("GET", "/_cluster/health", "logpipe", "wrong-" + pw["logpipe"])
    check(st == 401, "a wrong password is refused (HTTP %d)" % st)
    st, body = request("GET", "/_cluster/health", base="http://127.0.0.1:%d" % http_port)
    check(st == 0 or st >= 400, "plain HTTP gets nothing (%s)" % str(body)[:120])
    expect_roles = {"admin": "all_access", "dashboards": "kibana_server", "logpipe": "logpipe_writer",
                    "logpipe-retention": "logpipe_retention"}
    for user, role in expect_roles.items():
        st, info = request("GET", "/_plugins/_security/authinfo", user, pw[user])
        check(st == 200 and isinstance(info, dict) and info.get("roles") == [role],
              "%s logs in with its secret and has exactly the role %s (%s)"
              % (user, role, info.get("roles") if isinstance(info, dict) else info))

    # an index past retention, made by the admin; one at today's date comes from the pipeline
    st, _ = request("PUT", "/logs-2020.01.01", "admin", pw["admin"], {})
    check(st == 200, "admin creates an old index (HTTP %d)" % st)
    st, _ = request("PUT", "/unrelated-2020.01.01", "admin", pw["admin"], {})

    # the daemons with the shipped configuration and overlay
    logs = os.path.join(tmp, "log")
    os.makedirs(logs)
    now = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
    lines = ['%s.000000000Z stdout F {"msg":"secure line %d","n":%d}' % (now, i, i) for i in range(500)]
    with open(os.path.join(logs, "sec_prod_app-%064x.log" % 7), "w") as f:
        f.write("\n".join(lines) + "\n")
    run = os.path.join(tmp, "var")
    os.makedirs(run)  # /var/lib/logpipe: the image's, made by its Dockerfile

    def shipped(name):
        with open(os.path.join(DEPLOY, name)) as f:
            text = f.read()
        text = text.replace("/run/secrets/", secrets + "/").replace("/var/lib/logpipe", run)
        return text.replace("https://opensearch:9200", url)

    cfgs = []
    for name in ("logpipe.yaml", "logpipe.prod.yaml"):
        p = os.path.join(tmp, name)
        with open(p, "w") as f:
            f.write(shipped(name))
        cfgs += ["-c", p]
    test_overlay = os.path.join(tmp, "test.yaml")
    with open(test_overlay, "w") as f:
        f.write('shipper:\n  inputs: [{paths: ["%s/*.log"]}]\n  batch_linger: 50ms\n'
                'aggregator:\n  default_route: {parser: json, outputs: [search]}\n'
                'log: {format: logfmt}\n' % logs)
    cfgs += ["-c", test_overlay]
    topic = "logpipe.ossec-%d" % os.getpid()
    denv = dict(os.environ, KAFKA_BROKERS=KAFKA, LOGPIPE_TOPIC=topic, LOGPIPE_GROUP="ossec-%d" % os.getpid(),
                NODE_NAME="test-node")
    for d in ("shipper", "aggregator"):
        denv_d = dict(denv, LOGPIPE_METRICS_LISTEN="127.0.0.1:%d" % free_port())
        procs[d] = spawn([os.path.join(BUILD, d, "logpipe-" + d)] + cfgs, env=denv_d,
                                    stderr=open(os.path.join(tmp, d + ".log"), "wb"))
    today = "logs-" + time.strftime("%Y.%m.%d", time.gmtime())
    count = -1
    deadline = time.time() + 120
    while time.time() < deadline:
        request("POST", "/%s/_refresh" % today, "admin", pw["admin"])
        st, body = request("GET", "/%s/_count" % today, "admin", pw["admin"])
        count = body.get("count", -1) if st == 200 and isinstance(body, dict) else -1
        if count >= len(lines):
            break
        time.sleep(1)
    time.sleep(2)
    request("POST", "/%s/_refresh" % today, "admin", pw["admin"])
    st, body = request("GET", "/%s/_count" % today, "admin", pw["admin"])
    count = body.get("count", -1) if isinstance(body, dict) else -1
    check(count == len(lines), "the aggregator, as logpipe over TLS, indexes every line once: %d of %d (log: %s)"
          % (count, len(lines), os.path.join(tmp, "aggregator.log")))
    st, body = request("GET", "/_index_template/logpipe", "admin", pw["admin"])
    check(st == 200, "and installs its index template (HTTP %d)" % st)

    # what logpipe may not do
    st, _ = request("GET", "/%s/_search" % today, "logpipe", pw["logpipe"])
    check(st == 403, "logpipe cannot read the logs (HTTP %d)" % st)
    st, _ = request("DELETE", "/logs-2020.01.01", "logpipe", pw["logpipe"])
    check(st == 403, "logpipe cannot delete an index (HTTP %d)" % st)
    st, _ = request("PUT", "/unrelated-2020.01.01/_doc/1", "logpipe", pw["logpipe"], {"a": 1})
    check(st == 403, "logpipe cannot write outside logs-* (HTTP %d)" % st)
    st, _ = request("GET", "/_plugins/_security/api/internalusers", "logpipe", pw["logpipe"])
    check(st == 403, "logpipe cannot see the users (HTTP %d)" % st)
    # nor change what it wrote (#28: its role has no delete or update)
    st, body = request("POST", "/%s/_search" % today, "admin", pw["admin"], {"size": 1})
    doc_id = body["hits"]["hits"][0]["_id"] if st == 200 and body["hits"]["hits"] else "none"
    st, _ = request("DELETE", "/%s/_doc/%s" % (today, doc_id), "logpipe", pw["logpipe"])
    check(st == 403, "logpipe cannot delete a document (HTTP %d)" % st)
    st, _ = request("POST", "/%s/_update/%s" % (today, doc_id), "logpipe", pw["logpipe"],
                    {"doc": {"message": "rewritten"}})
    check(st == 403, "logpipe cannot update a document (HTTP %d)" % st)
    # (_delete_by_query / _update_by_query: the test node runs without the
    # reindex module that serves them; the role grants neither action)
    st, body = request("POST", "/_bulk", "logpipe", pw["logpipe"],
                       b'{"delete":{"_index":"%s","_id":"%s"}}\n' % (today.encode(), doc_id.encode()))
    ok = st == 403 or (st == 200 and isinstance(body, dict) and body.get("errors") and
                       all(i["delete"].get("status") == 403 for i in body["items"]))
    check(ok, "logpipe cannot delete a document through _bulk (HTTP %d)" % st)
    st, body = request("GET", "/%s/_count" % today, "admin", pw["admin"])
    check(isinstance(body, dict) and body.get("count") == len(lines),
          "every document is still there: %s" % (body.get("count") if isinstance(body, dict) else body))

    # retention as logpipe-retention
    rt = subprocess.run([os.path.join(BUILD, "retention", "logpipe-retention"), "--once"] + cfgs, env=denv,
                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
    out = rt.stdout.decode(errors="replace")
    with open(os.path.join(tmp, "retention.log"), "w") as f:
        f.write(out)
    st_old, _ = request("HEAD", "/logs-2020.01.01", "admin", pw["admin"])
    st_new, _ = request("HEAD", "/" + today, "admin", pw["admin"])
    st_other, _ = request("HEAD", "/unrelated-2020.01.01", "admin", pw["admin"])
    check(rt.returncode == 0 and st_old == 404 and st_new == 200 and st_other == 200,
          "retention, as logpipe-retention, deletes logs-2020.01.01 only (exit %d; old %d, today %d, unrelated %d): %s"
          % (rt.returncode, st_old, st_new, st_other, out[-600:]))
    st, _ = request("GET", "/%s/_search" % today, "logpipe-retention", pw["logpipe-retention"])
    check(st == 403, "logpipe-retention cannot read the logs (HTTP %d)" % st)
    st, _ = request("POST", "/_bulk", "logpipe-retention", pw["logpipe-retention"],
                    b'{"index":{"_index":"%s"}}\n{"a":1}\n' % today.encode())
    ok = st == 403 or (st == 200 and isinstance(_, dict) and _.get("errors") and
                       all(i["index"].get("status") == 403 for i in _["items"]))
    check(ok, "logpipe-retention cannot write documents (HTTP %d)" % st)

    # rotation: a new secret and setup.sh again
    old = pw["logpipe"]
    with open(os.path.join(secrets, "es-password"), "w") as f:
        f.write("rotated-" + old)
    r = subprocess.run(setup, env=senv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
    st_old, _ = request("GET", "/_plugins/_security/authinfo", "logpipe", old)
    st_new, _ = request("GET", "/_plugins/_security/authinfo", "logpipe", "rotated-" + old)
    check(r.returncode == 0 and st_old == 401 and st_new == 200,
          "setup.sh rotates a password: old %d, new %d" % (st_old, st_new))
finally:
    for d in ("shipper", "aggregator"):
        if d in procs:
            procs[d].send_signal(signal.SIGTERM)
            try:
                rcs[d] = procs[d].wait(timeout=120)
            except subprocess.TimeoutExpired:
                procs[d].kill()
                rcs[d] = -9
    stop_procs(procs)
for d, rc in rcs.items():
    check(rc == 0, "%s exits 0 on SIGTERM" % d)

print("opensearch security: %d checks, %d failed" % (check.count, len(check.failures)))
if check.failures:
    print("kept:", tmp)
    sys.exit(1)
shutil.rmtree(tmp)
