#!/usr/bin/env bash
# Retention benchmark (not a test): `logpipe-retention --once` archiving
# closed segments laid out as the file output writes them (scan, plan,
# compress + verify by decompressing and hashing + fsync + rename + unlink,
# audit log) against `zstd -T1` at the same level on the same files
# (compress only), and gzip against `gzip`. Prints MB/s of segments in, CPU
# seconds per GB, compression ratio and the ratios.
#
#   bench/retention/run.sh [MB] [LEVEL]      (default 1024 MB, zstd level 3)
# Needs: a build in build/, zstd, gzip.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
mb=${1:-1024}
level=${2:-3}
build=${LP_BUILD:-$repo/build}
tool=$build/retention/logpipe-retention
work=$(mktemp -d /tmp/lp-bench-ret-XXXXXX)
trap 'rm -rf "$work"' EXIT

echo "generating ${mb} MB of segments (ECS NDJSON, as the file output writes them)..."
python3 "$repo/bench/gen_logs.py" "$work/raw" "$mb" 8 >/dev/null
python3 - "$work/raw" "$work/seg" <<'PY'
import json, os, random, sys
raw, seg = sys.argv[1], sys.argv[2]
os.makedirs(seg)
rng = random.Random(7)
n = 0
out = None
written = 0
for name in sorted(os.listdir(raw)):
    with open(os.path.join(raw, name), errors="replace") as f:
        for off, line in enumerate(f):
            if out is None or written > 128 << 20:
                if out: out.close()
                out = open(os.path.join(seg, "%d-%d.ndjson" % (n % 4, n)), "w"); n += 1; written = 0
            try:
                msg = json.loads(line).get("log", line)
            except ValueError:
                msg = line.split(" ", 3)[-1]
            ev = {"@timestamp": "2026-11-28T07:21:%02d.%09dZ" % (off % 60, off),
                  "message": msg.rstrip("\n"), "stream": "stdout",
                  "event": {"id": "%032x" % rng.getrandbits(128), "ingested": "2026-11-28T07:21:05.123Z"},
                  "log": {"offset": off * 180, "file": {"path": "/var/log/containers/" + name}},
                  "host": {"name": "node-1"},
                  "kubernetes": {"namespace": "shop", "pod": {"name": name[:20]}, "container": {"name": "app"}},
                  "logpipe": {"source_id": "%032x" % hash(name), "input_format": "docker"}}
            s = json.dumps(ev, separators=(",", ":")) + "\n"
            out.write(s); written += len(s)
out.close()
PY
rm -rf "$work/raw"
bytes=$(cat "$work"/seg/*.ndjson | wc -c)
cat "$work"/seg/*.ndjson >/dev/null # page cache
gb=$(echo "$bytes / 1073741824" | bc -l)

measure() { # NAME CMD... -> prints a row; sets cpu wall
  local t0 t1
  t0=$(date +%s.%N)
  /usr/bin/time -f "%U %S" -o "$work/time" "${@:2}" >"$work/out" 2>"$work/err" || { cat "$work/err"; exit 1; }
  t1=$(date +%s.%N)
  cpu=$(awk '{ printf "%.2f", $1 + $2 }' "$work/time")
  wall=$(echo "$t1 - $t0" | bc -l)
  printf '%-34s %8.1f %9.2f %8.2f\n' "$1" "$(echo "$bytes / 1048576 / $wall" | bc -l)" \
    "$(echo "$cpu / $gb" | bc -l)" "$cpu"
}

echo "segments: $(echo "$bytes / 1048576" | bc) MB in $(ls "$work/seg" | wc -l) files"
printf '%-34s %8s %9s %8s\n' tool "MB/s" "CPU s/GB" "CPU s"
measure "zstd -$level -T1 (compress only)" sh -c "for f in $work/seg/*.ndjson; do zstd -$level -T1 -q -c \"\$f\" > \"\$f.zst.ref\"; done"
zcpu=$cpu
zout=$(cat "$work"/seg/*.zst.ref | wc -c); rm -f "$work"/seg/*.zst.ref
# the file output's tree, segments closed two days ago
tree() { # DIR: moves the flat segments into DIR/app/<day>/<hour>/
  local i=0 f d
  for f in "$work"/seg/*.ndjson; do
    d="$1/app/2026-11-26/$(printf %02d $((i % 24)))"
    mkdir -p "$d"
    cp "$f" "$d/"
    i=$((i + 1))
  done
  find "$1" -name '*.ndjson' -exec touch -d '-2 days' {} +
}
config() { # NAME CODEC LEVEL
  cat >"$work/$1.yaml" <<YAML
retention:
  audit_log: $work/$1-audit.ndjson
  policies:
    - {name: $1, path: $work/$1, archive_after: 1d, archive_codec: $2, archive_level: $3}
metrics: {enabled: false}
log: {level: warn}
YAML
}
tree "$work/zst"; config zst zstd "$level"
tree "$work/gz"; config gz gzip 6
rm -rf "$work/seg"; mkdir "$work/seg"
cat "$work"/zst/app/*/*/*.ndjson >/dev/null
measure "logpipe-retention zstd-$level (+verify)" "$tool" -c "$work/zst.yaml" --once --output json
lcpu=$cpu
read -r lin lout < <(python3 -c 'import json,sys; p=json.load(open(sys.argv[1]))["policies"][0]; print(p["archive_bytes"], p["archive_bytes_after"])' "$work/out")
[ "$(find "$work/zst" -name '*.ndjson' | wc -l)" -eq 0 ] || { echo "segments left unarchived"; exit 1; }
cat "$work"/gz/app/*/*/*.ndjson >/dev/null
measure "gzip -6 (compress only)" sh -c "for f in $work/gz/app/*/*/*.ndjson; do gzip -6 -c \"\$f\" > \"\$f.gz.ref\"; done"
gcpu=$cpu; find "$work/gz" -name '*.gz.ref' -delete
measure "logpipe-retention gzip-6 (+verify)" "$tool" -c "$work/gz.yaml" --once --output json
lgcpu=$cpu
echo
printf 'zstd ratio: logpipe %.2f, zstd CLI %.2f\n' "$(echo "$lin / $lout" | bc -l)" "$(echo "$bytes / $zout" | bc -l)"
printf 'CPU, logpipe archive / zstd -T1 at level %s: %.2fx (goal <= 1.2)\n' "$level" "$(echo "$lcpu / $zcpu" | bc -l)"
printf 'CPU, logpipe archive gzip / gzip -6:       %.2fx\n' "$(echo "$lgcpu / $gcpu" | bc -l)"
