"""The static status page: the status model (dr/watch/model.py) and the rules' findings as one self-contained
HTML5 document, written after every job by dr/watch/publish.py for the web mirror to serve read-only.

Self-contained: inline CSS and inline SVG charts, no script, no external asset, no link but to its own
sections. Public: it shows no secret, no private path and no probe address. The figures it shows are
counts, times, sizes and names the model holds; every free text (a finding, an error, a message) goes through
`Private.scrub` first, which replaces what the configuration names as private (its folders, repositories,
the database's and the collectors' hosts, users, keys and ports, the secret files' contents) and any other
absolute path, URL, credentials or IPv4 address. The page is a pure function of the model: its times are the
model's, so the same model gives the same page.

Each chart is an <svg data-chart="NAME"> with one <circle> per point, each carrying data-value (empty when the
point has no value): `restore-seconds` and `recovery-point-seconds` over the last status.drills_shown drills,
`flow-imported` and `flow-failed` over the runs of stages in the last day (pipeline.flow).
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from pathlib import Path

from common.config import Config
from dr.jobs import history
from dr.watch.figures import (
    BackupsSection,
    CheckFigures,
    DatabaseSection,
    DiskSection,
    PipelineSection,
    RestoresSection,
    ago,
    size,
    span,
)
from dr.watch.model import FLOW_HOURS, StatusModel
from dr.watch.rules import Finding
from dr.watch.status import ALL_CLEAR

SECRET_FILE_MAX = 64 * 1024  # a secret file larger than this is no password or key: not read
SECRET_MIN = 6  # shorter lines of a secret file are left alone (they would blank out common words)
CHART_WIDTH, CHART_HEIGHT, CHART_PAD = 640, 180, 40
URL = re.compile(r"\b[a-z][a-z0-9+.-]*://\S+", re.IGNORECASE)
USERINFO = re.compile(r"[\w.%+-]+(?::[^@\s/]*)?@(?=[\w\[])")
IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w.])")
ABSOLUTE_PATH = re.compile(r"(?<![\w.~/\]-])/[\w.@%+=,~-]+(?:/[\w.@%+=,~-]*)*")

CSS = """
body{font-family:system-ui,sans-serif;margin:0 auto;max-width:72rem;padding:1rem;color:#1b1b1b;background:#fafafa}
h1{font-size:1.5rem;margin:.2rem 0}h2{font-size:1.2rem;margin:.2rem 0 .5rem}h3{font-size:1rem;margin:1rem 0 .3rem}
nav a{margin-right:1rem}section{background:#fff;border:1px solid #ddd;border-radius:6px;padding:.8rem;margin:1rem 0}
.banner.bad{background:#b00020;color:#fff;border-color:#7a0016}.banner.bad h2{color:#fff}
.banner.good{background:#1e7b34;color:#fff;border-color:#14561f;font-weight:bold}
.finding{margin:.5rem 0}.finding .rule{font-weight:bold}.finding p{margin:.2rem 0}
.computed{color:#555;font-size:.85rem;margin:0 0 .5rem}
table{border-collapse:collapse;margin:.3rem 0}th,td{border:1px solid #ddd;padding:.2rem .5rem;text-align:left}
th{background:#f0f0f0}td.num{text-align:right}.bad-text{color:#b00020;font-weight:bold}
dl{display:grid;grid-template-columns:max-content auto;gap:.2rem 1rem;margin:.3rem 0}dt{color:#555}dd{margin:0}
svg{background:#fff;border:1px solid #eee;max-width:100%;height:auto}
svg .axis{stroke:#999;stroke-width:1}svg .line{fill:none;stroke:#4a6fa5;stroke-width:1.5}
svg text{font-size:11px;fill:#555}svg .mark{fill:#4a6fa5}svg .mark.bad{fill:#b00020}
svg .mark.missing{fill:#fff;stroke:#999}
"""


# --- what must not be shown ---------------------------------------------------------------------------------

def secret_texts(secrets_dir: str) -> list[str]:
    """The secret files' contents (each whole, and each line), to be kept off the page; a file that cannot be
    read is left out."""
    out: list[str] = []
    root = Path(secrets_dir)
    try:
        files = [p for p in root.rglob("*") if p.is_file() and p.stat().st_size <= SECRET_FILE_MAX]
    except OSError:
        return out
    for path in sorted(files):
        try:
            text = path.read_text(errors="replace")
        except OSError:
            continue
        out += [t for t in [text.strip(), *(line.strip() for line in text.splitlines())] if len(t) >= SECRET_MIN]
    return out


def private_values(cfg: Config) -> list[tuple[str, str]]:
    """(value, what the page says instead) for everything the configuration names that the page must not show."""
    folders = [(cfg.data_root, "data root"), (cfg.secrets_dir, "secrets"), (cfg.cache_dir, "cache"),
               (cfg.history.dir, "history"), (cfg.drill.history_dir, "drill reports"),
               (cfg.drill.work_dir, "drill work folder"), (cfg.monitoring.textfile_dir, "metrics folder"),
               (cfg.status.page_dir, "page folder"), (cfg.pipeline.bridge_db, "bridge database"),
               (cfg.backup.repository, "repository"), (cfg.offsite.repository, "off-site repository"),
               (cfg.offsite.ca_file, "a file"), (cfg.db.ca_file, "a file"), (cfg.db.cert_file, "a file"),
               (cfg.db.key_file, "a file"), (cfg.db.host, "database host"), (cfg.db.postgres_host, "database host"),
               (cfg.monitoring.healthcheck_url, "healthcheck URL")]
    for c in cfg.collectors:
        folders += [(c.host, "collector host"), (c.key_file, "key file"), (c.archive_path, "collector folder"),
                    (f"{c.user}@", "")]
    ports = [cfg.db.port, cfg.db.postgres_port] + [c.port for c in cfg.collectors]
    out = [(v, f"[{label}]" if label else "") for v, label in folders if v]
    out += [(f":{p}", ":[port]") for p in ports] + [(f"port {p}", "port [port]") for p in ports]
    return out + [(s, "[secret]") for s in secret_texts(cfg.secrets_dir)]


def bounded(value: str) -> str:
    """A pattern for value, not inside a longer name or path (/data is not in /database)."""
    before = r"(?<![\w.-])" if value[0].isalnum() else ""
    after = r"(?![\w.-])" if value[-1].isalnum() else ""
    return before + re.escape(value) + after


class Private:
    """What the page must not show (from a configuration), and `scrub` to take it out of a text."""

    def __init__(self, cfg: Config):
        values = sorted(set(private_values(cfg)), key=lambda p: (-len(p[0]), p[0]))  # the longest first
        self.patterns = [(re.compile(bounded(v)), label) for v, label in values]

    def scrub(self, text: str) -> str:
        """text without any private value, URL, credentials, IPv4 address or absolute path."""
        for pattern, label in self.patterns:
            text = pattern.sub(lambda _, label=label: label, text)
        text = URL.sub("[URL]", text)
        text = USERINFO.sub("", text)
        text = IPV4.sub("[address]", text)
        return ABSOLUTE_PATH.sub("[path]", text)


# --- small pieces of HTML -----------------------------------------------------------------------------------

def esc(value: object) -> str:
    """A figure as text, escaped; "—" for None."""
    return "—" if value is None else html.escape(str(value))


def number(value: float | None) -> str:
    return "—" if value is None else f"{value:g}"


def table(headers: list[str], rows: list[list[str]], empty: str = "none") -> str:
    """A table of cells already escaped; `empty` (escaped here) when there is no row."""
    if not rows:
        return f"<p>{html.escape(empty)}</p>"
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def pairs(items: list[tuple[str, str]]) -> str:
    """A definition list: (label, value already escaped)."""
    return "<dl>" + "".join(f"<dt>{html.escape(k)}</dt><dd>{v}</dd>" for k, v in items) + "</dl>"


def section(anchor: str, title: str, computed: str, body: str) -> str:
    return (f'<section id="{anchor}"><h2>{html.escape(title)}</h2>'
            f'<p class="computed">computed {esc(computed)}</p>{body}</section>')


def when(stamp: str | None, age: int | None) -> str:
    """A time and its age: "2026-12-07T11:57:00Z (3 min ago)", or "never"."""
    return "never" if stamp is None else f"{esc(stamp)} ({esc(ago(age))})"


# --- charts -------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Point:
    """One mark of a chart: what it is (its tooltip), its value (None: no value), whether it went wrong, and
    where it is across (0..1; None: evenly spaced)."""
    label: str
    value: float | None
    bad: bool = False
    across: float | None = None


def chart(name: str, title: str, unit: str, points: list[Point]) -> str:
    """An inline SVG chart, one <circle> per point (data-value: its value), a line through those with one."""
    w, h, pad = CHART_WIDTH, CHART_HEIGHT, CHART_PAD
    top = max((p.value for p in points if p.value is not None), default=0) or 1
    marks, line = [], []
    for i, p in enumerate(points):
        across = p.across if p.across is not None else (i / (len(points) - 1) if len(points) > 1 else 0.5)
        x = round(pad + (w - 2 * pad) * across, 1)
        y = round(h - pad - (h - 2 * pad) * (p.value or 0) / top, 1)
        kind = "missing" if p.value is None else "bad" if p.bad else "ok"
        value = "" if p.value is None else f"{p.value:g}"
        if p.value is not None:
            line.append(f"{x},{y}")
        marks.append(f'<circle class="mark {kind}" cx="{x}" cy="{y}" r="4" data-value="{value}">'
                     f"<title>{html.escape(p.label)}: {value or 'no value'} {html.escape(unit)}</title></circle>")
    empty = "" if points else f'<text x="{w // 2}" y="{h // 2}" text-anchor="middle">nothing yet</text>'
    path = f'<polyline class="line" points="{" ".join(line)}"/>' if len(line) > 1 else ""
    return (f'<figure><figcaption>{html.escape(title)}</figcaption>'
            f'<svg data-chart="{html.escape(name)}" viewBox="0 0 {w} {h}" '
            f'width="{w}" height="{h}" role="img" aria-label="{html.escape(title)}">'
            f'<line class="axis" x1="{pad}" y1="{h - pad}" x2="{w - pad}" y2="{h - pad}"/>'
            f'<line class="axis" x1="{pad}" y1="{pad}" x2="{pad}" y2="{h - pad}"/>'
            f'<text x="{pad - 4}" y="{pad + 4}" text-anchor="end">{top:g}</text>'
            f'<text x="{pad - 4}" y="{h - pad + 4}" text-anchor="end">0</text>'
            f'<text x="{w - pad}" y="{h - pad + 16}" text-anchor="end">{html.escape(unit)}</text>'
            f"{empty}{path}{''.join(marks)}</svg></figure>")


# --- the findings -------------------------------------------------------------------------------------------

def banner(findings: list[Finding], private: Private) -> str:
    """The stalls and risks, red, each with its rule, what makes it hold and what to do; a green line when
    none holds."""
    if not findings:
        return f'<p id="findings" class="banner good">{html.escape(ALL_CLEAR)}</p>'
    items = "".join(
        f'<li class="finding {esc(f.severity)}"><span class="rule">{esc(f.severity)}: {esc(f.rule)}</span>'
        f'<p class="what">{esc(private.scrub(f.what))}</p><p class="todo">What to do: {esc(f.todo)}</p></li>'
        for f in findings)
    stalls = sum(1 for f in findings if f.severity == "stall")
    return (f'<section id="findings" class="banner bad"><h2>{stalls} stall(s), {len(findings) - stalls} risk(s)'
            f"</h2><ul>{items}</ul></section>")


# --- the sections -------------------------------------------------------------------------------------------

def flow_across(ended: str, computed: str) -> float:
    """Where a run's end falls in the last FLOW_HOURS before computed (0: their start, 1: computed)."""
    back = (history.parse_time(computed) - history.parse_time(ended)).total_seconds()
    return round(min(max(1 - back / (FLOW_HOURS * 3600), 0.0), 1.0), 4)


def pipeline(p: PipelineSection, private: Private) -> str:
    waiting = table(["state", "inputs", "oldest", "age"], [
        [esc(b.state + "/"), esc(b.count), esc(b.oldest), esc(None if b.oldest_age_seconds is None else
                                                              span(b.oldest_age_seconds))] for b in p.backlog])
    moved = "no journal yet" if p.last_move is None else when(p.last_move, p.last_move_age_seconds)
    quarantine = table(["reason", "inputs"], [[esc(k), esc(v)] for k, v in sorted(p.quarantine.items())], "empty")
    stages = table(["stage", "last success", "by"], [
        [esc(s.stage), when(s.ended, s.age_seconds), esc(s.job)] for s in p.stages])
    collectors = table(["collector", "last success", "still holds", "first tried", "now"], [
        [esc(c.collector), when(c.last_success, c.age_seconds), esc(c.left), esc(c.first_tried),
         f'<span class="bad-text">{esc(private.scrub(c.last_error))}</span>' if c.last_error else "ok"]
        for c in p.collectors], "no collector configured")
    runs = table(["ended", "outcome", "seconds", "moved", "rate"], [
        [esc(r.ended), esc(r.outcome), number(r.seconds), esc(size(r.bytes)),
         "—" if r.bytes_per_second is None else esc(f"{size(r.bytes_per_second)}/s")] for r in p.runs],
        "no run of the whole pipeline yet")
    imported = [Point(f"{f.ended} {f.job}", f.imported, f.outcome != "ok", flow_across(f.ended, p.computed))
                for f in p.flow]
    failed = [Point(f"{f.ended} {f.job}", f.failed, f.failed > 0, flow_across(f.ended, p.computed))
              for f in p.flow]
    moved_total = (f"in the last {FLOW_HOURS} h: {len(p.flow)} run(s) of stages; "
                   f"pulled {sum(f.pulled for f in p.flow)}, "
                   f"sanitized {sum(f.sanitized for f in p.flow)}, imported {sum(f.imported for f in p.flow)}, "
                   f"quarantined {sum(f.quarantined for f in p.flow)}, failed {sum(f.failed for f in p.flow)}")
    body = (f"<h3>Waiting</h3>{waiting}{pairs([('inputs waiting', esc(p.waiting)), ('last move', moved)])}"
            f"<h3>Quarantine</h3>{quarantine}{pairs([('poison', esc(p.poison))])}"
            f"<h3>Stages</h3>{stages}<h3>Collectors</h3>{collectors}<h3>Last runs of the pipeline</h3>{runs}"
            f"<h3>Flow over the last {FLOW_HOURS} hours</h3><p>{esc(moved_total)}</p>"
            + chart("flow-imported", f"inputs imported per run of stages, last {FLOW_HOURS} h", "inputs", imported)
            + chart("flow-failed", f"inputs that failed per run and wait for the next, last {FLOW_HOURS} h",
                    "inputs", failed))
    return section("pipeline", "Pipeline: does data flow", p.computed, body)


def check_row(name: str, c: CheckFigures | None) -> list[str]:
    if c is None:
        return [esc(name), "never", "—", "—", "—"]
    verdict = esc(c.verdict) if c.verdict == "ok" else f'<span class="bad-text">{esc(c.verdict)}</span>'
    return [esc(name), when(c.ended, c.age_seconds), verdict, esc(", ".join(c.failed_sets) or None),
            when(c.last_pass, c.last_pass_age_seconds)]


def backups(b: BackupsSection) -> str:
    s = b.newest_set
    newest = "<p>no complete set taken or restored here</p>" if s is None else pairs([
        ("set", esc(s.set_id)), ("from", esc(s.source)), ("started", esc(s.started)),
        ("age (recovery point)", esc(span(s.age_seconds))
         + ("" if s.age_seconds <= b.objective_seconds else ' <span class="bad-text">older than the objective</span>')),
        ("objective", esc(span(b.objective_seconds))), ("files", esc(size(s.files_bytes))),
        ("database copy", esc(size(s.db_bytes))), ("added to the repository", esc(size(s.added_bytes))),
        ("pipeline paused", "—" if s.paused_seconds is None else f"{s.paused_seconds:g} s")])
    checks = table(["check", "last run", "verdict", "failed sets", "last pass"],
                   [check_row("check", b.check)] + ([check_row("check-offsite", b.check_offsite)]
                                                    if b.offsite_configured or b.check_offsite else []))
    o = b.offsite
    offsite = ("<p>not configured</p>" if not b.offsite_configured else "<p>never copied</p>" if o is None else pairs([
        ("last copy", when(o.ended, o.age_seconds)), ("outcome", esc(o.outcome)),
        ("newest set there", esc(o.newest_set)),
        ("complete sets there", esc(o.complete_sets)), ("sets behind", esc(o.lag_sets)),
        ("behind by", "—" if o.lag_seconds is None else esc(span(o.lag_seconds)))]))
    r = b.retention
    retention = "<p>never ran</p>" if r is None else pairs([
        ("last run", when(r.ended, r.age_seconds)), ("outcome", esc(r.outcome)), ("forgot", esc(r.forgotten)),
        ("kept", esc(r.kept))])
    body = (f"<h3>Newest complete set</h3>{newest}<h3>Checks</h3>{checks}<h3>Off-site copy</h3>{offsite}"
            f"<h3>Retention</h3>{retention}")
    return section("backups", "Backups: is it backed up", b.computed, body)


def restores(r: RestoresSection) -> str:
    d = r.last
    last = "<p>no restore drill yet</p>" if d is None else pairs([
        ("last drill", when(d.started, r.last_age_seconds)), ("verdict", esc(d.verdict)), ("set", esc(d.set_id)),
        ("restore", "—" if d.restore_seconds is None else f"{d.restore_seconds:g} s"),
        ("recovery point", "—" if d.rpo_seconds is None else esc(span(d.rpo_seconds))),
        ("last pass", when(r.last_pass, r.last_pass_age_seconds))])
    seconds = [Point(f"{p.started} {p.verdict}", p.restore_seconds, p.verdict != "pass") for p in r.trend]
    rpo = [Point(f"{p.started} {p.verdict}", p.rpo_seconds, p.verdict != "pass") for p in r.trend]
    rb = r.runbook
    runbook = "<p>no runbook drill yet</p>" if rb is None else pairs([
        ("drill", esc(rb.drill)), ("started", esc(rb.started)), ("verdict", esc(rb.verdict)), ("set", esc(rb.set_id)),
        ("RTO (its rebuild)", "—" if rb.rto_seconds is None else f"{rb.rto_seconds:g} s"),
        ("total", f"{rb.total_seconds:g} s")])
    body = (f"<h3>Last restore drill</h3>{last}"
            + chart("restore-seconds", f"restore seconds, last {len(r.trend)} drills", "s", seconds)
            + chart("recovery-point-seconds", f"recovery point (seconds), last {len(r.trend)} drills", "s", rpo)
            + f"<h3>Last runbook drill</h3>{runbook}")
    return section("restores", "Restores: would it restore", r.computed, body)


def database(d: DatabaseSection, private: Private) -> str:
    roles = table(["role", "logs in", "seconds", "why not"], [
        [esc(r.role), "yes" if r.reachable else '<span class="bad-text">NO</span>', number(r.seconds),
         esc(None if r.error is None else private.scrub(r.error))] for r in d.roles],
        "not probed" if not d.probed else "no role")
    counts = "" if d.counts_set is None else pairs([
        ("in set", esc(d.counts_set)), ("documents", esc(d.documents)),
        ("per collection", esc(", ".join(f"{k} {v}" for k, v in sorted(d.collections.items())) or None)),
        ("physical copy", esc(size(d.copy_bytes)))])
    certificates = table(["certificate", "days left", "not after"], [
        [esc(c.certificate), esc(c.days_left), esc(c.not_after)] for c in d.certificates],
        "no certificate" if d.tls else "no certificate (TLS is off)")
    warnings = "".join(f'<p class="bad-text">{esc(w.level)}: {esc(w.certificate)}: {esc(private.scrub(w.message))}</p>'
                       for w in d.certificate_warnings)
    body = (f"{pairs([('TLS', 'on' if d.tls else 'off')])}<h3>Roles</h3>{roles}{counts}"
            f"<h3>Certificates</h3>{certificates}{warnings}")
    return section("database", "Database", d.computed, body)


def disk(d: DiskSection) -> str:
    change = ("not enough measurements yet" if d.change_per_day is None else
              f"{'+' if d.change_per_day >= 0 else ''}{size(d.change_per_day)} a day")
    body = pairs([("free", f"{esc(size(d.free_bytes))} of {esc(size(d.total_bytes))}"),
                  ("free space changes by", esc(change)),
                  ("down to sync's reserve in", "not while it does not shrink" if d.days_until_full is None
                   else f"{d.days_until_full:g} day(s)"),
                  ("sync's reserve", esc(size(d.reserve_bytes))), ("measurements", esc(d.samples))])
    return section("disk", "Disk of the data root", d.computed, body)


def render(model: StatusModel, findings: list[Finding], cfg: Config) -> str:
    """The status page of model and its findings: one HTML5 document, the same for the same model."""
    private = Private(cfg)
    host = esc(private.scrub(model.host))
    nav = "".join(f'<a href="#{a}">{t}</a>' for a, t in (("findings", "stalls and risks"), ("pipeline", "pipeline"),
                                                         ("backups", "backups"), ("restores", "restores"),
                                                         ("database", "database"), ("disk", "disk")))
    return ("<!DOCTYPE html>\n"
            f'<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">'
            f"<title>aggregator-dr status: {host}</title><style>{CSS}</style></head><body>"
            f"<header><h1>aggregator-dr status: {host} ({esc(model.role)})</h1>"
            f'<p class="computed">computed {esc(model.computed)} (UTC), from the job history since '
            f"{esc(model.history_since)}</p><nav>{nav}</nav></header>"
            + banner(findings, private) + pipeline(model.pipeline, private) + backups(model.backups)
            + restores(model.restores) + database(model.database, private) + disk(model.disk)
            + "</body></html>\n")
