"""The host-loss drill (issue 22): the Aggregator's host destroyed at moments picked over the whole flow, rebuilt
each time from the off-site copy alone with the Go module proxy out of reach; no report may be lost or doubled.

The drill brings up an Aggregator of its own on this Docker Engine (instance `<instance>-loss`), in a work
folder (under drill.work_dir, or <cache_dir>/drill) that holds:
- `host/`: everything the Aggregator's host keeps on its disk: the data root, the local repository, the Go
  build cache (cache_dir), the job history, the status page and gauges. With the database's volume and every
  container of the instance, this is what a loss destroys;
- `recovery/`: the operator's off-host medium: the secrets and the configuration file (kept);
and beside it two collectors (`alpha`, `beta`: collector containers with empty archives) and the off-site
rest-server, which stand for other hosts and are never lost. A feeder thread writes reports (dr/drills/feed.py,
numbered on across the drill, ids unique to it) into the collectors in turn, each atomically (a dot-folder,
then a rename), all through the drill except while it checks.

The first Aggregator is made by `rebuild` and one cycle of its jobs (pipeline, set, off-site copy, release),
so that the off-site repository holds a set. Then each round:
1. the flow (dr/drills/loss_flow.py: every pipeline stage, take, copy, release, step by step, in a process
   group of its own) runs until the round's moment (MOMENTS: during a step, after a random part of the
   time that step took last, or right after one; in its first or second cycle), where the host is destroyed: the flow killed, every
   container of the instance but the collectors and the off-site server removed at once (no clean stop),
   the database volume and `host/` deleted;
2. the runbook's section for this loss is executed as the operator would, block by block (its blocks marked
   `host-loss drill: run: ...`, dr/drills/runbook.py), in bash on this host with the drill's configuration
   (AGGREGATOR_DR_CONFIG) and GOPROXY=off: `rebuild` (from the off-site copy; the feeder still writing),
   `pipeline` (the feeder paused first), then the check: every report the feeder wrote is in the archive
   exactly once and in the database exactly once, and nothing else is; then `release` (a set, its off-site
   copy and the release), after which both collectors must hold nothing.
The moments are taken in turn, in an order the seed shuffles; the report (drill_reports.HostLossReport) has
each round's moment, what the flow was doing when the host was lost, the reports pulled again from the
collectors, the time from the rebuild's start to every report back, and the closing figures.

This host's Docker images and build cache stay (a real new host builds them: the bare-host drill proves that);
the drill's own Aggregator uses the configuration's defaults, not the operator's.
"""

from __future__ import annotations

import collections
import contextlib
import datetime as dt
import queue
import random
import shutil
import socket
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from common import config, log, runner
from common.config import Config
from common.errors import DrError, FailedWithResult
from dr.drills import drill_reports, feed, runbook
from dr.drills.drill_reports import HostLossReport, LossRound, StepRow
from dr.engine import docker_api
from dr.jobs import backup, pipeline, rebuild, release
from dr.machine import configfile, gobuild
from dr.services import collector, offsite, stack
from stages import journal
from stages.layout import DataRoot

_log = log.get("host-loss")

ROOT = Path(__file__).resolve().parents[2]
COLLECTORS = ("alpha", "beta")
# What the host's loss is aimed at: (the flow's step, "during" it or right "after" it).
MOMENTS = {
    "mid-pull": ("sync", "during"),
    "after-pull": ("sync", "after"),
    "mid-import": ("importer", "during"),
    "after-set": ("take", "after"),
    "mid-copy": ("copy", "during"),  # a partial set off-site (append-only): the newest complete one restores
    "after-copy": ("copy", "after"),
    "mid-release": ("release", "during"),
}
ELSEWHERE = ("offsite", *(collector.service(name) for name in COLLECTORS))  # services a loss spares
FIRST_GUESS = 3.0  # seconds a step takes, before the drill has seen it run
CYCLES = 2  # the moment comes in the flow's first or second cycle (the second pulls what came in the first)
STEP_TIMEOUT = 900  # seconds the flow may take for one step
BLOCK_TIMEOUT = 1800  # seconds a runbook block may take
OUTPUT_TAIL = 25


class HostLossFailed(FailedWithResult):
    """The host-loss drill failed: `result` is its report (saved), or None when it failed before it had one."""


