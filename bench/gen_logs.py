#!/usr/bin/env python3
"""Writes a realistic mix of container logs for benchmarks: half Docker
json-file, half CRI; nginx access logs, JSON application logs, long lines
(Docker splits them into 16 KiB partials, CRI into P/F parts), Java stack
traces. usage: gen_logs.py DIR TOTAL_MB FILES [LINES_PER_FILE_CAP]
Prints the physical line count and bytes written."""
import json
import os
import random
import sys

out, total_mb, nfiles = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(42)
os.makedirs(out, exist_ok=True)
paths = ["GET /api/v1/cart", "POST /api/v1/orders", "GET /static/app.js", "GET /healthz",
         "PUT /api/v1/users/42", "GET /search?q=shoes&page=2"]
agents = ["curl/8.5.0", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/126.0",
          "kube-probe/1.30", "Go-http-client/2.0"]
words = "order payment cart user session cache database timeout retry upstream latency shard".split()


def messages():
    i = 0
    while True:
        i += 1
        r = rng.random()
        if r < 0.45:
            yield ('10.%d.%d.%d - - [28/Nov/2026:07:21:%02d +0000] "%s HTTP/1.1" %d %d "-" "%s"'
                   % (rng.randrange(256), rng.randrange(256), rng.randrange(256), i % 60,
                      rng.choice(paths), rng.choice((200, 200, 200, 201, 304, 404, 500)),
                      rng.randrange(100, 90000), rng.choice(agents)))
        elif r < 0.85:
            yield json.dumps({"level": rng.choice(("info", "info", "warn", "error", "debug")),
                              "ts": "2026-11-28T07:21:00.%06dZ" % (i % 10**6),
                              "msg": " ".join(rng.choice(words) for _ in range(rng.randrange(4, 14))),
                              "request_id": "%032x" % rng.getrandbits(128),
                              "duration_ms": rng.randrange(1, 3000)})
        elif r < 0.97:
            yield "Exception in thread \"worker-%d\" java.lang.IllegalStateException: %s" % (
                i % 16, rng.choice(words))
            for d in range(rng.randrange(5, 25)):
                yield "\tat com.shop.%s.%s(%s.java:%d)" % (
                    rng.choice(words).title(), rng.choice(words), rng.choice(words).title(), d + 10)
        else:
            yield "payload " + "".join(rng.choice("abcdefghijklmnop0123456789") for _ in range(64)) * rng.randrange(60, 320)


def docker(msg, stream, ts):
    chunks = [msg[k:k + 16384] for k in range(0, len(msg), 16384)] or [""]
    # compact, like dockerd's encoder (Go's json: no spaces, UTF-8 kept)
    return "".join(json.dumps({"log": c + ("\n" if n == len(chunks) - 1 else ""), "stream": stream,
                               "time": ts}, separators=(",", ":"), ensure_ascii=False) + "\n"
                   for n, c in enumerate(chunks))


def cri(msg, stream, ts):
    parts = [msg[k:k + 16384] for k in range(0, len(msg), 16384)] or [""]
    return "".join("%s %s %s %s\n" % (ts, stream, "F" if n == len(parts) - 1 else "P", p)
                   for n, p in enumerate(parts))


budget = total_mb * 1024 * 1024 // nfiles
lines = 0
written = 0
for f in range(nfiles):
    fmt = docker if f % 2 == 0 else cri
    name = "app-%d_bench_c%d-%064x.log" % (f, f, f)
    gen = messages()
    size = 0
    buf = []
    with open(os.path.join(out, name), "w") as fp:
        n = 0
        while size < budget:
            ts = "2026-11-28T07:21:%02d.%09dZ" % (n // 100000 % 60, n % 10**9)
            s = fmt(next(gen), "stderr" if n % 7 == 0 else "stdout", ts)
            buf.append(s)
            size += len(s)
            lines += s.count("\n")
            n += 1
            if len(buf) >= 5000:
                fp.write("".join(buf))
                buf = []
        fp.write("".join(buf))
    written += size
print(lines, written)
