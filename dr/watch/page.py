"""The static status page: the status model (dr/watch/model.py) and the rules' findings as one self-contained
HTML5 document, written after every job by dr/watch/publish.py for the web mirror to serve read-only.

Self-contained: inline CSS and inline SVG charts, no script, no external asset, no link but to its own
sections. Public: it shows no secret, no private path and no probe address. The figures it shows are
counts, times, sizes and names the model holds; every free text (a finding, an error, a message) goes through
`Private.scrub` first, which replaces what the configuration names as private (its folders, repositories,
the database's and the collectors' hosts, users, keys and ports, the secret files' contents) and any other
absolute path, URL, credentials or IPv4 address. The page is a pure function of the model: its times are the
model's, so the same model gives the same page.

Every figure is machine-checkable against `invoke status --json` (the `Status` record, dr/watch/status.py):
the element that shows it carries data-field="<path>", the figure's dotted path in that JSON (its keys as the
JSON names them, list items by index: `model.pipeline.backlog.0.count`, `model.backups.newest_set.set`,
`findings.0.rule`), and data-value="<json.dumps(value, sort_keys=True)>" (HTML-escaped). A figure shown as "—",
"never" or "none" because it is None (an optional one the JSON leaves out) says data-value="null"; a record
that is None says so on its path (`model.restores.last`), an empty list or table on its own (`[]`, `{}`). A
free text the page shows scrubbed (`model.host`, a collector's `last_error`, a role's `error`, a certificate
finding's `message`, a finding's `what`, a dead-lettered message's `path` and `reason`, the broker's `error`)
carries data-field and `data-scrubbed` but no data-value: its value
in the JSON may hold what the page must not show. `field()` makes these attributes; `table()` and `pairs()`
take figures (`Fig`: what is shown, its path and value) as cells. Not on the page: the database's address,
the disk's path, a certificate's file, subject, names and serial; what only a chart point's tooltip says; the
runs of stages' pulled, sanitized and quarantined but for their sums. The totals shown
(`model.pipeline.waiting`, `model.pipeline.flow_total`) are in the JSON too (common/records.py, DERIVED).

Each chart is an <svg data-chart="NAME"> with one <circle> per point, each carrying its figure's data-field and
data-value as above: `restore-seconds` and `recovery-point-seconds` over the last status.drills_shown drills
(model.restores.trend), `flow-imported` and `flow-failed` over the runs of stages in the last day
(model.pipeline.flow), `backlog`: the inputs waiting at each job's end in the last day
(model.pipeline.backlog_series, from the job history's lines). The last day's charts place each point across by
its time (`flow_across`).
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass
from pathlib import Path

from common.config import Config
from dr.jobs import history
from dr.watch.figures import (
    BackupsSection,
    BrokerSection,
    CheckFigures,
    DatabaseSection,
    DiskSection,
    PipelineSection,
    RestoresSection,
    RoleReach,
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


def seconds(value: float | None) -> str:
    return "—" if value is None else f"{value:g} s"


def field(path: str, value: object = None, scrubbed: bool = False) -> str:
    """The attributes that tie an element to the figure at path in `invoke status --json`: data-field, and
    data-value, the value's JSON (sort_keys; null for None) escaped; a free text shown scrubbed has
    data-scrubbed instead of data-value (its value may hold what the page must not show)."""
    out = f' data-field="{html.escape(path)}"'
    return out + (" data-scrubbed" if scrubbed else f' data-value="{html.escape(json.dumps(value, sort_keys=True))}"')


@dataclass(frozen=True)
class Fig:
    """A figure as the page shows it (markup, escaped already) and the figure it is: its path in
    `invoke status --json`, its value, whether it is a free text shown scrubbed."""
    shown: str
    path: str
    value: object = None
    scrubbed: bool = False


def fig(path: str, value: object, shown: str | None = None) -> Fig:
    """The figure at path: value, shown as `shown` (markup) or as its text ("—" for None)."""
    return Fig(esc(value) if shown is None else shown, path, value)


def free_text(path: str, text: str, private: Private, css: str = "") -> Fig:
    """A free text at path, shown scrubbed (in a span of class css, when given); its value is not carried."""
    shown = esc(private.scrub(text))
    return Fig(f'<span class="{css}">{shown}</span>' if css else shown, path, scrubbed=True)


def element(tag: str, content: str | Fig, attrs: str = "") -> str:
    """<tag>content</tag>; a figure's element carries its data-field and data-value."""
    if isinstance(content, Fig):
        return f"<{tag}{attrs}{field(content.path, content.value, content.scrubbed)}>{content.shown}</{tag}>"
    return f"<{tag}{attrs}>{content}</{tag}>"


