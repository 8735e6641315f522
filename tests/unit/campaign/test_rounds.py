"""campaign.rounds.run_round outside any test runner, with the stages and the database left out (check_batch
replaced): how many examples ran, the failure with hypothesis's falsifying example, the failing batch kept,
the same examples for the same seed. The real check runs in tests/integration/test_campaign.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import settings

from campaign import hostile, rounds

TARGET = rounds.Target(Path("/nonexistent/config.toml"), None)


@pytest.fixture
def checked(monkeypatch):
    """check_batch replaced: a batch of more than two inputs breaks an invariant. Yields the batches seen."""
    seen = []

    def check_batch(target, batch, failures=None):
        if target is not TARGET:
            raise ValueError(target)
        seen.append(batch)
        if len(batch.inputs) > 2:  # not an assert: pytest's rewriting would print every input, at every step
            if failures is not None:
                batch.save(failures / "invariants-line-1")
            raise AssertionError("more than two inputs")

    monkeypatch.setattr(rounds, "check_batch", check_batch)
    return seen


@pytest.mark.timeout(300)
def test_a_failing_round_reports_its_minimal_example_and_keeps_it(checked, tmp_path):
    result = rounds.run_round(TARGET, 1234, "fuzz", tmp_path / "seed-1234")
    assert result.seed == 1234 and result.examples == len(checked) > 1
    assert "AssertionError: more than two inputs" in result.failure
    assert "hostile_batches(" in result.failure and "batch=Batch(ip=" in result.failure  # the falsifying example
    saved = json.loads((tmp_path / "seed-1234" / "invariants-line-1" / "batch.json").read_text())
    assert len(saved["inputs"]) == 3  # shrunk: the smallest batch that fails
    again = rounds.run_round(TARGET, 1234, "fuzz")
    assert again.examples == result.examples and again.failure == result.failure


@pytest.mark.timeout(300)
def test_a_passing_round(monkeypatch):
    seen = []
    monkeypatch.setattr(rounds, "check_batch", lambda target, batch, failures=None: seen.append(batch))
    settings.register_profile("campaign-unit", settings.get_profile("ci"), max_examples=10)
    result = rounds.run_round(TARGET, 7, "campaign-unit")
    assert result.failure is None and result.examples == len(seen) == 10
    assert all(isinstance(b, hostile.Batch) for b in seen)


def test_any_exception_fails_the_round(monkeypatch):
    def check_batch(target, batch, failures=None):
        raise ConnectionError("database gone")

    monkeypatch.setattr(rounds, "check_batch", check_batch)
    result = rounds.run_round(TARGET, 1, "ci")
    assert result.examples >= 1 and "ConnectionError: database gone" in result.failure


def test_reproducers_from_a_folder(tmp_path):
    assert hostile.reproducers(tmp_path) == []
    (tmp_path / "x.yaml").write_bytes(b"---\nprobe_ip: 1.2.3.4\n")
    (tmp_path / "cases.json").write_text(json.dumps([{"name": "x", "probe_ip": "1.2.3.4", "inputs": [
        {"file": "x.yaml", "raw": "c1/x.yaml"}, {"file": "x.yaml", "raw": "c1/x.tar", "tar_member": "x.yaml"}]}]))
    [case] = hostile.reproducers(tmp_path)
    raw, outside = tmp_path / "raw", tmp_path / "outside"
    outside.mkdir()
    assert hostile.place(case, raw, outside, tmp_path) == ["raw/c1/x.yaml", "raw/c1/x.tar"]
    assert (raw / "c1" / "x.yaml").read_bytes() == b"---\nprobe_ip: 1.2.3.4\n"
