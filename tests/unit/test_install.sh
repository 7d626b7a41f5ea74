#!/usr/bin/env bash
# cmake --install of the build under test, into a scratch DESTDIR: the three
# daemons (their --version names version, commit and libraries), the systemd
# units pointing at the installed binaries, the sysusers entry, the example
# configuration and the docs; the units pass systemd-analyze verify, and
# systemd-analyze security rates each unit's exposure at most 2.0 (printed;
# before #28's hardening: shipper 5.9, aggregator 5.3, retention 5.3).
#   test_install.sh BUILD_DIR
set -euo pipefail
build=$1
tmp=$(mktemp -d /tmp/lp-install-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
DESTDIR="$tmp/root" cmake --install "$build" >/dev/null
prefix=$(sed -n 's/^CMAKE_INSTALL_PREFIX:PATH=//p' "$build/CMakeCache.txt")
units=$(sed -n 's/^LP_SYSTEMD_UNIT_DIR:PATH=//p' "$build/CMakeCache.txt")
case "$units" in /*) ;; *) units="$prefix/$units" ;; esac
root="$tmp/root"
mkdir -p "$tmp/units"
for d in shipper aggregator retention; do
  bin="$root$prefix/bin/logpipe-$d"
  [ -x "$bin" ] || fail "$bin not installed"
  v=$("$bin" --version)
  echo "$v" | grep -Eq "^logpipe-$d [0-9]+\.[0-9]+\.[0-9]+ \(commit ([0-9a-f]{7,}|unknown)\)" ||
    fail "logpipe-$d --version: $v"
  echo "$v" | grep -q "librdkafka [0-9]" || fail "logpipe-$d --version names no librdkafka: $v"
  unit="$root$units/logpipe-$d.service"
  [ -f "$unit" ] || fail "$unit not installed"
  grep -q "^ExecStart=$prefix/bin/logpipe-$d -c /etc/logpipe/logpipe.yaml\$" "$unit" ||
    fail "$unit: ExecStart is not the installed binary"
  # verified against the binaries just installed
  sed "s|$prefix/bin/|$root$prefix/bin/|g" "$unit" >"$tmp/units/logpipe-$d.service"
  echo "ok: logpipe-$d installed, $(echo "$v" | head -n1)"
done
[ -f "$root$prefix/lib/sysusers.d/logpipe.conf" ] || fail "sysusers entry not installed"
[ -f "$root$prefix/share/doc/logpipe/examples/logpipe.yaml" ] || fail "example configuration not installed"
[ -f "$root$prefix/share/doc/logpipe/getting-started.md" ] || fail "docs not installed"
if command -v systemd-analyze >/dev/null; then
  out=$(systemd-analyze verify "$tmp"/units/*.service 2>&1) || fail "systemd-analyze verify: $out"
  [ -z "$out" ] || fail "systemd-analyze verify warns: $out"
  echo "ok: systemd-analyze verify $(systemd-analyze --version | head -n1 | cut -d' ' -f1-2): 3 units"
  for u in "$tmp"/units/*.service; do
    line=$(systemd-analyze security --offline=true "$u" 2>&1 | grep "Overall exposure level") ||
      fail "systemd-analyze security $u: no rating"
    level=$(echo "$line" | sed -n 's/.*: \([0-9.]*\) .*/\1/p')
    awk -v l="$level" 'BEGIN { exit !(l != "" && l <= 2.0) }' || fail "$line (at most 2.0)"
    echo "ok: ${line#→ }"
  done
else
  fail "systemd-analyze missing (apt-get install systemd)"
fi
