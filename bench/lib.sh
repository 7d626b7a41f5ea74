# shellcheck shell=bash
# Helpers for the benchmarks (sourced):
# CPU seconds and peak RSS (KiB) of a live pid, a free loopback port, and the
# sum of a metric's series on a local /metrics (nothing when it has none).
clk=$(getconf CLK_TCK)
cpu_of() { awk -v clk="$clk" '{ printf "%.2f", ($14 + $15) / clk }' "/proc/$1/stat"; }
hwm_of() { awk '/VmHWM/ { print $2 }' "/proc/$1/status"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
metric() { { curl -fsS -m 5 "http://127.0.0.1:$1/metrics" 2>/dev/null || true; } | awk -v n="$2" '$1 == n { s += $2; f = 1 } END { if (f) printf "%d", s }'; }
