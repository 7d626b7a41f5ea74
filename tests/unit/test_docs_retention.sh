#!/usr/bin/env bash
# Runs the commands of docs/retention.md's "Try it" section (the sh blocks
# between "## Try it" and the next section), with the built binary, and
# checks what the text says about them: the dry run plans archives and
# deletions and changes nothing, the run does them, a second dry run has
# nothing to do, the audit log has lines.
# usage: test_docs_retention.sh SOURCE_DIR LOGPIPE_RETENTION
set -euo pipefail
src=$1 ret=$2
cd "$src"
work=$(mktemp -d)
trap 'rm -rf "$work" /tmp/lp-retention-tour' EXIT
mapfile -t cmds < <(awk '/^## Try it/{on=1; next} /^## /{on=0} on && /^```sh/{b=1; next} b && /^```/{b=0} b' docs/retention.md)
[ ${#cmds[@]} -ge 6 ] || { echo "expected the doc's commands, got ${#cmds[@]}"; exit 1; }
i=0
for c in "${cmds[@]}"; do
  i=$((i + 1))
  c=${c//build\/retention\/logpipe-retention/$ret}
  echo "+ $c"
  bash -c "$c" > "$work/out.$i" 2> "$work/err.$i" || { echo "command $i failed:"; cat "$work/err.$i"; exit 1; }
done
grep -q "planned" "$work/out.2" && grep -q "archive_after 2d" "$work/out.2" &&
  grep -q "delete_after 30d" "$work/out.2" || { echo "dry run output:"; cat "$work/out.2"; exit 1; }
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["dry_run"] and len(d["actions"]) == 4, d' "$work/out.3"
grep -q "no action due" "$work/out.5" || { echo "second dry run:"; cat "$work/out.5"; exit 1; }
[ "$(wc -l < "$work/out.6")" -eq 2 ] && grep -q '"action":"' "$work/out.6"
ls /tmp/lp-retention-tour/segments/app/*/10/*.ndjson.zst > /dev/null
echo "docs/retention.md: ${#cmds[@]} commands ran as documented"