def plan(seed: int, rounds: int) -> list[str]:
    """The moment of each round: every moment once in a shuffled order, then again in another. Pure."""
    rng = random.Random(seed)
    out: list[str] = []
    while len(out) < rounds:
        batch = list(MOMENTS)
        rng.shuffle(batch)
        out += batch
    return out[:rounds]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def drill_config(cfg: Config, work: Path) -> Config:
    """The drill's Aggregator: the configuration's defaults, in the work folder, with the off-site server of its
    own (no collectors yet)."""
    host, medium, instance = work / "host", work / "recovery", f"{cfg.instance}-loss"
    values = {"instance": instance, "data_root": str(host / "data"), "secrets_dir": str(medium / "secrets"),
              "backup.repository": str(host / "repo"), "cache_dir": str(host / "cache"),
              "host.min_free_gb": cfg.host.min_free_gb, "db.port": free_port(), "webmirror.port": free_port(),
              "monitoring.textfile_dir": str(host / "metrics"), "drill.history_dir": str(host / "drills"),
              "history.dir": str(host / "history"), "status.page_dir": str(host / "status"),
              "offsite.serve_port": free_port()}
    draft = config.load(overrides=values)
    values.update({"offsite.repository": offsite.repository_url(draft), "offsite.network": offsite.network_name(draft)})
    return config.load(overrides=values)


def config_file(cfg: Config, work: Path) -> Path:
    """The configuration written on the off-host medium, as the operator keeps it."""
    path = work / "recovery" / "config.toml"
    path.write_text(configfile.to_toml(cfg.as_dict()))
    return path


def remove_all(cfg: Config) -> None:
    """Everything of the drill's instance in Docker: what a killed earlier drill left, or this one at its end."""
    offsite.stop(cfg, remove_data=True)
    docker_api.remove_instance_containers(cfg.instance)
    docker_api.remove_volume(stack.pg_volume_name(cfg))
    docker_api.remove_network(stack.network_name(cfg))


def destroy(cfg: Config, host: Path, flow: runner.Spawned | None) -> None:
    """The host lost: the flow's processes killed, every container of the instance but those of other hosts
    (ELSEWHERE) removed at once, the database volume and the host's folder deleted."""
    if flow is not None:
        flow.kill()
    for c in docker_api.client().containers.list(all=True,
                                                 filters={"label": f"{docker_api.INSTANCE_LABEL}={cfg.instance}"}):
        if c.labels.get("org.aggregator-dr.service", "") not in ELSEWHERE:
            with contextlib.suppress(Exception):
                c.remove(force=True, v=True)
    docker_api.remove_volume(stack.pg_volume_name(cfg))
    shutil.rmtree(host)


class Feeder:
    """Writes reports into the collectors in turn, one every interval seconds, while not paused; remembers each
    report's id and where it was written once the rename that publishes it there is done."""

    def __init__(self, containers: dict[str, object], interval: float):
        self.containers = containers
        self.interval = interval
        self.token = feed.token()
        self.written: dict[str, tuple[str, str]] = {}  # report id -> (collector, file name)
        self.errors: list[str] = []
        self._go = threading.Event()
        self._stop = threading.Event()
        self._busy = threading.Lock()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _write(self, n: int) -> None:
        names = list(self.containers)
        where = names[n % len(names)]
        name, content = next(iter(feed.files(self.token, 1, n).items()))
        collector.complete_in(self.containers[where], name, content)
        self.written[feed.report_id(self.token, n)] = (where, name)

    def _loop(self) -> None:
        n = 0
        while not self._stop.is_set():
            if not self._go.wait(0.2):
                continue
            with self._busy:
                if not self._go.is_set():
                    continue
                try:
                    self._write(n)
                    n += 1
                except Exception as exc:  # noqa: BLE001 -- named in the report, the drill goes on
                    self.errors.append(str(exc))
            self._stop.wait(self.interval)

    def resume(self) -> None:
        self._go.set()

    def pause(self) -> None:
        """No report is being written when this returns, and none is until resume."""
        self._go.clear()
        with self._busy:
            pass

    def close(self) -> None:
        self.pause()
        self._stop.set()
        self._thread.join()


class Flow:
    """The flow process (dr/drills/loss_flow.py) and its markers as events: (kind, step, time)."""

    def __init__(self, cfg_file: Path):
        self.events: queue.Queue = queue.Queue()
        self.failures: list[str] = []
        self.proc = runner.spawn([sys.executable, "-m", "dr.drills.loss_flow", "--config", str(cfg_file)], self._line,
                                 cwd=ROOT)

    def _line(self, line: str) -> None:
        words = line.split(" ", 2)
        if len(words) < 3 or words[0] != "@flow":
            return
        if words[1] == "failed":
            self.failures.append(words[2])
        else:
            self.events.put((words[1], words[2], time.monotonic()))

    def next(self) -> tuple[str, str, float]:
        try:
            return self.events.get(timeout=STEP_TIMEOUT)
        except queue.Empty:
            raise DrError(f"the flow printed nothing for {STEP_TIMEOUT} s; its last lines:\n"
                          + "\n".join(self.proc.tail)) from None


