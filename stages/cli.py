"""What every stage shares on its command line: arguments, configuration, the one-line summary, --json and
exit codes (0: every input handled; 1: an infrastructure error; 2: a usage or configuration error).

The summary is a type (Summary): a stage prints it as JSON with --json (`to_json`), and the host reads that
back into a Summary, with the exit code of the stage's process beside it (StageResult, dr/jobs/pipeline.py)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from dataclasses import dataclass, field

from common import config as dr_config
from common import log
from common.errors import DrError
from stages.layout import DataRoot
from stages.lock import LockTimeout, StageBusy

EXIT_OK, EXIT_INFRA, EXIT_USAGE = 0, 1, 2


@dataclass
class Summary:
    stage: str
    outcomes: Counter = field(default_factory=Counter)
    bytes_in: int = 0
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)      # infrastructure errors: the stage stopped
    failed: list[dict] = field(default_factory=list)     # inputs that failed this run, retried next run
    quarantined: list[dict] = field(default_factory=list)  # inputs set aside this run, with their reason
    flagged: list[dict] = field(default_factory=list)    # inputs stored with entries altered (see importer)
    recovered: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    _start: float = field(default_factory=time.monotonic, repr=False, compare=False)

    def count(self, outcome: str, n: int = 1) -> None:
        self.outcomes[outcome] += n

    def finish(self) -> "Summary":
        self.seconds = round(time.monotonic() - self._start, 3)
        return self

    def quarantine(self, source: str, reason: str, error: str, to: str = "") -> None:
        """Name one input set aside this run (counted as quarantined:<reason>)."""
        self.count(f"quarantined:{reason}")
        self.quarantined.append({"input": source, "reason": reason, "error": error[:500], "to": to})

    def fail(self, source: str, reason: str, error: str) -> None:
        """Name one input that failed this run; it stays where it is and is tried again next run."""
        self.count("failed")
        self.failed.append({"input": source, "reason": reason, "error": error[:500]})

    @property
    def exit_code(self) -> int:
        return EXIT_INFRA if self.errors or self.failed else EXIT_OK

    def line(self) -> str:
        parts = [f"{v} {k}" for k, v in sorted(self.outcomes.items())] or ["nothing to do"]
        mb = self.bytes_in / 1e6
        rate = f", {mb / self.seconds:.1f} MB/s" if self.seconds > 0 and mb > 0 else ""
        text = f"{self.stage}: {', '.join(parts)}; {mb:.1f} MB in {self.seconds:.1f}s{rate}"
        if self.failed:
            text += f"; {len(self.failed)} input(s) failed, tried again next run: " + \
                "; ".join(f"{f['input']}: {f['error']}" for f in self.failed[:3])
        if self.errors:
            text += f"; {len(self.errors)} error(s): " + "; ".join(self.errors[:3])
        return text

    def as_dict(self) -> dict:
        """The JSON object of `--json` (exit_code: the one this summary makes the stage exit with)."""
        return {"stage": self.stage, "outcomes": dict(self.outcomes), "bytes": self.bytes_in,
                "seconds": self.seconds, "errors": self.errors, "failed": self.failed,
                "quarantined": self.quarantined, "flagged": self.flagged, "recovered": self.recovered, "notes": self.notes,
                "exit_code": self.exit_code}

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), indent=2)

    @classmethod
    def from_dict(cls, data) -> "Summary":
        """The summary a stage printed (as_dict); ValueError naming what does not fit. exit_code is derived
        from errors and failed, so it is not read."""
        if not isinstance(data, dict):
            raise ValueError(f"a stage summary is a JSON object, not {type(data).__name__}")
        unknown = set(data) - _SUMMARY_KEYS
        missing = {"stage", "outcomes"} - set(data)
        if unknown or missing:
            raise ValueError("not a stage summary: " + "; ".join(
                ([f"unexpected key(s) {', '.join(sorted(unknown))}"] if unknown else [])
                + ([f"missing key(s) {', '.join(sorted(missing))}"] if missing else [])))
        outcomes = data["outcomes"]
        if not isinstance(data["stage"], str) or not isinstance(outcomes, dict) or \
                not all(isinstance(k, str) and type(v) is int for k, v in outcomes.items()):
            raise ValueError(f"not a stage summary: stage {data['stage']!r}, outcomes {outcomes!r:.200}")
        lists = {}
        for name, kind in (("errors", str), ("failed", dict), ("quarantined", dict), ("flagged", dict),
                           ("recovered", str), ("notes", str)):
            value = data.get(name, [])
            if not isinstance(value, list) or not all(isinstance(v, kind) for v in value):
                raise ValueError(f"not a stage summary: {name} is not a list of {kind.__name__}")
            lists[name] = value
        for name, kind in (("bytes", int), ("seconds", (int, float))):
            if isinstance(data.get(name, 0), bool) or not isinstance(data.get(name, 0), kind):
                raise ValueError(f"not a stage summary: {name} is {data[name]!r}")
        return cls(stage=data["stage"], outcomes=Counter(outcomes), bytes_in=data.get("bytes", 0),
                   seconds=data.get("seconds", 0.0), **lists)

    @classmethod
    def from_json(cls, text: str) -> "Summary":
        """The summary a stage printed with --json; ValueError when it is not one."""
        return cls.from_dict(json.loads(text))


_SUMMARY_KEYS = {"stage", "outcomes", "bytes", "seconds", "errors", "failed", "quarantined", "flagged",
                 "recovered", "notes", "exit_code"}


@dataclass
class StageResult:
    """One run of a stage as the host sees it: the summary it printed and the exit code of its process
    (normally summary.exit_code)."""
    summary: Summary
    exit_code: int

    @property
    def stage(self) -> str:
        return self.summary.stage

    @property
    def stopped(self) -> bool:
        """The stage hit an infrastructure or usage error: the stages after it do not run. Inputs that failed
        on their own (summary.failed, tried again next run) do not stop the pipeline."""
        return bool(self.summary.errors) or self.exit_code not in (EXIT_OK, EXIT_INFRA)

    def as_dict(self) -> dict:
        """The summary's JSON object with the process's exit code (`invoke pipeline --json`)."""
        return self.summary.as_dict() | {"exit_code": self.exit_code}

    @classmethod
    def from_dict(cls, data) -> "StageResult":
        summary = Summary.from_dict(data)
        code = data.get("exit_code", summary.exit_code)
        if type(code) is not int:
            raise ValueError(f"not a stage summary: exit_code is {code!r}")
        return cls(summary, code)

    @classmethod
    def from_output(cls, stdout: str, exit_code: int) -> "StageResult":
        """What a stage's process printed with --json, and its exit code; ValueError when it printed no
        summary."""
        return cls(Summary.from_json(stdout), exit_code)


def parser(stage: str, description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"python -m stages.{stage}", description=description)
    p.add_argument("--data-root", help="the data root (default: data_root from the configuration)")
    p.add_argument("--config", help="configuration file (TOML); in a stage's image the host passes the one it "
                   "derived for the stage (dr/jobs/contract.py)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override one configuration key, e.g. --set db.host=aggregator-dr-db (repeatable; for "
                   "operators at a shell: the host never passes it)")
    return p


def overrides(args) -> dict:
    out = dr_config.parse_overrides(args.set)
    if args.data_root:
        out["data_root"] = args.data_root
    return out


def load(args) -> tuple[dr_config.Config, DataRoot]:
    cfg = dr_config.load(args.config, overrides(args))
    return cfg, DataRoot(cfg.data_root)


def main(stage: str, description: str, run, argv=None, modes: dict | None = None) -> int:
    """Parse arguments, load the configuration, run `run(cfg, data_root) -> Summary`, report, exit code.
    modes: {flag: (help, another run)}: the stage's other jobs, one of which a flag picks instead."""
    p = parser(stage, description)
    for flag, (help_text, _) in (modes or {}).items():
        p.add_argument(flag, action="store_true", help=help_text)
    args = p.parse_args(argv)
    chosen = [fn for flag, (_, fn) in (modes or {}).items() if getattr(args, flag[2:].replace("-", "_"))]
    if len(chosen) > 1:
        p.error("pick one of " + ", ".join(modes or {}))
    log.setup()
    try:
        cfg, dr = load(args)
        summary = (chosen[0] if chosen else run)(cfg, dr)
    except DrError as exc:
        print(f"{stage}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except (LockTimeout, StageBusy) as exc:
        print(f"{stage}: {exc}", file=sys.stderr)
        return EXIT_INFRA
    except OSError as exc:
        print(f"{stage}: infrastructure error: {exc}", file=sys.stderr)
        return EXIT_INFRA
    print(summary.to_json() if args.json else summary.line())
    return summary.exit_code
