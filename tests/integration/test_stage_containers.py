"""The stages in their images as the unprivileged user 990 (dr/jobs/contract.py, dr/jobs/launch.py), on a data root an
operator filled as root: every report is read, nothing outside the data root is followed or handed over, and
the backup container (root) takes and restores the files with their owners."""

from __future__ import annotations

import os
import stat

from conftest import running_instance

from common import config
from dr.jobs import backup, contract, pipeline
from dr.services import collector, stack
from pipeline_helpers import copy_samples
from stages.layout import DataRoot

UID = contract.STAGE_UID


def owners(root) -> dict[str, int]:
    out = {}
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            p = os.path.join(dirpath, name)
            out[os.path.relpath(p, root)] = os.lstat(p).st_uid
    return out


def test_stages_run_unprivileged_on_a_data_root_filled_as_root_and_sets_keep_owners(built, tmp_path):
    with running_instance(tmp_path, "aggr-stageuser") as cfg:
        dr = DataRoot(cfg.data_root).ensure()
        for p in copy_samples(dr):  # an operator's copy, as root, private
            p.chmod(0o600)
        (dr.root / "journal.jsonl").write_text("")  # left by an earlier run as root
        shadow = tmp_path / "shadow"
        shadow.write_text("root:secret\n")
        shadow.chmod(0o600)
        (dr.state("raw") / "sample" / "link-20140807.yaml").symlink_to(shadow)
        os.link(shadow, dr.state("raw") / "sample" / "hard-20140807.yaml")

        stages = pipeline.run(cfg).stages
        assert [(s.stage, s.exit_code) for s in stages] == [("sanitize", 0), ("importer", 0)], \
            [s.errors or s.failed for s in stages]
        assert stages[1].outcomes == {"postprocessed": 18, "imported": 18}
        quarantined = stages[0].quarantined
        assert {q.reason for q in quarantined if "20140807" in q.input} == {"not_a_regular_file"}
        st = os.stat(shadow)
        assert (st.st_uid, stat.S_IMODE(st.st_mode), shadow.read_text()) == (0, 0o600, "root:secret\n")

        client = stack.db_client(cfg)
        try:
            assert client[cfg.db.database].reports.count_documents({}) == 18
        finally:
            client.close()
        published = [p for p in dr.files("archive") if p.suffix == ".yaml"]
        assert len(published) == 18 and all(p.stat().st_uid == UID for p in published)
        assert dr.journal.stat().st_uid == UID and dr.journal.stat().st_size > 0

        # The backup container runs as root: the set keeps the stages' owner, and a restore gives it back.
        assert backup.run(cfg, "init")[0] == 0
        assert backup.run(cfg, "take")[0] == 0
        before = {k: v for k, v in owners(dr.root).items() if not k.startswith(".")}
        target = config.derive(cfg, {"data_root": str(tmp_path / "restored")})
        code, _ = backup.run(target, "restore", db=False)
        assert code == 0
        after = {k: v for k, v in owners(target.data_root).items() if not k.startswith(".")}
        assert after == before and UID in after.values()


def test_sync_runs_unprivileged_with_a_private_copy_of_the_collector_key(built, tmp_path):
    """Also: with the collector gone, sync fails and the pipeline stops there (the later stages do not run)."""
    with running_instance(tmp_path, "aggr-syncuser") as cfg:
        synced = collector.start(cfg)  # the sample collector, its key root-owned 0600 in the secrets
        with_collector = config.derive(cfg, {"collectors": [synced]})
        try:
            key = os.stat(synced["key_file"])
            assert (key.st_uid, stat.S_IMODE(key.st_mode)) == (0, 0o600)
            (sync_summary,) = pipeline.run(with_collector, "sync").stages
            assert sync_summary.exit_code == 0, sync_summary.errors
            assert sync_summary.outcomes.get("pulled") == 20
            pulled = DataRoot(cfg.data_root).files("raw")
            assert len(pulled) == 20 and all(p.stat().st_uid == UID for p in pulled)
            assert os.stat(synced["key_file"]).st_uid == 0  # the original is never handed over
        finally:
            collector.stop(cfg)
        ran = pipeline.run(with_collector)
        assert [s.stage for s in ran.stages] == ["sync"] and ran.stages[0].errors, ran.render()
        assert ran.stages[0].stopped and ran.exit_status() == 1
