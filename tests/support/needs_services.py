#!/usr/bin/env python3
"""Runs an integration test only when the services it needs are up.

    needs_services.py [--s3] CMD [ARGS...]

Checks that Kafka (127.0.0.1:$KAFKA_PORT, default 9092) and OpenSearch
(127.0.0.1:$OPENSEARCH_PORT, default 9200) accept connections; if so, runs
CMD and exits with its status; with --s3, the S3 server
(127.0.0.1:$S3_PORT, default 9410) too. If not, prints what is missing and how to
start it, and exits 77, which CTest reports as "Skipped" (SKIP_RETURN_CODE),
so a plain `ctest` on a machine without services is not a wall of failures.
With LOGPIPE_REQUIRE_SERVICES=1 (scripts/test sets it) a missing service is
a failure instead: CI must never pass by skipping."""
import os
import socket
import subprocess
import sys

SKIP = 77


def reachable(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return True
    except OSError:
        return False


missing = []
args = sys.argv[1:]
wanted = [("Kafka", "KAFKA_PORT", 9092), ("OpenSearch", "OPENSEARCH_PORT", 9200)]
if args and args[0] == "--s3":
    args = args[1:]
    wanted.append(("the S3 server", "S3_PORT", 9410))
for name, var, default in wanted:
    port = int(os.environ.get(var, default))
    if not reachable(port):
        missing.append("%s on 127.0.0.1:%d" % (name, port))
if missing:
    what = "needs " + " and ".join(missing) + " (start them with scripts/services up)"
    if os.environ.get("LOGPIPE_REQUIRE_SERVICES") == "1":
        print("error: %s; LOGPIPE_REQUIRE_SERVICES=1" % what, file=sys.stderr)
        sys.exit(1)
    print("skipped: " + what)
    sys.exit(SKIP)
sys.exit(subprocess.call(args))
