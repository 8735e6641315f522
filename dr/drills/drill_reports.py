"""Drill reports, for both drills (restore drill, bare-host drill): rendered as Markdown, saved as
<folder>/<time>.json and .md with the newest `drill.keep` kept, and read back as the history.

A report is a dict (JSON as saved) with at least `started` (UTC, `%Y-%m-%dT%H:%M:%SZ`), `verdict` and
`problems`. Both Markdown documents have one shape: a title with the verdict, bullets, one table, then the
problems."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

from common import atomic
from common.config import Config


def _document(title: str, bullets: list[str], header: tuple[str, ...], rows: list[tuple], problems: list[str]) -> str:
    lines = [f"# {title}", ""] + [f"- {b}" for b in bullets] + [""]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    if problems:
        lines += ["", "## Problems", ""] + [f"- {p}" for p in problems]
    return "\n".join(lines) + "\n"


def restore_markdown(report: dict) -> str:
    """The restore drill's report (dr/drills/drill.py) as Markdown."""
    return _document(
        f"Restore drill {report['started']}: {report['verdict']}",
        [f"set: {report.get('set', report['requested'])} (taken {report.get('set_started', '?')}; "
         f"recovery point {report.get('rpo_seconds', '?')} s before the drill)",
         f"repository: {report['repository']}",
         f"restored: {report.get('files_restored', 0)} files, {report.get('bytes_restored', 0) / 1e6:.1f} MB, "
         f"{report.get('documents_restored', 0)} database documents",
         f"restore time: {report['restore_seconds']} s; total {report['total_seconds']} s"],
        ("phase", "seconds"), list(report["phases"].items()), report["problems"])


def _step_result(row: dict) -> str:
    """A runbook drill's block as its report's last column: skipped (why), its problems, or its exit code."""
    if "skipped" in row:
        return f"skipped: {row['skipped']}"
    return "; ".join(row["problems"]) if row.get("problems") else f"exit {row['exit_code']}"


def bare_host_markdown(report: dict) -> str:
    """The bare-host drill's report (dr/drills/bare_host.py) as Markdown: one row per runbook block."""
    rows = [(r["line"], r["section"], r.get("seconds", ""), _step_result(r)) for r in report["steps"]]
    return _document(
        f"Bare-host drill {report['started']}: {report['verdict']}",
        [f"runbook executed on a fresh Debian server, restoring set {report['set']} from a copy of "
         f"{report['repository']}",
         f"total {report['total_seconds']} s (preparing the server {report.get('prepare_seconds', '?')} s)"],
        ("runbook line", "section", "seconds", "result"), rows, report["problems"])


def two_hosts_markdown(report: dict) -> str:
    """The two-host drill's report (dr/drills/two_hosts.py) as Markdown: one row per runbook block, with its server."""
    rows = [(r["line"], r["section"], r.get("host", ""), r.get("seconds", ""), _step_result(r))
            for r in report["steps"]]
    return _document(
        f"Two-host drill {report['started']}: {report['verdict']}",
        [f"runbook executed on two fresh Debian servers (the Aggregator's and the database's), starting from set "
         f"{report['set']} of a copy of {report['repository']}",
         f"total {report['total_seconds']} s (preparing {report.get('prepare_seconds', '?')} s)"],
        ("runbook line", "section", "server", "seconds", "result"), rows, report["problems"])


def save(cfg: Config, report: dict, folder: Path | None = None,
         render: Callable[[dict], str] = restore_markdown) -> Path:
    """Write <folder>/<time>.json and .md (render makes the Markdown); keep the newest drill.keep reports.
    folder: the drill history (drill.history_dir) by default. Returns the JSON file."""
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


def history(cfg: Config, folder: Path | None = None) -> list[dict]:
    """The saved drill reports, newest first (folder: drill.history_dir by default)."""
    hist = folder or Path(cfg.drill.history_dir)
    out = []
    for p in sorted(hist.glob("*.json"), reverse=True) if hist.is_dir() else []:
        try:
            out.append(json.loads(p.read_text()))
        except ValueError:
            out.append({"started": p.stem, "verdict": "unreadable", "problems": [f"{p} is not valid JSON"]})
    return out
