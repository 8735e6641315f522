"""The hostile-input campaign (issue 9, item 4): generated hostile legacy reports go into raw/<collector>/
as sync would land them, the real stages run on them as subprocesses against the session's FerretDB, and
the invariants of tests/campaign/invariants.py are checked on every example: every input ends in archive/
or quarantine/ with its reason, exit 0 and no traceback, a second run changes nothing, peak RSS bounded,
and the probe IP in none of its textual forms published or stored.

Hypothesis profiles (tests/campaign/__init__.py): `ci` (default; derandomized, bounded) and `fuzz`
(`invoke fuzz --minutes N` runs this module's test_hostile_batches with it and fresh seeds)."""

from __future__ import annotations

import contextlib
import os
import socket
import tempfile
import traceback
from pathlib import Path

import pytest
from conftest import reset_database
from hypothesis import given

from campaign import hostile, invariants
from pipeline_helpers import HEADER, SAMPLES, report
from stages.layout import DataRoot

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def campaign(built, database, tmp_path_factory):
    """(stage configuration file, pymongo client, database) for the session's db container."""
    port, client = database
    config = invariants.write_config(tmp_path_factory.mktemp("campaign") / "config.toml", built.secrets_dir, port)
    return config, client, client[built.db.database]


@contextlib.contextmanager
def fresh(campaign):
    """An empty data root (and a folder beside it for link targets), and an empty database."""
    _, client, db = campaign
    reset_database(client, db.name)
    with tempfile.TemporaryDirectory(prefix="campaign-") as d:
        outside = Path(d) / "outside"
        outside.mkdir()
        yield DataRoot(Path(d) / "data").ensure(), outside


@given(batch=hostile.batches())
def test_hostile_batches(campaign, batch):
    config, _, db = campaign
    with fresh(campaign) as (dr, outside):
        inputs = hostile.write(batch, dr.state("raw"), outside)
        try:
            invariants.check(dr, db, config, inputs, batch.ip)
        except AssertionError as exc:
            # With $CAMPAIGN_FAILURES set (invoke fuzz sets it), keep the failing batch, one folder per
            # distinct failure: the last one written is hypothesis's minimal example, replayed last.
            if os.environ.get("CAMPAIGN_FAILURES"):
                line = traceback.extract_tb(exc.__traceback__)[-1].lineno
                batch.save(Path(os.environ["CAMPAIGN_FAILURES"]) / f"invariants-line-{line}")
            raise


def test_a_measurement_over_16_mb(campaign):
    """Over FerretDB's (and BSON's) 16 MB document limit, the probe IP at its end."""
    config, _, db = campaign
    ip = "203.0.113.77"
    text = report({**HEADER, "probe_ip": ip, "report_id": "big"}, [{"input": "a"}])
    text += f"---\ninput: b\nbody: {'x' * (17 << 20)} {ip}\n...\n" + "---\ninput: c\n...\n"
    with fresh(campaign) as (dr, _):
        (dr.state("raw") / "c1").mkdir()
        (dr.state("raw") / "c1" / "big.yaml").write_text(text)
        invariants.check(dr, db, config, ["raw/c1/big.yaml"], ip, max_rss_mb=invariants.MAX_RSS_BIG_MB)


def test_special_files_in_raw(campaign):
    """A FIFO, a socket and links in raw/ are set aside without being read (a FIFO would block a reader)."""
    config, _, db = campaign
    with fresh(campaign) as (dr, outside):
        c1 = dr.state("raw") / "c1"
        c1.mkdir()
        os.mkfifo(c1 / "fifo.yaml")
        with socket.socket(socket.AF_UNIX) as s:
            s.bind(str(c1 / "socket.yaml"))
        secret = outside / "secret.yaml"
        secret.write_text(report({**HEADER, "report_id": "outside"}, [{"input": "a"}]))
        os.symlink(secret, c1 / "link.yaml")
        os.link(secret, c1 / "hardlink.yaml")
        os.symlink(outside, c1 / "dirlink")
        inputs = [f"raw/c1/{n}" for n in ("fifo.yaml", "socket.yaml", "link.yaml", "hardlink.yaml", "dirlink")]
        invariants.check(dr, db, config, inputs, None)


def test_every_truncation_of_a_real_report(campaign):
    """A small real report (binary probe_city, a !!set, a real probe IP) cut at every byte offset, all in
    raw/ at once, through both stages in one go."""
    config, _, db = campaign
    data = (SAMPLES / "real-fastpath-testdata-binary_city.yaml").read_bytes()
    with fresh(campaign) as (dr, _):
        folder = dr.state("raw") / "cut"
        folder.mkdir()
        for n in range(len(data)):
            (folder / f"cut{n:04d}.yaml").write_bytes(data[:n])
        inputs = [f"raw/cut/cut{n:04d}.yaml" for n in range(len(data))]
        invariants.check(dr, db, config, inputs, "46.22.105.39")


@pytest.mark.parametrize("case", hostile.reproducers(), ids=lambda c: c["name"])
def test_reproducers_through_both_stages(campaign, case):
    """Every defect the campaign found, as a fixed example (tests/unit/stages/data/hostile/), through both stages."""
    config, _, db = campaign
    with fresh(campaign) as (dr, outside):
        inputs = hostile.place(case, dr.state("raw"), outside)
        invariants.check(dr, db, config, inputs, case.get("probe_ip"))
