"""logpipe-aggregator --test: deploy/'s configuration passes its cases; a
pipeline with every kind of decision passes its own; a wrong expectation
fails with a readable difference; a mistyped test file is refused with its
positions instead of passing as a case that checks nothing."""
import os
import re
import subprocess
import sys
import tempfile

import yaml

AGG, SRC = sys.argv[1], sys.argv[2]
FIX = os.path.join("tests", "fixtures", "cfgtest")  # relative: the cases name their file
failures = []


def run(config, tests):
    r = subprocess.run([AGG, "-c", config, "--test", tests], capture_output=True, text=True,
                       timeout=60, cwd=SRC)
    return r.returncode, r.stdout, r.stderr


def check(cond, what, detail=""):
    print(("ok  " if cond else "FAIL"), what)
    if not cond:
        print(detail)
        failures.append(what)


rc, out, err = run(os.path.join("deploy", "logpipe.yaml"),
                   os.path.join("deploy", "tests", "logpipe.test.yaml"))
check(rc == 0 and "0 failed" in out, "deploy/logpipe.yaml passes deploy/tests/logpipe.test.yaml",
      out + err)

# deploy/k8s: the ConfigMap's files, its ${file:...} secrets stood in for
with open(os.path.join(SRC, "deploy", "k8s", "configmap.yaml")) as f:
    cm = yaml.safe_load(f)
with tempfile.TemporaryDirectory(prefix="lp-cfgtest-") as tmp:
    paths = []
    for name in ("logpipe.yaml", "pipeline.yaml"):
        paths.append(os.path.join(tmp, name))
        with open(paths[-1], "w") as f:
            f.write(re.sub(r"\$\{file:[^}]*\}", "stand-in", cm["data"][name]))
    r = subprocess.run([AGG, "-c", paths[0], "-c", paths[1], "--test",
                        os.path.join("deploy", "tests", "k8s.test.yaml")],
                       capture_output=True, text=True, timeout=60, cwd=SRC)
    check(r.returncode == 0 and "3 cases, 0 failed" in r.stdout,
          "deploy/k8s's pipeline passes deploy/tests/k8s.test.yaml", r.stdout + r.stderr)

rc, out, err = run(os.path.join(FIX, "pipeline.yaml"), os.path.join(FIX, "pipeline.test.yaml"))
check(rc == 0 and "4 cases, 0 failed" in out,
      "routes, a parser, drop, sample by label and redaction decide as the cases say", out + err)

rc, out, err = run(os.path.join(FIX, "pipeline.yaml"), os.path.join(FIX, "failing.test.yaml"))
want = ["FAIL a wrong expectation shows what differs (tests/fixtures/cfgtest/failing.test.yaml:2:5)",
        "line 1: route: want default, got web",
        "line 1: parse_failed: want false, got true",
        'line 1: http.response.status_code: want "200", got (absent)',
        "line 1: the event: {",
        "1 case, 1 failed"]
check(rc == 1 and all(w in out for w in want),
      "a failing case exits 1 and says what differs, line by line", out + err)

rc, out, err = run(os.path.join(FIX, "pipeline.yaml"), os.path.join(FIX, "bad.test.yaml"))
want = ["bad.test.yaml:4:5: tests[0]: unknown key 'expct'",
        "bad.test.yaml:6:14: source: 'kubernetes.nmespace' is not a field the shipper sets"]
check(rc == 2 and all(w in err for w in want) and "ok" not in out,
      "a mistyped test file is refused with FILE:LINE:COL (exit 2), no case runs", out + err)

rc, out, err = run(os.path.join(FIX, "pipeline.yaml"), os.path.join(FIX, "missing.test.yaml"))
check(rc == 2 and "missing.test.yaml" in err, "a missing test file exits 2 naming it", out + err)
sys.exit(1 if failures else 0)
