"""Restore drills: prove that a snapshot set restores, and measure how long it takes, without touching the
live system.

A drill works in a sandbox: a throwaway `db` container (testcontainers) on a network of its own, a throwaway
data folder, and a secrets folder holding only a copy of the repository password(s) and a fresh database
password. In it, it restores the set (files and database, each verified against the manifest by the
restore itself), asks the database through pymongo for the reports per test and country (must equal the
manifest's), runs the sanitizer and importer over whatever the set held in raw/, staging/ and reports/, and
checks that nothing doubled (one reports document per archived report, as many measurements as the reports
say). Then it tears the sandbox down and writes a report (JSON and Markdown) into the drill history.

Phase timings: `start` (sandbox and database up), `restore` (files and dump, verified), `queries`,
`pipeline`. The restore time is start + restore; the recovery point (RPO) is the set's age.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from common import config as dr_config
from common import db as dbconn
from common import log, secrets
from common.config import Config
from common.errors import DrError
from dr import backup, docker_api, pipeline

_log = log.get("drill")


class DrillFailed(DrError):
    pass


@dataclass
class Sandbox:
    cfg: Config  # the drill's configuration: its own instance name, data root, secrets and database port
    client: object  # pymongo client of the throwaway database (from the host, over loopback)

    @property
    def db(self):
        return self.client[self.cfg.db.database]


@contextlib.contextmanager
def sandbox(cfg: Config, label: str = "drill") -> Iterator[Sandbox]:
    """A throwaway data folder and database for cfg's repository; everything is removed on exit."""
    # No Ryuk reaper: it is an image from a registry (never pulled here); the sandbox removes what it made.
    os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")
    os.environ.setdefault("TESTCONTAINERS_CONNECTION_MODE", "docker_host")
    os.environ.setdefault("TC_HOST", "127.0.0.1")
    from testcontainers.core.container import DockerContainer

    work = Path(cfg.drill.work_dir or cfg.cache_path / "drill")
    work.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f"{label}-", dir=work))
    container = None
    client = None
    instance = f"{cfg.instance}-{label}"
    try:
        sec = tmp / "secrets"
        for name in (secrets.RESTIC_PASSWORD, secrets.OFFSITE_RESTIC_PASSWORD, secrets.OFFSITE_HTTP_PASSWORD):
            if secrets.path(cfg.secrets_dir, name).exists():
                secrets.put(sec, name, secrets.read(cfg.secrets_dir, name))
        pw_path, _ = secrets.ensure(sec, secrets.DB_PASSWORD)
        docker_api.ensure_network(instance)
        container = (DockerContainer(cfg.image("db"))
                     .with_env("DB_NAME", cfg.db.database).with_env("DB_USER", cfg.db.user)
                     .with_volume_mapping(str(pw_path), "/run/secrets/db-password", "ro")
                     .with_kwargs(network=instance, labels={"org.aggregator-dr.instance": instance})
                     .with_name(f"{instance}-db"))
        container.ports["27017/tcp"] = ("127.0.0.1", None)  # loopback only, a free port
        container.start()
        port = int(container.get_exposed_port(27017))
        password = secrets.read(sec, secrets.DB_PASSWORD)
        dbconn.wait_ready("127.0.0.1", port, cfg.db.user, password, cfg.db.database, cfg.host.health_timeout)
        drill_cfg = dr_config.derive(cfg, {"instance": instance, "data_root": str(tmp / "data"),
                                           "secrets_dir": str(sec), "db.host": "127.0.0.1", "db.port": port,
                                           "collectors": []})
        client = dbconn.client("127.0.0.1", port, cfg.db.user, password, cfg.db.database, socketTimeoutMS=600000)
        yield Sandbox(drill_cfg, client)
    finally:
        if client is not None:
            client.close()
        if container is not None:
            try:
                container.stop()
            except Exception as exc:  # teardown must go on: the network and folder are still to remove
                _log.warning("could not remove the drill database container: %s", exc)
        docker_api.remove_network(instance)
        shutil.rmtree(tmp, ignore_errors=True)


def _archived_reports(data_root: Path) -> list[str]:
    base = data_root / "archive"
    return sorted(p.name for p in base.rglob("*.yaml") if not p.name.startswith(".")) if base.is_dir() else []


def _doubles(sb: Sandbox) -> list[str]:
    """After the pipeline: one reports document per archived report, and as many measurements as the reports
    documents announce."""
    problems = []
    archived = _archived_reports(Path(sb.cfg.data_root))
    reports = dbconn.count(sb.db, "reports")
    if reports != len(archived):
        problems.append(f"{reports} reports documents for {len(archived)} archived reports")
    files = [d["report_file"] for d in sb.db["reports"].find({}, {"report_file": 1})]
    if len(files) != len(set(files)):
        problems.append(f"{len(files) - len(set(files))} reports imported twice")
    announced = sum(int(d.get("entries") or 0) for d in sb.db["reports"].find({}, {"entries": 1}))
    measurements = dbconn.count(sb.db, "measurements")
    if measurements != announced:
        problems.append(f"{measurements} measurements, the reports announce {announced}")
    return problems


def _resolve(cfg: Config, wanted: str, offsite: bool) -> str:
    """The set id to drill. For latest: the newest set whose parts are all there; when its manifest cannot
    be read, the drill fails naming it (an older set is not a drill of the latest one)."""
    if wanted != "latest":
        return wanted
    code, rows = backup.run(cfg, "list", offsite=offsite)
    if code != 0:
        raise DrillFailed(f"cannot list the snapshot sets (exit {code}); the reason is in the log above")
    for row in rows:
        if row.get("problem"):
            raise DrillFailed(f"set {row['set']}, the newest, cannot be restored: {row['problem']}")
        if row["complete"]:
            return row["set"]
    raise DrillFailed("the repository has no complete snapshot set")