def lose_at(flow: Flow, moment: str, cycle: int, rng: random.Random, took: dict[str, float]) -> str:
    """Let the flow run up to the moment in its cycle-th cycle (took: seconds each step took when last seen,
    updated); returns what the flow was doing when it was reached. The caller destroys the host at once."""
    aimed, when = MOMENTS[moment]
    began: dict[str, float] = {}
    now = 0
    while True:
        kind, step, t = flow.next()
        if kind == "cycle":
            now = int(step)
        elif kind == "begin":
            began[step] = t
            if step == aimed and when == "during" and now == cycle:
                delay = rng.uniform(0, took.get(step, FIRST_GUESS))
                try:
                    kind, step, t = flow.events.get(timeout=delay)
                except queue.Empty:
                    return f"cycle {cycle}, during {aimed}, {delay:.1f} s in"
                took[step] = t - began[step]
                return (f"cycle {cycle}, right after {aimed} (it ended {took[step]:.1f} s in, before the {delay:.1f} s "
                        "aimed at)")
        elif kind == "end":
            took[step] = t - began.get(step, t)
            if step == aimed and when == "after" and now == cycle:
                return f"cycle {cycle}, after {aimed}, before the next step"
            if not flow.proc.send("go"):
                raise DrError("the flow stopped before the moment; its last lines:\n" + "\n".join(flow.proc.tail))


EXIT_MARK = "@host-loss-drill-exit"


def run_block(step: runbook.Step, env: dict[str, str]) -> tuple[StepRow, str]:
    """One runbook block in bash on this host (the checkout as the working folder), checked against its markers."""
    row = StepRow(line=step.line, section=step.heading, commands=step.script)
    _log.info("== runbook line %d (%s):\n%s", step.line, step.heading, step.script)
    script = f"exec 2>&1\n(\nset -eo pipefail\n{step.script}\n)\necho \"{EXIT_MARK} $?\"\n"
    start = time.monotonic()
    try:
        output = runner.run(["bash", "-c", script], capture=True, env=env, cwd=ROOT, timeout=BLOCK_TIMEOUT)
    except DrError as exc:
        output = str(exc)
    body, mark, code = output.rstrip("\n").rpartition(f"{EXIT_MARK} ")
    if not mark:
        body, code = output, ""
    row.seconds = round(time.monotonic() - start, 1)
    row.exit_code = int(code) if code.isdigit() else -1
    row.output_tail = body.splitlines()[-OUTPUT_TAIL:]
    row.problems = runbook.problems(step, row.exit_code, body) or None
    return row, body


def archived_ids(dr: DataRoot) -> collections.Counter:
    """The report id in the header (first document) of every report (*.yaml) in the archive, counted (beside
    them: the importer's .jsonl and the index)."""
    found: collections.Counter = collections.Counter()
    base = dr.state("archive")
    for path in sorted(base.rglob("*.yaml")) if base.is_dir() else []:
        if path.is_file() and not any(part.startswith(".") for part in path.relative_to(base).parts):
            with open(path, "rb") as fh:
                header = next(yaml.load_all(fh, Loader=yaml.CSafeLoader), None)
            found[header.get("report_id") if isinstance(header, dict) else f"(no header: {path.name})"] += 1
    return found


def database_ids(cfg: Config) -> collections.Counter:
    """The report id of every reports document in the database, counted."""
    client = stack.db_client(cfg)
    try:
        return collections.Counter(d.get("report_id") for d in client[cfg.db.database]["reports"].find(
            {}, {"report_id": 1, "_id": 0}))
    finally:
        client.close()


def tally(written: set[str], where: collections.Counter, place: str) -> tuple[int, int, list[str]]:
    """(lost, doubled, problems) of one place's report ids against those written. Pure."""
    lost = sorted(written - set(where))
    doubled = sorted(i for i in written if where[i] > 1)
    others = sorted(str(i) for i in set(where) - written)
    problems = [f"{len(lost)} reports missing from the {place}, e.g. {lost[:3]}"] if lost else []
    problems += [f"{len(doubled)} reports more than once in the {place}, e.g. {doubled[:3]}"] if doubled else []
    problems += [f"{len(others)} reports in the {place} that no collector was given, e.g. {others[:3]}"] if others else []
    return len(lost), len(doubled), problems


