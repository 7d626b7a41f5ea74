"""tests/support/lptest.py's spawn(): a test that fails, is signalled or is
killed outright leaves none of the processes it started running."""
import os
import signal
import subprocess
import sys
import textwrap
import time

SUPPORT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support")
CHILD = textwrap.dedent(f"""
    import sys, time
    sys.path.insert(0, {SUPPORT!r})
    from lptest import spawn
    p = spawn(["sleep", "300"])
    print(p.pid, flush=True)
    mode = sys.argv[1]
    if mode == "assert":
        assert False, "a failing check"
    time.sleep(300)
""")


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def run(mode, kill=None):
    t = subprocess.Popen([sys.executable, "-c", CHILD, mode], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True)
    pid = int(t.stdout.readline())
    if kill:
        t.send_signal(kill)
    t.wait(timeout=30)
    deadline = time.monotonic() + 15
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    return not alive(pid)


failures = []
for mode, sig in (("assert", None), ("sleep", signal.SIGTERM), ("sleep", signal.SIGKILL)):
    what = f"{mode}" + (f" + {signal.Signals(sig).name}" if sig else "")
    ok = run(mode, sig)
    print(("ok  " if ok else "FAIL"), "the spawned process is gone after", what)
    if not ok:
        failures.append(what)
sys.exit(1 if failures else 0)
