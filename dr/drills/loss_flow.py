"""The host-loss drill's flow (dr/drills/host_loss.py): the Aggregator's jobs in a loop, one step at a time, in a
process of its own that the drill kills, at a moment it picks, with the rest of the host:

    python -m dr.drills.loss_flow --config FILE

The steps are every pipeline stage (sync first), then `take` (a set, with its release list when the mode wants
one), `copy` (the complete sets copied off-site, with theirs) and `release` (sync --release: the collectors'
copies that a verified set holds deleted). Each cycle begins with `@flow cycle <n>` (from 1); before a step it
prints `@flow begin <step>`, after it `@flow end <step>`; then it reads a line from stdin before it goes on, and stops at end of input. A step that
fails is printed as `@flow failed <step>: <why>` and the flow goes on (the next cycle tries again, as the
schedule would).
"""

from __future__ import annotations

import argparse
import sys
from typing import Callable

from common import config
from common.config import Config
from common.errors import DrError
from dr.jobs import pipeline, release

MARK = "@flow"


def steps(cfg: Config) -> list[tuple[str, Callable[[dict], object]]]:
    """(step, function of the cycle's state) in order: the state carries the copy's result to the release."""
    stages = [(name, lambda _, name=name: pipeline.run_stage(cfg, name)) for name in pipeline.stage_names(cfg)]
    return stages + [
        ("take", lambda _: release.taken(cfg, "take")),
        ("copy", lambda state: state.update(copy=release.taken(cfg, "copy"))),
        ("release", lambda state: release.release(cfg, state.pop("copy")) if "copy" in state else None),
    ]


def say(*words: str) -> None:
    print(MARK, *words, flush=True)


def run(cfg: Config, cycles: int | None = None) -> int:
    """The flow, cycle after cycle (cycles: how many; None: until its input ends)."""
    done = 0
    while cycles is None or done < cycles:
        state: dict = {}
        say("cycle", str(done + 1))
        for name, fn in steps(cfg):
            say("begin", name)
            try:
                fn(state)
            except DrError as exc:
                say("failed", f"{name}: {exc}")
            say("end", name)
            if not sys.stdin.readline():
                return 0
        done += 1
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m dr.drills.loss_flow", description=__doc__.split("\n\n")[0])
    p.add_argument("--config", required=True)
    p.add_argument("--cycles", type=int, default=None)
    args = p.parse_args(argv)
    return run(config.load(args.config), args.cycles)


if __name__ == "__main__":
    sys.exit(main())
