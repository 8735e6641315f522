#!/usr/bin/env bash
# Makes this folder's repository with the last version over SQLite (commit c7cf5a4), as an installation of
# that version leaves it: `invoke rebuild --sample`, `invoke repo-init`, `invoke snapshot`. Its build
# artifacts (the FerretDB binary, 30 MB) are forgotten and pruned afterwards. Run as root from the project
# root on a host with Docker; it uses its own instance name, ports, image tag and folders, and removes its
# containers at the end. Not run by the tests: they use its output, committed here.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
commit=c7cf5a4
work="$(mktemp -d /tmp/legacy-sqlite-XXXXXX)"
git worktree add -f "$work/src" "$commit" >/dev/null
cat > "$work/config.toml" <<TOML
instance = "aggr-legacy"
data_root = "$work/data"
secrets_dir = "$work/secrets"
[images]
tag = "legacy-sqlite"
[db]
port = 27991
[webmirror]
port = 18991
[backup]
repository = "$work/repo"
[host]
min_free_gb = 1
TOML
cd "$work/src"
./run invoke rebuild --sample --config "$work/config.toml"
./run invoke repo-init --config "$work/config.toml"
./run invoke snapshot --config "$work/config.toml"
./run invoke snapshots --json --config "$work/config.toml" > "$work/sets.json"
./run invoke down --config "$work/config.toml"
r() {  # restic of that version's backup image, on the repository
    docker run --rm -i -v "$work/repo:/repo" -v "$work/secrets/restic-password:/run/pw:ro" \
        -e RESTIC_REPOSITORY=/repo -e RESTIC_PASSWORD_FILE=/run/pw aggregator-dr/backup:legacy-sqlite restic "$@"
}
ids="$(r snapshots --tag kind:artifacts --json | python3 -c 'import json,sys; print(" ".join(s["id"] for s in json.load(sys.stdin)))')"
if [ -n "$ids" ]; then r forget --prune $ids; fi
r dump latest --tag kind:manifest /manifest.json > "$work/manifest.json"
r check
rm -rf "$here/repo"
cp -a "$work/repo" "$here/repo"
cp "$work/manifest.json" "$here/manifest.json"
cp "$work/secrets/restic-password" "$here/restic-password"
cd "$here"
git -C "$(git rev-parse --show-toplevel)" worktree remove --force "$work/src"
docker volume rm aggr-legacy-dbdata >/dev/null 2>&1 || true
docker network rm aggr-legacy >/dev/null 2>&1 || true
echo "made $here/repo from commit $commit: $(du -sh "$here/repo" | cut -f1)"
