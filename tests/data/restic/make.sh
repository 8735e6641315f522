#!/usr/bin/env bash
# Makes snapshots-0.18.json: what `restic snapshots --json` (restic 0.18, in our backup image) prints for a
# throwaway repository holding a set from before the physical copy (files, db, a manifest without a parts tag),
# an interrupted set (files only), a complete set (files, pg, db, a manifest tagged parts:files+pg+db) and an
# operator's own snapshot of no set. Run as root from the project root on a host with Docker and the backup
# image built. Not run by the tests: they read its output, committed here (tests/unit/snapshots/test_results.py).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
docker run --rm -i --entrypoint bash aggregator-dr/backup:latest -s > "$here/snapshots-0.18.json.tmp" <<'SCRIPT'
set -e
export RESTIC_REPOSITORY=/tmp/repo RESTIC_PASSWORD=x
restic init --quiet >/dev/null
mkdir -p /data && echo a > /data/a
t() { echo "--tag set:$1 --tag kind:$2 --tag version:0.1.0"; }
b() { restic backup --quiet --host aggregator-dr-backup "$@" >/dev/null; }
s() { echo "$1" | b --stdin --stdin-filename "$2" "${@:3}"; }
b $(t 20251230T000000Z files) /data
s db database.dbdump $(t 20251230T000000Z db)
s '{}' manifest.json $(t 20251230T000000Z manifest)
b $(t 20251231T000000Z files) /data
b $(t 20260101T000000Z files) /data
s pg pg.tar $(t 20260101T000000Z pg)
s db database.dbdump $(t 20260101T000000Z db)
s '{}' manifest.json $(t 20260101T000000Z manifest) --tag parts:files+pg+db
b /data
restic snapshots --no-lock --json
SCRIPT
python3 -c 'import json, sys; print(json.dumps(json.load(sys.stdin), indent=1))' < "$here/snapshots-0.18.json.tmp" \
    > "$here/snapshots-0.18.json"
rm "$here/snapshots-0.18.json.tmp"