def caught_up(dr: DataRoot, since: str) -> int:
    """The reports sync pulled again from the collectors' .pulled/ (info.caught_up) since the time since (the
    journal's format), per the journal."""
    return sum(1 for _, e in journal.committed(dr, stage="sync")
               if (e.get("info") or {}).get("caught_up") and e.get("time", "") >= since)


def left_on(container) -> list[str]:
    """What a collector still holds: its reports not pulled and those in .pulled/ (not the feeder's folder)."""
    r = container.exec_run(["sh", "-c", f"cd {collector.ARCHIVE} && find . -path ./{collector.COMPLETING} -prune -o -type f -printf '%P\\n'"])
    if r.exit_code:
        raise DrError(f"cannot list the collector {container.name}: {r.output.decode(errors='replace')}")
    return sorted(line for line in r.output.decode().splitlines() if line)


@dataclass
class Drill:
    """The drill's Aggregator and what stands around it."""
    cfg: Config
    work: Path
    cfg_file: Path
    feeder: Feeder
    env: dict[str, str]
    steps: dict[str, runbook.Step]

    @property
    def host(self) -> Path:
        return self.work / "host"


def section(text: str) -> dict[str, runbook.Step]:
    """The runbook's host-loss blocks by what they do (runbook.LOSS_RUNS, each once, in that order)."""
    steps = runbook.parse(text, "host-loss")
    found = [s.run for s in steps]
    if found != list(runbook.LOSS_RUNS):
        raise runbook.RunbookError(f"the runbook's host-loss drill blocks do {found}, not "
                                   f"{list(runbook.LOSS_RUNS)} (one each, in that order)")
    return {s.run: s for s in steps}


def seed_go_cache(cfg: Config, drill_cfg: Config) -> None:
    """The Go binaries this host built already, copied into the drill host's cache (its first rebuild then needs no
    Go build); a loss deletes them, and each rebuild after it gets them from the off-site copy."""
    if all(gobuild.cached(a, cfg.cache_path) for a in gobuild.ARTIFACTS):
        shutil.copytree(cfg.cache_path / "go", drill_cfg.cache_path / "go", dirs_exist_ok=True)


def prepare(cfg: Config, work: Path, interval: float) -> Drill:
    """The collectors, the off-site server and the first Aggregator with one cycle of its jobs done."""
    steps = section(runbook.RUNBOOK.read_text())
    dcfg = drill_config(cfg, work)
    remove_all(dcfg)
    (work / "recovery").mkdir(parents=True, exist_ok=True)
    entries = [collector.start(dcfg, name=name, samples=False) for name in COLLECTORS]
    dcfg = config.derive(dcfg, {"collectors": entries})
    cfg_file = config_file(dcfg, work)
    offsite.serve(dcfg)
    seed_go_cache(cfg, dcfg)
    rebuild.rebuild(dcfg)
    for where in (False, True):
        code, _ = backup.run(dcfg, "init", offsite=where)
        if code != 0:
            raise DrError(f"could not make the drill's {'off-site' if where else 'local'} repository (exit {code})")
    containers = {name: docker_api.client().containers.get(collector.container_name(dcfg, name)) for name in COLLECTORS}
    feeder = Feeder(containers, interval)
    feeder.resume()
    time.sleep(interval * 4)
    run = pipeline.run(dcfg)
    if run.exit_status():
        raise DrError("the drill's first pipeline run failed:\n" + run.render())
    for result in (release.snapshot(dcfg), release.offsite(dcfg)):
        if result.release is not None and result.release.failed:
            raise DrError("the release after the drill's first set failed: " + result.release.line())
    empty = work / "no-go-modules"  # the Go module proxy out of reach, and no module cached on this host either
    empty.mkdir()
    env = {config.ENV_VAR: str(cfg_file), "GOPROXY": "off", "GOMODCACHE": str(empty)}
    return Drill(dcfg, work, cfg_file, feeder, env, steps)


