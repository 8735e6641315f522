"""`invoke fuzz --minutes N`: the hostile-input campaign (campaign/) run round after round, each round
campaign.rounds.run_round with a fresh random seed and the `fuzz` hypothesis profile, until N minutes have
passed (the round running then is finished); `--seed S`: one round with that seed (a failing round's rerun).

The campaign gets what the tests' fixtures give it, made here (and, from tasks.py, what publishes
the status page: dr/watch/campaign_page.py, which the tests give it too): the images of the database built (a cache hit
when current, after the host's bootstrap), a throwaway database (dr/drills/sandbox.throwaway: its own instance
`<instance>-fuzz`, network, volume and role passwords, removed at the end; every example empties it), and a
configuration file for the stages pointing at it. The stages run from this checkout (python -m stages.<stage>).

Each failing round's report (the failure with hypothesis's falsifying example, shrunk) is kept, and the
failing batches themselves are saved: the files to copy into tests/unit/stages/data/hostile/ as fixed
examples.
"""

from __future__ import annotations

import random
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from campaign import invariants, rounds
from common import log
from common.config import Config
from common.records import Record
from dr.drills import sandbox
from dr.machine import host, images

DATABASE_IMAGES = ("postgres", "db")
_log = log.get("fuzz")


@dataclass
class FuzzFailure(Record):
    """A failing round: its seed (`invoke fuzz --seed` reruns it), the failure with hypothesis's falsifying
    example, the log it was written to and the folder of its saved failing batches."""
    seed: int
    text: str
    log: str
    saved: str


@dataclass
class FuzzResult(Record):
    """What `invoke fuzz` did: rounds, examples (test cases run, shrinking included), seconds, the folder of
    its logs and batches, and the failing rounds."""
    rounds: int
    examples: int
    seconds: float
    out: str
    failures: list[FuzzFailure]

    def render(self) -> str:
        lines = [f"fuzz: {self.examples} examples in {self.rounds} round(s), {self.seconds / 60:.1f} min; "
                 f"{len(self.failures)} failing round(s)"]
        for f in self.failures:
            lines += ["", f"---- seed {f.seed} (rerun: ./run invoke fuzz --seed {f.seed}; log {f.log}; "
                          f"failing batches saved in {f.saved}/)",
                      f.text]
        return "\n".join(lines)

    def exit_status(self) -> int:
        return 1 if self.failures else 0


def summary(done: list[rounds.Round], seconds: float, out: Path) -> FuzzResult:
    """The rounds run as the campaign's result (pure); a failing round's log and batches are in out."""
    failures = [FuzzFailure(seed=r.seed, text=r.failure, log=str(out / f"seed-{r.seed}.log"),
                            saved=str(out / f"seed-{r.seed}")) for r in done if r.failure]
    return FuzzResult(rounds=len(done), examples=sum(r.examples for r in done), seconds=round(seconds, 1),
                      out=str(out), failures=failures)


def run(cfg: Config, minutes: float, out_dir: str | None = None, seed: int | None = None,
        examples: int | None = None, pages: Callable[[Config], invariants.Pages] | None = None) -> FuzzResult:
    """Rounds until `minutes` have passed (with `seed`: that one round), of `examples` examples each (default:
    the `fuzz` profile's); pages(the sandbox's configuration): what else the campaign looks through for the
    probe IP (the status page)."""
    out = Path(out_dir or tempfile.mkdtemp(prefix="aggregator-dr-fuzz-"))
    out.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    deadline = start + minutes * 60
    done: list[rounds.Round] = []
    host.bootstrap(cfg)
    images.build_all(cfg, DATABASE_IMAGES)
    with sandbox.throwaway(cfg, label="fuzz") as sb:
        stages_config = invariants.write_config(Path(sb.cfg.data_root).parent / "stages.toml", sb.cfg.secrets_dir,
                                                sb.cfg.db.port)
        target = rounds.Target(stages_config, sb.db, None if pages is None else pages(sb.cfg))
        while (not done) if seed is not None else time.monotonic() < deadline:
            this = seed if seed is not None else random.SystemRandom().randrange(2 ** 32)
            _log.info("fuzz round %d, seed %d (%.1f min left)", len(done) + 1, this,
                      max(0.0, deadline - time.monotonic()) / 60)
            r = rounds.run_round(target, this, "fuzz", out / f"seed-{this}", examples)
            _log.info("round done: %d examples in %.0fs%s", r.examples, r.seconds, ", FAILED" if r.failure else "")
            if r.failure:
                (out / f"seed-{this}.log").write_text(f"seed {this}: {r.examples} examples in {r.seconds}s\n\n"
                                                      f"{r.failure}\n")
            done.append(r)
    return summary(done, time.monotonic() - start, out)
