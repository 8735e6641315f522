"""The hostile-input campaign (issue 9, item 4; the product's campaign/ package): generated hostile legacy
reports go into raw/<collector>/ as sync would land them, the real stages run on them as subprocesses against
the session's FerretDB, and the invariants of campaign/invariants.py are checked on every example: every input
ends in archive/ or quarantine/ with its reason, exit 0 and no traceback, a second run changes nothing, peak
RSS bounded, and the probe IP in none of its textual forms published or stored.

The campaign gets its configuration file and database from the fixtures here (campaign.rounds.Target);
`invoke fuzz` (dr/drills/fuzz.py) makes its own. Hypothesis profiles (campaign/__init__.py): `ci` (the tests'
default, tests/conftest.py; derandomized, bounded) and `fuzz` (random seeds, shrinking: `invoke fuzz`, whose
`--seed N` replays a round)."""

from __future__ import annotations

import os
import socket

import pytest

from campaign import hostile, invariants, rounds
from campaign.rounds import fresh
from dr.watch import campaign_page
from pipeline_helpers import HEADER, SAMPLES, report

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def campaign(built, database, tmp_path_factory):
    """The campaign's target: a stage configuration file for the session's db container, and its database
    (the client logged in as owner)."""
    port, client = database
    config = invariants.write_config(tmp_path_factory.mktemp("campaign") / "config.toml", built.secrets_dir, port)
    return rounds.Target(config, client[built.db.database], campaign_page.status_page(built))


def test_hostile_batches(campaign):
    """Generated batches (campaign.hostile.batches), every invariant checked on each, under the loaded
    profile: what `invoke fuzz` runs round after round."""
    rounds.hostile_batches(campaign)()


def test_a_measurement_over_16_mb(campaign):
    """Over FerretDB's (and BSON's) 16 MB document limit, the probe IP at its end."""
    config, db = campaign.config, campaign.db
    ip = "203.0.113.77"
    text = report({**HEADER, "probe_ip": ip, "report_id": "big"}, [{"input": "a"}])
    text += f"---\ninput: b\nbody: {'x' * (17 << 20)} {ip}\n...\n" + "---\ninput: c\n...\n"
    with fresh(campaign) as (dr, _):
        (dr.state("raw") / "c1").mkdir()
        (dr.state("raw") / "c1" / "big.yaml").write_text(text)
        invariants.check(dr, db, config, ["raw/c1/big.yaml"], ip, max_rss_mb=invariants.MAX_RSS_BIG_MB,
                         pages=campaign.pages)


def test_special_files_in_raw(campaign):
    """A FIFO, a socket and links in raw/ are set aside without being read (a FIFO would block a reader)."""
    config, db = campaign.config, campaign.db
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
    config, db = campaign.config, campaign.db
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
    config, db = campaign.config, campaign.db
    with fresh(campaign) as (dr, outside):
        inputs = hostile.place(case, dr.state("raw"), outside)
        invariants.check(dr, db, config, inputs, case.get("probe_ip"))
