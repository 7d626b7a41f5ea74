#!/usr/bin/env python3
"""Sample "containers" for scripts/demo: writes Kubernetes-style container
logs (<dir>/<pod>_<namespace>_<container>-<id>.log) in bursts, as a
container runtime would:

  web      Docker json-file  nginx access logs
  api      CRI               JSON application logs, one CRI partial line
                             (P + F), one malformed JSON app log
  billing  Docker json-file  a Java service with a stack trace
  worker   Docker json-file  plain lines and one line that is not Docker
                             JSON at all (shipped raw, flagged)

usage: demo_logs.py DIR LINES_PER_CONTAINER BURSTS
Prints one JSON line at the end: physical lines written and the events
they make (partials and the stack trace joined)."""
import datetime
import json
import os
import random
import sys
import time

out, per, bursts = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
os.makedirs(out, exist_ok=True)
rng = random.Random(7)


def path(pod, ns, container, n):
    cid = "%064x" % random.Random(n).getrandbits(256)  # a container id, stable per container
    return os.path.join(out, "%s_%s_%s-%s.log" % (pod, ns, container, cid))


files = {
    "web": path("web-7f9c4-x2x8q", "shop", "nginx", 1),
    "api": path("api-5d8b6-kq4lp", "shop", "api", 2),
    "billing": path("billing-6c4f9-7tmsd", "payments", "billing", 3),
    "worker": path("worker-0", "batch", "worker", 4),
}
lines = 0
events = 0


def now():
    t = datetime.datetime.now(datetime.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"


def docker(f, msg, stream="stdout"):
    global lines
    f.write(json.dumps({"log": msg + "\n", "stream": stream, "time": now()}) + "\n")
    lines += 1


def cri(f, msg, tag="F", stream="stdout"):
    global lines
    f.write("%s %s %s %s\n" % (now(), stream, tag, msg))
    lines += 1


paths = ["GET /api/v1/cart", "POST /api/v1/orders", "GET /static/app.js", "GET /healthz",
         "GET /search?q=shoes&page=2"]
handles = {k: open(v, "a") for k, v in files.items()}
for b in range(bursts):
    n = per // bursts + (1 if b < per % bursts else 0)
    for i in range(n):
        ts = datetime.datetime.now(datetime.timezone.utc).strftime("%d/%b/%Y:%H:%M:%S +0000")
        docker(handles["web"], '10.1.%d.%d - - [%s] "%s HTTP/1.1" %d %d "-" "curl/8.5.0"'
               % (rng.randrange(256), rng.randrange(256), ts, rng.choice(paths),
                  rng.choice((200, 200, 201, 304, 404, 500)), rng.randrange(100, 9000)))
        events += 1
        lvl = rng.choice(("info", "info", "debug", "WARNING", "error"))
        cri(handles["api"], json.dumps({"level": lvl, "msg": "order %d processed" % (b * per + i),
                                        "order_id": b * per + i, "duration_ms": rng.randrange(1, 900)}))
        events += 1
        docker(handles["billing"], "INFO  [billing] invoice %d sent" % (b * per + i))
        events += 1
        docker(handles["worker"], "job %d done in %dms" % (b * per + i, rng.randrange(5, 500)))
        events += 1
    if b == 0:
        # a CRI partial line: two physical lines, one event
        cri(handles["api"], '{"level":"info","msg":"a long line split by the runtime, ', "P")
        cri(handles["api"], 'joined again by the shipper"}', "F")
        # a malformed JSON application log: kept, with error.message
        cri(handles["api"], '{"level":"error","msg":"truncated JSON')
        events += 2
        # a log line, then a Java stack trace: one event of five lines
        docker(handles["billing"], "ERROR [billing] payment failed", "stderr")
        for frame in ("java.lang.IllegalStateException: card declined",
                      "\tat com.shop.billing.Payments.charge(Payments.java:88)",
                      "\tat com.shop.billing.Invoices.send(Invoices.java:41)",
                      "\tat java.base/java.lang.Thread.run(Thread.java:840)"):
            docker(handles["billing"], frame, "stderr")
        docker(handles["billing"], "\t... 3 more", "stderr")
        events += 2
        # not Docker JSON at all: shipped raw, flagged malformed
        handles["worker"].write("this line is not JSON: the runtime wrote garbage\n")
        lines += 1
        events += 1
    for h in handles.values():
        h.flush()
    if b + 1 < bursts:
        time.sleep(1)
for h in handles.values():
    h.close()
print(json.dumps({"lines": lines, "events": events, "files": len(files)}))
