"""The two-host drill (dr/two_hosts.py): docs/runbook.md executed block by block on two fresh Debian
servers (containers from our base image, each with its own Docker Engine), connected only through the
drill's network. Sections 0 to 11 restore a real instance's latest set on the Aggregator's server; section 12
moves the database to the other server, imports the sample collector's reports across the two, takes a
set, loses both servers, rebuilds both from the repository and rotates the passwords and certificates
across them; the drill then checks, from the new
Aggregator's server, that the new database server answers on its two TLS ports only, refuses plaintext
on both, and holds the set's documents. Slow: two servers build their images, twice."""

import json
import random
from pathlib import Path

import pytest
from conftest import running_instance

from dr import backup, pipeline, runbook, two_hosts
from pipeline_helpers import generate
from stages.layout import DataRoot


@pytest.fixture(scope="module")
def source(built, tmp_path_factory):
    """An instance with generated reports imported (not the sample collector's: section 12 imports those
    across the two hosts) and one complete set in its repository."""
    with running_instance(tmp_path_factory.mktemp("twohost"), "aggr-2h") as cfg:
        generate(DataRoot(cfg.data_root).ensure(), random.Random(12), n_good=6, n_bad=0, entries=(2, 5),
                 body=(100, 400))
        results = pipeline.run(cfg)
        assert pipeline.exit_code(results) == 0 and results[-1].summary.outcomes.get("imported") == 6, results
        assert backup.run(cfg, "init")[0] == 0
        code, manifest = backup.run(cfg, "take")
        assert code == 0
        yield cfg, manifest


def test_the_runbook_moves_the_database_to_its_own_host_and_rebuilds_both(source):
    cfg, manifest = source
    report = two_hosts.run(cfg)
    assert report["verdict"] == "pass", report["problems"]
    assert report["set"] == manifest.set_id
    ran = [r for r in report["steps"] if "skipped" not in r]
    steps = runbook.parse(runbook.RUNBOOK.read_text(), "two-host")
    assert len(ran) == len([s for s in steps if not s.skip])
    assert {r["host"] for r in ran} == {"aggregator", "database"}
    assert any("./run invoke rebuild --role database" in r["commands"] for r in ran if r["host"] == "database")
    saved = sorted((Path(cfg.drill.history_dir) / "two-hosts").glob("*.json"))
    assert json.loads(saved[-1].read_text())["verdict"] == "pass"
    assert saved[-1].with_suffix(".md").read_text().startswith(f"# Two-host drill {report['started']}: pass")
