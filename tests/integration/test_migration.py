"""An installation of the previous version (FerretDB over SQLite, one database user) moves to PostgreSQL by
restoring its newest snapshot set (docs/runbook.md, "Moving from the SQLite database").

tests/data/legacy-sqlite/ holds what such an installation leaves to its operator: the restic repository it
wrote and its password. It was made by that version itself (commit c7cf5a4, the last one over SQLite):
`invoke rebuild --sample`, `invoke repo-init`, `invoke snapshot`, then its build-artifacts snapshot was
forgotten and pruned to keep the folder small (see tests/data/legacy-sqlite/README.md). Its database dump is
in that version's own stream format, which restores still read."""

import json
import shutil
from pathlib import Path

from conftest import running_instance

from common import secrets
from dr.services import stack

LEGACY = Path(__file__).resolve().parents[1] / "data" / "legacy-sqlite"


def test_the_newest_set_of_the_sqlite_version_restores_into_postgresql(built, tmp_path):
    expected = json.loads((LEGACY / "manifest.json").read_text())
    repo = tmp_path / "repo"
    shutil.copytree(LEGACY / "repo", repo)
    secrets.put(tmp_path / "secrets", secrets.RESTIC_PASSWORD, (LEGACY / "restic-password").read_text().strip())
    reports = []
    with running_instance(tmp_path, "aggr-migrate", reports=reports, **{"backup.repository": str(repo)}) as cfg:
        phases = reports[0].notes()
        assert phases["restore"].startswith(f"set {expected['set']} ") and "verified" in phases["restore"]
        wanted = expected["database"]["collections"]
        assert phases["verify"].endswith(", ".join(f"{k} {v}" for k, v in sorted(wanted.items())))
        client = stack.db_client(cfg)
        try:
            d = client[cfg.db.database]
            assert {c: d[c].count_documents({}) for c in wanted} == wanted
            some = d.reports.find_one({})
            assert some["report_file"] and d.measurements.count_documents({"report_key": some["_id"]}) \
                == some["entries"]
        finally:
            client.close()
        published = [p for p in (Path(cfg.data_root) / "archive").rglob("*.yaml")]
        assert len(published) == wanted["reports"]