def one_round(d: Drill, number: int, moment: str, rng: random.Random, took: dict[str, float]) -> LossRound:
    row = LossRound(round=number, moment=moment)
    d.feeder.resume()
    flow = Flow(d.cfg_file)
    try:
        row.lost_at = lose_at(flow, moment, 1 + rng.randrange(CYCLES), rng, took)
    finally:
        destroy(d.cfg, d.host, flow.proc)
    row.problems += [f"the flow's step {f}" for f in flow.failures]
    _log.info("round %d: host lost %s (%s)", number, row.lost_at, moment)
    t0, since = time.monotonic(), journal.now()
    for what in runbook.LOSS_RUNS:
        if what == "pipeline":
            d.feeder.pause()
        block, output = run_block(d.steps[what], d.env)
        row.steps.append(block)
        if what == "rebuild":
            row.rebuild_seconds = block.seconds
        if block.problems:
            row.problems.append(f"runbook line {block.line} ({what}): " + "; ".join(block.problems))
            break
        if what == "pipeline":
            check_every_report(d, row, round(time.monotonic() - t0, 1), since)
            if row.lost or row.doubled:
                break
        if what == "release":
            left = [f"{name}:{f}" for name, c in d.feeder.containers.items() for f in left_on(c)]
            row.left_on_collectors = len(left)
            if left:
                row.problems.append(f"the collectors still hold {len(left)} files after the release, e.g. {left[:3]}")
    row.written = len(d.feeder.written)
    return row


def check_every_report(d: Drill, row: LossRound, seconds: float, since: str) -> None:
    """Every report written is in the archive exactly once and in the database exactly once, nothing else is."""
    dr = DataRoot(d.cfg.data_root)
    written = set(d.feeder.written)
    row.caught_up = caught_up(dr, since)
    lost_a, doubled_a, problems_a = tally(written, archived_ids(dr), "archive")
    lost_d, doubled_d, problems_d = tally(written, database_ids(d.cfg), "database")
    row.lost, row.doubled = max(lost_a, lost_d), max(doubled_a, doubled_d)
    row.problems += problems_a + problems_d
    if not (problems_a or problems_d):
        row.back_seconds = seconds


@contextlib.contextmanager
def work_folder(cfg: Config):
    base = Path(cfg.drill.work_dir or cfg.cache_path / "drill")
    work = base / f"host-loss-{cfg.instance}"
    if work.exists():
        _log.warning("removing %s, left by an earlier host-loss drill", work)
        shutil.rmtree(work)
    work.mkdir(parents=True)
    yield work


def run(cfg: Config, rounds: int = 3, seed: int | None = None, interval: float = 1.0, keep: bool = False
        ) -> HostLossReport:
    """The whole drill; returns its report (also saved in <drill.history_dir>/host-loss/). Raises HostLossFailed
    after saving a failing report."""
    if rounds < 1:
        raise DrError("--rounds must be at least 1")
    seed = seed if seed is not None else random.SystemRandom().randrange(1 << 31)
    rng = random.Random(seed)
    report = HostLossReport(started=dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), seed=seed,
                            verdict=drill_reports.FAIL)
    t0 = time.monotonic()
    d = None
    with work_folder(cfg) as work:
        try:
            d = prepare(cfg, work, interval)
            report.repository = d.cfg.offsite.repository
            report.prepare_seconds = round(time.monotonic() - t0, 1)
            took: dict[str, float] = {}
            for number, moment in enumerate(plan(seed, rounds), 1):
                row = one_round(d, number, moment, rng, took)
                report.rounds.append(row)
                report.problems += [f"round {number} ({moment}): {p}" for p in row.problems]
                if row.problems:
                    break
        except DrError as exc:
            report.problems.append(str(exc))
        finally:
            if d is not None:
                d.feeder.close()
                report.reports = len(d.feeder.written)
                report.problems += [f"the feeder: {e}" for e in d.feeder.errors]
            if not keep:
                with contextlib.suppress(DrError):
                    remove_all(d.cfg if d else drill_config(cfg, work))
                shutil.rmtree(work, ignore_errors=True)
    report.lost = sum(r.lost for r in report.rounds)
    report.doubled = sum(r.doubled for r in report.rounds)
    backs = [r.back_seconds for r in report.rounds if r.back_seconds is not None]
    report.back_seconds_max = max(backs) if backs else None
    report.total_seconds = round(time.monotonic() - t0, 1)
    report.verdict = drill_reports.FAIL if report.problems else drill_reports.PASS
    drill_reports.save(cfg, report, Path(cfg.drill.history_dir) / report.drill)
    if report.verdict != drill_reports.PASS:
        raise HostLossFailed("host-loss drill FAILED: " + "; ".join(report.problems), report)
    return report