def show(f: Fig) -> str:
    """A figure inline, in a <span>."""
    return element("span", f)


def table(headers: list[str], rows: list[list[str | Fig]], empty: str | Fig = "none") -> str:
    """A table of cells (markup, or figures); `empty` (text escaped here, or a figure) when there is no row."""
    if not rows:
        return element("p", empty if isinstance(empty, Fig) else html.escape(empty))
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(element("td", c) for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def pairs(items: list[tuple[str, str | Fig]]) -> str:
    """A definition list: (label, value: markup, or a figure)."""
    return "<dl>" + "".join(f"<dt>{html.escape(k)}</dt>{element('dd', v)}" for k, v in items) + "</dl>"


def section(anchor: str, title: str, computed: str, body: str) -> str:
    """A section of the page: anchor is its key in the model (model.<anchor>.computed is its time)."""
    return (f'<section id="{anchor}"><h2>{html.escape(title)}</h2>'
            f'<p class="computed">computed {show(fig(f"model.{anchor}.computed", computed))}</p>{body}</section>')


def when(path: str, stamp: str | None, age_path: str, age: int | None, never: str = "never") -> str:
    """A time and its age, two figures: "2026-12-07T11:57:00Z (3 min ago)", or `never` (both null)."""
    if stamp is None:
        return show(fig(path, None, html.escape(never))) + show(fig(age_path, age, ""))
    return f"{show(fig(path, stamp))} ({show(fig(age_path, age, esc(ago(age))))})"


# --- charts -------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Point:
    """One mark of a chart: what it is (its tooltip), the figure it shows (its path and value; None: no
    value), whether it went wrong, and where it is across (0..1; None: evenly spaced)."""
    label: str
    path: str
    value: float | None
    bad: bool = False
    across: float | None = None


def chart(name: str, title: str, unit: str, points: list[Point]) -> str:
    """An inline SVG chart, one <circle> per point (its figure's data-field and data-value), a line through
    those with a value."""
    w, h, pad = CHART_WIDTH, CHART_HEIGHT, CHART_PAD
    top = max((p.value for p in points if p.value is not None), default=0) or 1
    marks, line = [], []
    for i, p in enumerate(points):
        across = p.across if p.across is not None else (i / (len(points) - 1) if len(points) > 1 else 0.5)
        x = round(pad + (w - 2 * pad) * across, 1)
        y = round(h - pad - (h - 2 * pad) * (p.value or 0) / top, 1)
        kind = "missing" if p.value is None else "bad" if p.bad else "ok"
        value = "no value" if p.value is None else f"{p.value:g}"
        if p.value is not None:
            line.append(f"{x},{y}")
        marks.append(f'<circle class="mark {kind}" cx="{x}" cy="{y}" r="4"{field(p.path, p.value)}>'
                     f"<title>{html.escape(p.label)}: {value} {html.escape(unit)}</title></circle>")
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
        return f'<p id="findings" class="banner good">{show(fig("findings", [], html.escape(ALL_CLEAR)))}</p>'
    items = "".join(
        f'<li class="finding {esc(f.severity)}"><span class="rule">{show(fig(f"findings.{i}.severity", f.severity))}: '
        f'{show(fig(f"findings.{i}.rule", f.rule))}</span>'
        + element("p", free_text(f"findings.{i}.what", f.what, private), ' class="what"')
        + f'<p class="todo">What to do: {show(fig(f"findings.{i}.todo", f.todo))}</p></li>'
        for i, f in enumerate(findings))
    stalls = sum(1 for f in findings if f.severity == "stall")
    return (f'<section id="findings" class="banner bad"><h2>{stalls} stall(s), {len(findings) - stalls} risk(s)'
            f"</h2><ul>{items}</ul></section>")


# --- the sections -------------------------------------------------------------------------------------------

def flow_across(ended: str, computed: str) -> float:
    """Where a run's end falls in the last FLOW_HOURS before computed (0: their start, 1: computed)."""
    back = (history.parse_time(computed) - history.parse_time(ended)).total_seconds()
    return round(min(max(1 - back / (FLOW_HOURS * 3600), 0.0), 1.0), 4)


def pipeline(p: PipelineSection, private: Private) -> str:
    base = "model.pipeline"
    waiting = table(["state", "inputs", "oldest", "age"], [
        [fig(f"{base}.backlog.{i}.state", b.state, esc(b.state + "/")), fig(f"{base}.backlog.{i}.count", b.count),
         fig(f"{base}.backlog.{i}.oldest", b.oldest),
         fig(f"{base}.backlog.{i}.oldest_age_seconds", b.oldest_age_seconds,
             esc(None if b.oldest_age_seconds is None else span(b.oldest_age_seconds)))]
        for i, b in enumerate(p.backlog)])
    moved = when(f"{base}.last_move", p.last_move, f"{base}.last_move_age_seconds", p.last_move_age_seconds,
                 "no journal yet")
    quarantine = table(["reason", "inputs"], [[esc(k), fig(f"{base}.quarantine.{k}", v)]
                                              for k, v in sorted(p.quarantine.items())],
                       fig(f"{base}.quarantine", p.quarantine, "empty"))
    stages = table(["stage", "last success", "by"], [
        [fig(f"{base}.stages.{i}.stage", s.stage),
         when(f"{base}.stages.{i}.ended", s.ended, f"{base}.stages.{i}.age_seconds", s.age_seconds),
         fig(f"{base}.stages.{i}.job", s.job)] for i, s in enumerate(p.stages)])
    collectors = table(["collector", "last success", "still holds", "held until released", "oldest held",
                        "first tried", "now"], [
        [fig(f"{base}.collectors.{i}.collector", c.collector),
         when(f"{base}.collectors.{i}.last_success", c.last_success, f"{base}.collectors.{i}.age_seconds",
              c.age_seconds),
         fig(f"{base}.collectors.{i}.left", c.left),
         f"{show(fig(f'{base}.collectors.{i}.held', c.held))} ("
         f"{show(fig(f'{base}.collectors.{i}.held_bytes', c.held_bytes, esc(None if c.held_bytes is None else size(c.held_bytes))))})",
         when(f"{base}.collectors.{i}.oldest_held", c.oldest_held, f"{base}.collectors.{i}.oldest_held_age_seconds",
              c.oldest_held_age_seconds, "none held"),
         fig(f"{base}.collectors.{i}.first_tried", c.first_tried),
         free_text(f"{base}.collectors.{i}.last_error", c.last_error, private, "bad-text")
         if c.last_error is not None else fig(f"{base}.collectors.{i}.last_error", None, "ok")]
        for i, c in enumerate(p.collectors)], fig(f"{base}.collectors", [], "no collector configured"))
    runs = table(["ended", "outcome", "seconds", "moved", "rate"], [
        [fig(f"{base}.runs.{i}.ended", r.ended), fig(f"{base}.runs.{i}.outcome", r.outcome),
         fig(f"{base}.runs.{i}.seconds", r.seconds, number(r.seconds)),
         fig(f"{base}.runs.{i}.bytes", r.bytes, esc(size(r.bytes))),
         fig(f"{base}.runs.{i}.bytes_per_second", r.bytes_per_second,
             "—" if r.bytes_per_second is None else esc(f"{size(r.bytes_per_second)}/s"))]
        for i, r in enumerate(p.runs)], fig(f"{base}.runs", [], "no run of the whole pipeline yet"))
    imported = [Point(f"{f.ended} {f.job}", f"{base}.flow.{i}.imported", f.imported, f.outcome != "ok",
                      flow_across(f.ended, p.computed)) for i, f in enumerate(p.flow)]
    failed = [Point(f"{f.ended} {f.job}", f"{base}.flow.{i}.failed", f.failed, f.failed > 0,
                    flow_across(f.ended, p.computed)) for i, f in enumerate(p.flow)]
    backlog = [Point(f"{b.ended} {b.job}", f"{base}.backlog_series.{i}.waiting", b.waiting,
                     across=flow_across(b.ended, p.computed)) for i, b in enumerate(p.backlog_series)]
    total = {k: show(fig(f"{base}.flow_total.{k}", v)) for k, v in p.flow_total.items()}
    moved_total = (f"in the last {FLOW_HOURS} h: {total['runs']} run(s) of stages; pulled {total['pulled']}, "
                   f"sanitized {total['sanitized']}, imported {total['imported']}, "
                   f"quarantined {total['quarantined']}, failed {total['failed']}")
    body = (f"<h3>Waiting</h3>{waiting}"
            + pairs([("inputs waiting", fig(f"{base}.waiting", p.waiting)), ("last move", moved)])
            + chart("backlog", f"inputs waiting when a job ended, last {FLOW_HOURS} h", "inputs", backlog)
            + f"<h3>Quarantine</h3>{quarantine}{pairs([('poison', fig(f'{base}.poison', p.poison))])}"
            f"<h3>Stages</h3>{stages}<h3>Collectors</h3>{collectors}<h3>Last runs of the pipeline</h3>{runs}"
            f"<h3>Flow over the last {FLOW_HOURS} hours</h3><p>{moved_total}</p>"
            + chart("flow-imported", f"inputs imported per run of stages, last {FLOW_HOURS} h", "inputs", imported)
            + chart("flow-failed", f"inputs that failed per run and wait for the next, last {FLOW_HOURS} h",
                    "inputs", failed))
    return section("pipeline", "Pipeline: does data flow", p.computed, body)


def check_row(name: str, path: str, c: CheckFigures | None) -> list[str | Fig]:
    """A check's row: its last run, verdict, failed sets and last pass (path: its figures, model.backups.<job>)."""
    if c is None:
        return [esc(name), fig(path, None, "never"), "—", "—", "—"]
    verdict = esc(c.verdict) if c.verdict == "ok" else f'<span class="bad-text">{esc(c.verdict)}</span>'
    return [fig(f"{path}.job", c.job), when(f"{path}.ended", c.ended, f"{path}.age_seconds", c.age_seconds),
            fig(f"{path}.verdict", c.verdict, verdict),
            fig(f"{path}.failed_sets", c.failed_sets, esc(", ".join(c.failed_sets) or None)),
            when(f"{path}.last_pass", c.last_pass, f"{path}.last_pass_age_seconds", c.last_pass_age_seconds)]


def newest_set(b: BackupsSection) -> str:
    s, at = b.newest_set, "model.backups.newest_set"
    if s is None:
        return element("p", fig(at, None, "no complete set taken or restored here"))
    late = "" if s.age_seconds <= b.objective_seconds else ' <span class="bad-text">older than the objective</span>'
    return pairs([
        ("set", fig(f"{at}.set", s.set_id)), ("from", fig(f"{at}.source", s.source)),
        ("started", fig(f"{at}.started", s.started)),
        ("age (recovery point)", fig(f"{at}.age_seconds", s.age_seconds, esc(span(s.age_seconds)) + late)),
        ("files", fig(f"{at}.files_bytes", s.files_bytes, esc(size(s.files_bytes)))),
        ("database copy", fig(f"{at}.db_bytes", s.db_bytes, esc(size(s.db_bytes)))),
        ("added to the repository", fig(f"{at}.added_bytes", s.added_bytes, esc(size(s.added_bytes)))),
        ("pipeline paused", fig(f"{at}.paused_seconds", s.paused_seconds, seconds(s.paused_seconds)))])


def offsite(b: BackupsSection) -> str:
    o, at = b.offsite, "model.backups.offsite"
    configured = element("p", fig("model.backups.offsite_configured", b.offsite_configured,
                                  "configured" if b.offsite_configured else "not configured"))
    if not b.offsite_configured:
        return configured
    if o is None:
        return configured + element("p", fig(at, None, "never copied"))
    return configured + pairs([
        ("last copy", when(f"{at}.ended", o.ended, f"{at}.age_seconds", o.age_seconds)),
        ("outcome", fig(f"{at}.outcome", o.outcome)), ("newest set there", fig(f"{at}.newest_set", o.newest_set)),
        ("complete sets there", fig(f"{at}.complete_sets", o.complete_sets)),
        ("sets behind", fig(f"{at}.lag_sets", o.lag_sets)),
        ("behind by", fig(f"{at}.lag_seconds", o.lag_seconds,
                          "—" if o.lag_seconds is None else esc(span(o.lag_seconds))))])


def backups(b: BackupsSection) -> str:
    base = "model.backups"
    objective = pairs([("objective", fig(f"{base}.objective_seconds", b.objective_seconds,
                                         esc(span(b.objective_seconds))))])
    checks = table(["check", "last run", "verdict", "failed sets", "last pass"],
                   [check_row("check", f"{base}.check", b.check)]
                   + ([check_row("check-offsite", f"{base}.check_offsite", b.check_offsite)]
                      if b.offsite_configured or b.check_offsite else []))
    r, at = b.retention, f"{base}.retention"
    retention = element("p", fig(at, None, "never ran")) if r is None else pairs([
        ("last run", when(f"{at}.ended", r.ended, f"{at}.age_seconds", r.age_seconds)),
        ("outcome", fig(f"{at}.outcome", r.outcome)), ("forgot", fig(f"{at}.forgotten", r.forgotten)),
        ("kept", fig(f"{at}.kept", r.kept))])
    body = (f"<h3>Newest complete set</h3>{newest_set(b)}{objective}<h3>Checks</h3>{checks}"
            f"<h3>Off-site copy</h3>{offsite(b)}<h3>Retention</h3>{retention}")
    return section("backups", "Backups: is it backed up", b.computed, body)


def restores(r: RestoresSection) -> str:
    base = "model.restores"
    d, at = r.last, f"{base}.last"
    last = element("p", fig(at, None, "no restore drill yet")) if d is None else pairs([
        ("last drill", when(f"{at}.started", d.started, f"{base}.last_age_seconds", r.last_age_seconds)),
        ("verdict", fig(f"{at}.verdict", d.verdict)), ("set", fig(f"{at}.set", d.set_id)),
        ("restore", fig(f"{at}.restore_seconds", d.restore_seconds, seconds(d.restore_seconds))),
        ("recovery point", fig(f"{at}.rpo_seconds", d.rpo_seconds,
                               "—" if d.rpo_seconds is None else esc(span(d.rpo_seconds)))),
        ("last pass", when(f"{base}.last_pass", r.last_pass, f"{base}.last_pass_age_seconds",
                           r.last_pass_age_seconds))])
    restore = [Point(f"{p.started} {p.verdict}", f"{base}.trend.{i}.restore_seconds", p.restore_seconds,
                     p.verdict != "pass") for i, p in enumerate(r.trend)]
    rpo = [Point(f"{p.started} {p.verdict}", f"{base}.trend.{i}.rpo_seconds", p.rpo_seconds, p.verdict != "pass")
           for i, p in enumerate(r.trend)]
    rb, at = r.runbook, f"{base}.runbook"
    runbook = element("p", fig(at, None, "no runbook drill yet")) if rb is None else pairs([
        ("drill", fig(f"{at}.drill", rb.drill)), ("started", fig(f"{at}.started", rb.started)),
        ("verdict", fig(f"{at}.verdict", rb.verdict)), ("set", fig(f"{at}.set", rb.set_id)),
        ("RTO (its rebuild)", fig(f"{at}.rto_seconds", rb.rto_seconds, seconds(rb.rto_seconds))),
        ("total", fig(f"{at}.total_seconds", rb.total_seconds, seconds(rb.total_seconds)))])
    body = (f"<h3>Last restore drill</h3>{last}"
            + chart("restore-seconds", f"restore seconds, last {len(r.trend)} drills", "s", restore)
            + chart("recovery-point-seconds", f"recovery point (seconds), last {len(r.trend)} drills", "s", rpo)
            + f"<h3>Last runbook drill</h3>{runbook}")
    return section("restores", "Restores: would it restore", r.computed, body)


def role_row(at: str, r: RoleReach, private: Private) -> list[str | Fig]:
    """A role's login (at: its figures, model.database.roles.<i>)."""
    return [fig(f"{at}.role", r.role),
            fig(f"{at}.reachable", r.reachable, "yes" if r.reachable else '<span class="bad-text">NO</span>'),
            fig(f"{at}.seconds", r.seconds, number(r.seconds)),
            fig(f"{at}.error", None) if r.error is None else free_text(f"{at}.error", r.error, private)]


def database(d: DatabaseSection, private: Private) -> str:
    base = "model.database"
    roles = table(["role", "logs in", "seconds", "why not"],
                  [role_row(f"{base}.roles.{i}", r, private) for i, r in enumerate(d.roles)],
                  fig(f"{base}.roles", [], "not probed" if not d.probed else "no role"))
    per_collection = ", ".join(show(fig(f"{base}.collections.{k}", v, f"{esc(k)} {esc(v)}"))
                               for k, v in sorted(d.collections.items()))
    counts = element("p", fig(f"{base}.counts_set", None, "no set taken here yet")) if d.counts_set is None else pairs([
        ("in set", fig(f"{base}.counts_set", d.counts_set)), ("taken", fig(f"{base}.counts_time", d.counts_time)),
        ("documents", fig(f"{base}.documents", d.documents)),
        ("per collection", per_collection or fig(f"{base}.collections", d.collections)),
        ("physical copy", fig(f"{base}.copy_bytes", d.copy_bytes, esc(size(d.copy_bytes))))])
    certificates = table(["certificate", "days left", "not after"], [
        [fig(f"{at}.certificate", c.certificate), fig(f"{at}.days_left", c.days_left),
         fig(f"{at}.not_after", c.not_after)]
        for at, c in ((f"{base}.certificates.{i}", c) for i, c in enumerate(d.certificates))],
        fig(f"{base}.certificates", [], "no certificate" if d.tls else "no certificate (TLS is off)"))
    warnings = "".join(
        f'<p class="bad-text">{show(fig(f"{base}.certificate_warnings.{i}.level", w.level))}: '
        f'{show(fig(f"{base}.certificate_warnings.{i}.certificate", w.certificate))}: '
        f'{show(free_text(f"{base}.certificate_warnings.{i}.message", w.message, private))}</p>'
        for i, w in enumerate(d.certificate_warnings))
    body = (pairs([("TLS", fig(f"{base}.tls", d.tls, "on" if d.tls else "off")),
                   ("logins probed", fig(f"{base}.probed", d.probed, "yes" if d.probed else "no"))])
            + f"<h3>Roles</h3>{roles}{counts}<h3>Certificates</h3>{certificates}{warnings}")
    return section("database", "Database", d.computed, body)


def disk(d: DiskSection) -> str:
    base = "model.disk"
    change = ("not enough measurements yet" if d.change_per_day is None else
              f"{'+' if d.change_per_day >= 0 else ''}{size(d.change_per_day)} a day")
    body = pairs([("free", f"{show(fig(f'{base}.free_bytes', d.free_bytes, esc(size(d.free_bytes))))} of "
                           f"{show(fig(f'{base}.total_bytes', d.total_bytes, esc(size(d.total_bytes))))}"),
                  ("free space changes by", fig(f"{base}.change_per_day", d.change_per_day, esc(change))),
                  ("down to sync's reserve in", fig(f"{base}.days_until_full", d.days_until_full,
                                                    "not while it does not shrink" if d.days_until_full is None
                                                    else f"{d.days_until_full:g} day(s)")),
                  ("sync's reserve", fig(f"{base}.reserve_bytes", d.reserve_bytes, esc(size(d.reserve_bytes)))),
                  ("measurements", fig(f"{base}.samples", d.samples))])
    return section("disk", "Disk of the data root", d.computed, body)


def broker(b: BrokerSection, private: Private) -> str:
    """The broker's section: its state, its queues, the subscriber's last batch and dead-lettered messages
    (their reasons and paths scrubbed: free texts)."""
    base = "model.broker"
    if b.error is not None or b.ready is None:
        queues = [("queues", free_text(f"{base}.error", b.error or "not read", private, "bad-text"))]
    else:
        queues = [("ready in reports", fig(f"{base}.ready", b.ready)),
                  ("unacknowledged", fig(f"{base}.unacknowledged", b.unacknowledged)),
                  ("in reports.dead", fig(f"{base}.dead", b.dead))]
    outcomes = ", ".join(show(fig(f"{base}.last_batch_outcomes.{k}", v, f"{esc(k)} {esc(v)}"))
                         for k, v in sorted((b.last_batch_outcomes or {}).items()))
    dead = table(["time", "collector", "path", "reason"], [
        [fig(f"{at}.time", d.time), fig(f"{at}.collector", d.collector, esc(d.collector or "—")),
         free_text(f"{at}.path", d.path or "—", private), free_text(f"{at}.reason", d.reason, private)]
        for at, d in ((f"{base}.newest_dead.{i}", d) for i, d in enumerate(b.newest_dead))],
        fig(f"{base}.newest_dead", [], "none"))
    state = fig(f"{base}.state", b.state, esc(b.state) if b.healthy else f'<span class="bad-text">{esc(b.state)}</span>')
    body = (pairs([("container", state), ("enabled", fig(f"{base}.enabled", b.enabled, "yes" if b.enabled else "no")),
                   *queues,
                   ("subscriber's last batch", when(f"{base}.last_batch", b.last_batch,
                                                    f"{base}.last_batch_age_seconds", b.last_batch_age_seconds)),
                   ("its counts", outcomes or fig(f"{base}.last_batch_outcomes", b.last_batch_outcomes, "—")),
                   ("dead-lettered in the window", fig(f"{base}.dead_lettered", b.dead_lettered)),
                   ("window (hours)", fig(f"{base}.window_hours", b.window_hours))])
            + f"<h3>Newest dead-lettered messages</h3>{dead}")
    return section("broker", "Broker", b.computed, body)


def render(model: StatusModel, findings: list[Finding], cfg: Config) -> str:
    """The status page of model and its findings: one HTML5 document, the same for the same model."""
    private = Private(cfg)
    host = esc(private.scrub(model.host))
    nav = "".join(f'<a href="#{a}">{t}</a>' for a, t in (("findings", "stalls and risks"), ("pipeline", "pipeline"),
                                                         ("backups", "backups"), ("restores", "restores"),
                                                         ("database", "database"), ("disk", "disk"),
                                                         *((("broker", "broker"),) if model.broker else ())))
    return ("<!DOCTYPE html>\n"
            f'<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">'
            f"<title>aggregator-dr status: {host}</title><style>{CSS}</style></head><body>"
            f"<header><h1>aggregator-dr status: {show(free_text('model.host', model.host, private))} "
            f"({show(fig('model.role', model.role))})</h1>"
            f'<p class="computed">computed {show(fig("model.computed", model.computed))} (UTC), from the job history '
            f"since {show(fig('model.history_since', model.history_since))}</p><nav>{nav}</nav></header>"
            + banner(findings, private) + pipeline(model.pipeline, private) + backups(model.backups)
            + restores(model.restores) + database(model.database, private) + disk(model.disk)
            + (broker(model.broker, private) if model.broker is not None else "")
            + "</body></html>\n")
