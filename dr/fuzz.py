"""`invoke fuzz --minutes N`: the hostile-input campaign (tests/integration/test_campaign.py, see
tests/campaign/) run again and again, each round a pytest run with a fresh random seed and the `fuzz`
hypothesis profile, until N minutes have passed (the round running then is finished).

Each failing round's output (hypothesis prints the falsifying example, shrunk) is kept, and the failing
batches themselves are saved (the test does it when $CAMPAIGN_FAILURES names a folder): the files to copy
into tests/unit/stages/data/hostile/ as fixed examples.
"""

from __future__ import annotations

import random
import re
import sys
import tempfile
import time
from pathlib import Path

from common import log, runner

ROOT = Path(__file__).resolve().parents[1]
TEST = "tests/integration/test_campaign.py::test_hostile_batches"
_COUNTS = re.compile(r"(\d+) passing, (\d+) failing")
_log = log.get("fuzz")


def _round(seed: int, saved: Path) -> dict:
    lines: list[str] = []
    start = time.monotonic()
    runner.run([sys.executable, "-m", "pytest", TEST, "-q", "-p", "no:cacheprovider", "--hypothesis-profile=fuzz",
                f"--hypothesis-seed={seed}", "--hypothesis-show-statistics"],
               cwd=ROOT, env={"CAMPAIGN_FAILURES": str(saved)}, ok_codes=(0, 1), on_stdout=lines.append)
    output = "\n".join(lines)
    examples = sum(int(p) + int(f) for p, f in _COUNTS.findall(output))
    failed = bool(re.search(r"\b\d+ failed\b", lines[-1] if lines else ""))
    return {"seed": seed, "seconds": round(time.monotonic() - start, 1), "examples": examples,
            "failed": failed, "output": output}


def failure_text(output: str) -> str:
    """The failure section of a pytest run's output: the test's traceback and the falsifying example."""
    m = re.search(r"^_+ test_hostile_batches _+$(.*?)^(?:=+ (?:Hypothesis Statistics|short test summary))",
                  output, re.M | re.S)
    return (m.group(1) if m else output[-20000:]).strip()


def run(minutes: float, out_dir: str | None = None) -> dict:
    """Rounds until `minutes` have passed. Returns rounds, examples (test cases run, shrinking included),
    seconds, and failures (seed, pytest's failure text, folder of the saved failing batches)."""
    out = Path(out_dir or tempfile.mkdtemp(prefix="aggregator-dr-fuzz-"))
    out.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    deadline = start + minutes * 60
    rounds = []
    while time.monotonic() < deadline:
        seed = random.SystemRandom().randrange(2 ** 32)
        saved = out / f"seed-{seed}"
        _log.info("fuzz round %d, seed %d (%.1f min left)", len(rounds) + 1, seed,
                  (deadline - time.monotonic()) / 60)
        r = _round(seed, saved)
        _log.info("round done: %d examples in %.0fs%s", r["examples"], r["seconds"],
                  ", FAILED" if r["failed"] else "")
        if r["failed"]:
            (out / f"seed-{seed}.log").write_text(r["output"] + "\n")
        rounds.append(r)
    return {"rounds": len(rounds), "examples": sum(r["examples"] for r in rounds),
            "seconds": round(time.monotonic() - start, 1), "out": str(out),
            "failures": [{"seed": r["seed"], "text": failure_text(r["output"]),
                          "log": str(out / f"seed-{r['seed']}.log"), "saved": str(out / f"seed-{r['seed']}")}
                         for r in rounds if r["failed"]]}


def report(result: dict) -> str:
    lines = [f"fuzz: {result['examples']} examples in {result['rounds']} round(s), {result['seconds'] / 60:.1f} min; "
             f"{len(result['failures'])} failing round(s)"]
    for f in result["failures"]:
        lines += ["", f"---- seed {f['seed']} (rerun: ./run pytest {TEST} --hypothesis-profile=fuzz "
                      f"--hypothesis-seed={f['seed']}; log {f['log']}; failing batches saved in {f['saved']}/)",
                  f["text"]]
    return "\n".join(lines)
