"""Every defect the hostile-input campaign (tests/integration/test_campaign.py) found, as a fixed example:
the minimal reproducers in tests/unit/stages/data/hostile/ (cases.json: file, raw name, kind, probe IP, the stage
that failed and how), each run through the sanitizer in-process (no database), with the sanitizer's side
of the campaign's invariants: no exception and exit 0, the input ends in staging/ or quarantine/ (with a
reason file naming its reason), and no form of the probe IP in staging/. The importer's side of each is
tested by test_campaign.py::test_reproducers_through_both_stages."""

from __future__ import annotations

import pytest

from campaign import hostile, invariants
from pipeline_helpers import data_root, make_cfg
from stages import sanitize


@pytest.mark.timeout(300)
@pytest.mark.parametrize("case", hostile.reproducers(), ids=lambda c: c["name"])
def test_sanitizer_invariants_on_reproducer(tmp_path, case):
    dr = data_root(tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    inputs = hostile.place(case, dr.state("raw"), outside)
    summary = sanitize.run(make_cfg(dr.root), dr)
    assert summary.exit_code == 0, summary.to_dict()
    assert not [p for p in invariants.leftovers(dr) if p.startswith("raw/")], invariants.leftovers(dr)
    problems = invariants.accounting_problems(dr, inputs, final=("staging/", "quarantine/"))
    problems = {kind: found for kind, found in problems.items() if found}
    assert not problems, problems
    if case.get("probe_ip"):
        leaks = invariants.published_leaks(dr, case["probe_ip"], state="staging")
        assert not leaks, f"the probe IP {case['probe_ip']} would be published: {leaks}"
