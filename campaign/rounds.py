"""The campaign run against what it is given, never what it finds: a `Target` (the stages' configuration file
and the database it names, reached by a client logged in as the owner role). Every example starts from an
empty database and a fresh data root (`fresh`); one generated batch goes into raw/ and both stages run on it
with every invariant checked (`check_batch`). `hostile_batches` is that as a hypothesis test (called with
no argument, under the settings profile loaded, as tests/integration/test_campaign.py does); `run_round`
runs it once under a profile and a seed, outside any test runner, and says how it went (`invoke fuzz`)."""

from __future__ import annotations

import contextlib
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import hypothesis
from hypothesis import given, settings

from campaign import hostile, invariants, register_profiles
from database import schema
from stages.layout import DataRoot


@dataclass(frozen=True)
class Target:
    """config: a configuration file for the stages (invariants.write_config: the database on loopback, the
    importer's password in a secrets folder); db: that database (pymongo Database), its client logged in as
    owner (it empties the database before each example and makes the importer's collections); pages: what
    else is published from a data root and the stage runs on it (invariants.Pages: the status page), looked
    through for the probe IP."""
    config: Path
    db: object
    pages: invariants.Pages | None = None


def reset(db) -> None:
    """An empty database with the importer's collections and indexes (as owner, which `rebuild` is)."""
    db.client.drop_database(db.name)
    schema.ensure(db)


@contextlib.contextmanager
def fresh(target: Target) -> Iterator[tuple[DataRoot, Path]]:
    """An empty data root (and a folder beside it for link targets), and an empty database; the folders
    are removed afterwards."""
    reset(target.db)
    with tempfile.TemporaryDirectory(prefix="campaign-") as d:
        outside = Path(d) / "outside"
        outside.mkdir()
        yield DataRoot(Path(d) / "data").ensure(), outside


def check_batch(target: Target, batch: hostile.Batch, failures: Path | None = None) -> None:
    """One example: the batch into raw/ of a fresh data root, both stages run twice, every invariant
    asserted (invariants.check). With failures, a batch that breaks an invariant is kept first, one folder
    per distinct failure (failures/invariants-line-<line>/, Batch.save): the last one written is hypothesis's
    minimal example, replayed last."""
    with fresh(target) as (dr, outside):
        inputs = hostile.write(batch, dr.state("raw"), outside)
        try:
            invariants.check(dr, target.db, target.config, inputs, batch.ip, pages=target.pages)
        except AssertionError as exc:
            if failures is not None:
                line = traceback.extract_tb(exc.__traceback__)[-1].lineno
                batch.save(failures / f"invariants-line-{line}")
            raise


def hostile_batches(target: Target, failures: Path | None = None,
                    each: Callable[[], None] | None = None) -> Callable[[], None]:
    """The campaign as a hypothesis test of no argument: generated batches (hostile.batches()), each through
    check_batch. It runs under the settings profile loaded unless decorated with hypothesis.settings (and
    hypothesis.seed); it raises what the failing example raised, hypothesis's falsifying example in the
    exception's notes. each(), when given, is called before every example (shrinking included)."""

    @given(batch=hostile.batches())
    def hostile_batches(batch):
        if each is not None:
            each()
        check_batch(target, batch, failures)

    return hostile_batches


@dataclass
class Round:
    seed: int
    examples: int  # test cases run, shrinking (and the final replay of a failure) included
    seconds: float
    failure: str | None  # the traceback(s) with hypothesis's falsifying example; None: every example passed


def run_round(target: Target, seed: int, profile: str = "fuzz", failures: Path | None = None,
              max_examples: int | None = None) -> Round:
    """hostile_batches once, under the settings profile (`ci` or `fuzz`, register_profiles; max_examples, when
    given, instead of the profile's) and the seed, failing batches kept in failures (check_batch). Any exception
    the run ends with is the round's failure (as a failing test would be), KeyboardInterrupt aside."""
    register_profiles()
    examples = 0

    def count() -> None:
        nonlocal examples
        examples += 1

    chosen = settings(settings.get_profile(profile), **({"max_examples": max_examples} if max_examples else {}))
    test = chosen(hypothesis.seed(seed)(hostile_batches(target, failures, count)))
    start = time.monotonic()
    failure = None
    try:
        test()
    except Exception as exc:  # noqa: BLE001 - what the campaign found: reported, the next round runs
        failure = "".join(traceback.format_exception(exc)).strip()
    return Round(seed, examples, round(time.monotonic() - start, 1), failure)
