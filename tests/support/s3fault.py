"""A fault-injecting HTTP proxy in front of the test S3 server (tests only).

Forwards every request as it came (method, path, headers with Host, body),
so the SigV4 signature the client made still verifies upstream. Modes, set
with set_mode(): "pass", "slow" (object writes wait `delay` seconds before
they are forwarded: uploads are in flight when a test kills an aggregator),
"503" (every request answered 503 SlowDown without reaching the store).
When the store is down the proxy answers 502. Counts requests per mode and
the writes in flight. Loopback only."""
import http.client
import http.server
import threading
import time

SLOWDOWN = (b"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>SlowDown</Code>"
            b"<Message>Please reduce your request rate.</Message></Error>")


class S3Fault:
    def __init__(self, upstream_port, delay=1.0):
        self.upstream_port = upstream_port
        self.delay = delay
        self.mode = "pass"
        self.lock = threading.Lock()
        self.in_flight = 0
        self.answered = {"pass": 0, "slow": 0, "503": 0, "502": 0}
        self.puts = 0
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _any(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                proxy._forward(self, body)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _any

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def set_mode(self, mode):
        with self.lock:
            self.mode = mode

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def _reply(self, h, status, body, headers=()):
        h.send_response(status)
        for k, v in headers:
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if h.command != "HEAD":
            h.wfile.write(body)

    def _forward(self, h, body):
        with self.lock:
            mode = self.mode
        write = h.command in ("PUT", "POST")
        if mode == "503":
            with self.lock:
                self.answered["503"] += 1
            self._reply(h, 503, SLOWDOWN, [("Content-Type", "application/xml")])
            return
        if write:
            with self.lock:
                self.in_flight += 1
                self.puts += 1
        try:
            if mode == "slow" and write:
                time.sleep(self.delay)
            c = http.client.HTTPConnection("127.0.0.1", self.upstream_port, timeout=60)
            hdrs = {k: v for k, v in h.headers.items()}
            c.request(h.command, h.path, body=body if body or write else None, headers=hdrs)
            r = c.getresponse()
            data = r.read()
            keep = [(k, v) for k, v in r.getheaders()
                    if k.lower() not in ("content-length", "transfer-encoding", "connection")]
            with self.lock:
                self.answered[mode] += 1
            self._reply(h, r.status, data, keep)
            c.close()
        except OSError:
            with self.lock:
                self.answered["502"] += 1
            self._reply(h, 502, b"upstream down")
        finally:
            if write:
                with self.lock:
                    self.in_flight -= 1