def run(cfg: Config, wanted: str = "latest", offsite: bool = False) -> dict:
    """One drill; returns its report (also saved in the history). Raises DrillFailed after saving a failing
    report."""
    from snapshots import manifest

    started = dt.datetime.now(dt.timezone.utc)
    phases: dict[str, float] = {}
    report = {"started": started.strftime("%Y-%m-%dT%H:%M:%SZ"), "repository": cfg.offsite.repository if offsite
              else cfg.backup.repository, "requested": wanted, "problems": []}
    t = time.monotonic()
    try:
        report["set"] = wanted = _resolve(cfg, wanted, offsite)
        with sandbox(cfg) as sb:
            phases["start"] = round(time.monotonic() - t, 2)
            t = time.monotonic()
            code, result = backup.run(sb.cfg, "restore", extra=("--snapshot-set", wanted), offsite=offsite)
            phases["restore"] = round(time.monotonic() - t, 2)
            if code != 0 or not result:
                raise DrillFailed(f"the restore of set {wanted} failed (exit {code}); its reason is in the log above")
            m = result["manifest"]
            set_time = dt.datetime.strptime(m["started"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc)
            report.update(set=result["set"], set_started=m["started"],
                          rpo_seconds=round((started - set_time).total_seconds()),
                          bytes_restored=result["files"]["bytes"], files_restored=result["files"]["files"],
                          documents_restored=sum(result["db"]["collections"].values()))
            t = time.monotonic()
            tally = manifest.report_tally(sb.db)
            report["problems"] += manifest.compare({"database": {"reports_by_test_country": m["database"].get(
                "reports_by_test_country", tally)}}, {"database": {"reports_by_test_country": tally}})
            report["queries"] = {"test_country_pairs": len(tally), "reports": sum(v[0] for v in tally.values())}
            phases["queries"] = round(time.monotonic() - t, 2)
            t = time.monotonic()
            pending = sum(m["directories"][s]["reports"] for s in ("raw", "staging", "reports"))
            stages = pipeline.run(sb.cfg) if pending else []
            report["pipeline"] = {"pending_reports": pending,
                                  "stages": {r["stage"]: r["outcomes"] for r in stages}}
            report["problems"] += [f"stage {r['stage']} failed: {'; '.join(r['errors'][:3])}" for r in stages
                                   if r["exit_code"] != 0]
            report["problems"] += _doubles(sb)
            phases["pipeline"] = round(time.monotonic() - t, 2)
    except DrError as exc:
        report["problems"].append(str(exc))
    except Exception as exc:  # anything unexpected is a failed drill, with a report that says what happened
        report["problems"].append(f"unexpected {type(exc).__name__}: {exc}")
    report["phases"] = phases
    report["restore_seconds"] = round(phases.get("start", 0) + phases.get("restore", 0), 2)
    report["total_seconds"] = round(sum(phases.values()), 2)
    report["verdict"] = "pass" if not report["problems"] and "set_started" in report else "FAIL"
    save(cfg, report)
    if report["verdict"] != "pass":
        raise DrillFailed(f"drill of set {report.get('set', wanted)} FAILED: " + "; ".join(report["problems"]))
    return report


def markdown(report: dict) -> str:
    lines = [f"# Restore drill {report['started']}: {report['verdict']}", "",
             f"- set: {report.get('set', report['requested'])} (taken {report.get('set_started', '?')}; "
             f"recovery point {report.get('rpo_seconds', '?')} s before the drill)",
             f"- repository: {report['repository']}",
             f"- restored: {report.get('files_restored', 0)} files, {report.get('bytes_restored', 0) / 1e6:.1f} MB, "
             f"{report.get('documents_restored', 0)} database documents",
             f"- restore time: {report['restore_seconds']} s; total {report['total_seconds']} s", "",
             "| phase | seconds |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in report["phases"].items()]
    if report["problems"]:
        lines += ["", "## Problems", ""] + [f"- {p}" for p in report["problems"]]
    return "\n".join(lines) + "\n"


def save(cfg: Config, report: dict, folder: Path | None = None, render=markdown) -> Path:
    """Write <folder>/<time>.json and .md (render makes the Markdown); keep the newest drill.keep reports.
    folder: the drill history (drill.history_dir) by default."""
    from common import atomic

    hist = folder or Path(cfg.drill.history_dir)
    hist.mkdir(parents=True, exist_ok=True)
    stem = report["started"].replace(":", "").replace("-", "")
    atomic.write_bytes(hist / f"{stem}.md", render(report).encode())
    atomic.write_bytes(hist / f"{stem}.json", (json.dumps(report, indent=2) + "\n").encode())
    reports = sorted(hist.glob("*.json"))
    for old in reports[:-cfg.drill.keep]:
        old.unlink()
        old.with_suffix(".md").unlink(missing_ok=True)
    return hist / f"{stem}.json"


def history(cfg: Config) -> list[dict]:
    """The saved drill reports, newest first."""
    hist = Path(cfg.drill.history_dir)
    out = []
    for p in sorted(hist.glob("*.json"), reverse=True) if hist.is_dir() else []:
        try:
            out.append(json.loads(p.read_text()))
        except ValueError:
            out.append({"started": p.stem, "verdict": "unreadable", "problems": [f"{p} is not valid JSON"]})
    return out
