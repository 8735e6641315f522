"""What every stage shares on its command line: arguments, configuration, the one-line summary, --json and
exit codes (0: every input handled; 1: an infrastructure error; 2: a usage or configuration error)."""

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
    _start: float = field(default_factory=time.monotonic, repr=False)

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
        return {"stage": self.stage, "outcomes": dict(self.outcomes), "bytes": self.bytes_in,
                "seconds": self.seconds, "errors": self.errors, "failed": self.failed,
                "quarantined": self.quarantined, "flagged": self.flagged, "recovered": self.recovered, "notes": self.notes,
                "exit_code": self.exit_code}


def parser(stage: str, description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"python -m stages.{stage}", description=description)
    p.add_argument("--data-root", help="the data root (default: data_root from the configuration)")
    p.add_argument("--config", help="configuration file (TOML)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override one configuration key, e.g. --set db.host=aggregator-dr-db (repeatable)")
    return p


def overrides(args) -> dict:
    out = dr_config.parse_overrides(args.set)
    if args.data_root:
        out["data_root"] = args.data_root
    return out


def load(args) -> tuple[dr_config.Config, DataRoot]:
    cfg = dr_config.load(args.config, overrides(args))
    return cfg, DataRoot(cfg.data_root)


def main(stage: str, description: str, run, argv=None) -> int:
    """Parse arguments, load the configuration, run `run(cfg, data_root) -> Summary`, report, exit code."""
    args = parser(stage, description).parse_args(argv)
    log.setup()
    try:
        cfg, dr = load(args)
        summary = run(cfg, dr)
    except DrError as exc:
        print(f"{stage}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except (LockTimeout, StageBusy) as exc:
        print(f"{stage}: {exc}", file=sys.stderr)
        return EXIT_INFRA
    except OSError as exc:
        print(f"{stage}: infrastructure error: {exc}", file=sys.stderr)
        return EXIT_INFRA
    print(json.dumps(summary.as_dict(), indent=2) if args.json else summary.line())
    return summary.exit_code
