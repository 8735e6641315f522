"""What every stage shares on its command line: arguments, configuration, the one-line summary, --json and
exit codes (0: every input handled; 1: an infrastructure error; 2: a usage or configuration error).

A stage's run has one result, its Summary (a record, common/records.py): the stage prints it as JSON with
--json, the host reads that back into a Summary (dr/jobs/pipeline.py) and puts the container's exit code in
it."""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field

from common import config as dr_config
from common import log
from common.errors import DrError
from common.records import Record, key, local, optional
from stages import follow
from stages.layout import DataRoot
from stages.lock import LockTimeout, StageBusy

EXIT_OK, EXIT_INFRA, EXIT_USAGE = 0, 1, 2


@dataclass
class Failed(Record):
    """An input that failed this run; it stays where it is and is tried again next run."""
    input: str
    reason: str
    error: str


@dataclass
class Quarantined(Record):
    """An input set aside this run: why, and where it went."""
    input: str
    reason: str
    error: str
    to: str = ""


@dataclass
class Flagged(Record):
    """An input stored with entries altered: the sanitizer's dropped entries, or the importer's omitted and
    refused ones (each stage gives its own counts; the others stay out of the JSON)."""
    input: str
    to: str
    dropped_entries: int | None = optional()
    omitted_entries: int | None = optional()
    refused_entries: int | None = optional()
    report_refused: bool | None = optional()


@dataclass
class CollectorPull(Record):
    """What sync did with one collector this run: reached or not (and why not), the closed reports it listed
    there, pulled, and left there after the run (not pulled yet, or set aside as poison); what it holds after
    the run in its .pulled/ folder (pulled, kept there until a release deletes them; [sync] release): how many
    files, their bytes and the oldest one's modification time (UTC, `%Y-%m-%dT%H:%M:%SZ`)."""
    collector: str
    reached: bool = False
    listed: int = 0
    pulled: int = 0
    left: int = 0
    bytes: int = 0
    error: str | None = optional()
    held: int = 0
    held_bytes: int = 0
    oldest_held: str | None = optional()


@dataclass
class Summary(Record):
    """One run of a stage: what became of its inputs, and its exit code (set by `finish`; on the host, the
    container's own)."""
    stage: str
    outcomes: dict[str, int] = field(default_factory=dict)
    bytes_in: int = key("bytes", default=0)
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)            # infrastructure errors: the stage stopped
    failed: list[Failed] = field(default_factory=list)         # inputs that failed this run, retried next run
    quarantined: list[Quarantined] = field(default_factory=list)  # inputs set aside this run, with their reason
    flagged: list[Flagged] = field(default_factory=list)       # inputs stored with entries altered
    recovered: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    collectors: list[CollectorPull] = field(default_factory=list)  # sync: one per collector tried
    exit_code: int = EXIT_OK
    started: float = local(default_factory=time.monotonic)

    def count(self, outcome: str, n: int = 1) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + n

    def finish(self) -> "Summary":
        """The run is over: its time, and its exit code (1 when it hit errors or inputs failed, else 0)."""
        self.seconds = round(time.monotonic() - self.started, 3)
        self.exit_code = EXIT_INFRA if self.errors or self.failed else EXIT_OK
        return self

    def quarantine(self, source: str, reason: str, error: str, to: str = "") -> None:
        """Name one input set aside this run (counted as quarantined:<reason>)."""
        self.count(f"quarantined:{reason}")
        self.quarantined.append(Quarantined(source, reason, error[:500], to))

    def fail(self, source: str, reason: str, error: str) -> None:
        """Name one input that failed this run; it stays where it is and is tried again next run."""
        self.count("failed")
        self.failed.append(Failed(source, reason, error[:500]))

    @property
    def stopped(self) -> bool:
        """The stage hit an infrastructure or usage error: the stages after it do not run. Inputs that failed
        on their own (`failed`, tried again next run) do not stop the pipeline."""
        return bool(self.errors) or self.exit_code not in (EXIT_OK, EXIT_INFRA)

    def render(self) -> str:
        """One line: counts per outcome, MB, seconds, and the first failed inputs and errors."""
        parts = [f"{v} {k}" for k, v in sorted(self.outcomes.items())] or ["nothing to do"]
        mb = self.bytes_in / 1e6
        rate = f", {mb / self.seconds:.1f} MB/s" if self.seconds > 0 and mb > 0 else ""
        text = f"{self.stage}: {', '.join(parts)}; {mb:.1f} MB in {self.seconds:.1f}s{rate}"
        if self.failed:
            text += f"; {len(self.failed)} input(s) failed, tried again next run: " + \
                "; ".join(f"{f.input}: {f.error}" for f in self.failed[:3])
        if self.errors:
            text += f"; {len(self.errors)} error(s): " + "; ".join(self.errors[:3])
        return text


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


def main(stage: str, description: str, run, argv=None, modes: dict | None = None, waiting=None) -> int:
    """Parse arguments, load the configuration, run `run(cfg, data_root) -> Summary`, report, exit code.
    modes: {flag: (help, another run)}: the stage's other jobs, one of which a flag picks instead. waiting:
    `waiting(data_root) -> tuple` of the inputs that wait for the stage; with it, `--follow` runs the stage
    whenever inputs wait (stages/follow.py) until it is stopped."""
    p = parser(stage, description)
    for flag, (help_text, _) in (modes or {}).items():
        p.add_argument(flag, action="store_true", help=help_text)
    if waiting is not None:
        p.add_argument("--follow", action="store_true", help="run whenever inputs wait, until stopped (SIGTERM); "
                       "each run's summary is one JSON line")
        p.add_argument("--interval", type=float, default=0.5, help="--follow: seconds between looks at the inputs")
    args = p.parse_args(argv)
    chosen = [fn for flag, (_, fn) in (modes or {}).items() if getattr(args, flag[2:].replace("-", "_"))]
    if len(chosen) > 1 or (chosen and getattr(args, "follow", False)):
        p.error("pick one of " + ", ".join([*(modes or {}), *(["--follow"] if waiting else [])]))
    log.setup()
    try:
        cfg, dr = load(args)
        if getattr(args, "follow", False):
            return follow.follow(cfg, dr, run, waiting, args.interval)
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
    print(summary.to_json() if args.json else summary.render())
    return summary.exit_code
