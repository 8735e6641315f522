"""One report rewritten for publication, as libyaml parse events (see yamldocs): the header is checked and
rewritten (probe_ip 127.0.0.1, report_file, sanitizer_version), every entry has the probe IP and private
bridges removed (see privacy) and is written back in block style. Unparseable entries are dropped and
listed, with their line numbers, in the header's `sanitizer_dropped`; a bad or missing header, an unsafe
tag or an oversized document raises Quarantine. No files but the one written: the stage (sanitize) decides
where it goes."""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from common import __version__, atomic
from stages import naming, privacy, yamldocs

SANITIZER_VERSION = f"aggregator-dr {__version__}"
REPORT_FILE_LINE = b"report_file: "
# What the sanitizer writes into a header: a report's own values for these are never published.
RESERVED_HEADER_KEYS = ("report_file", "sanitizer_version", "sanitizer_dropped")


class Quarantine(Exception):
    def __init__(self, reason: str, error: str, line: int = 0):
        super().__init__(error)
        self.reason, self.error, self.line = reason, error, line


@dataclass
class Output:
    """What became of one report (a raw file, or one member of a raw archive)."""
    member: str
    outcome: str                     # "sanitized" or "quarantined"
    tmp: Path | None = None          # durable temporary file to put in place (None: move the raw file)
    name: str = ""                   # canonical name (sanitized) or member name (quarantined)
    sha256: str = ""
    size: int = 0
    content_sha256: str = ""         # sanitized content without report_file: equal means the same report
    reason: str = ""
    error: str = ""
    line: int = 0
    info: dict = field(default_factory=dict)


def _scalar(value) -> yaml.ScalarEvent:
    if value is None:
        return yaml.ScalarEvent(None, None, (True, False), "null")
    return yaml.ScalarEvent(None, None, (True, True), str(value))


def _top_level(events: list) -> dict[str, int]:
    """Index of each top-level key's value event, for scalar values of a mapping document."""
    found: dict[str, int] = {}
    if len(events) < 2 or not isinstance(events[1], yaml.MappingStartEvent):
        return found
    depth, expecting_key, key = 0, True, None
    for i, ev in enumerate(events[1:], start=1):
        if depth == 1:
            if isinstance(ev, (yaml.MappingEndEvent,)) and expecting_key:
                break
            if expecting_key:
                key = ev.value if isinstance(ev, yaml.ScalarEvent) else None
                expecting_key = False
                if isinstance(ev, yaml.CollectionStartEvent):
                    depth += 1
                continue
            if isinstance(ev, yaml.ScalarEvent) and key is not None:
                found[key] = i
            expecting_key = True
        if isinstance(ev, yaml.CollectionStartEvent):
            depth += 1
        elif isinstance(ev, yaml.CollectionEndEvent):
            depth -= 1
    return found


def _bridge_rewrite(events: list, bridges: privacy.BridgeDB) -> list[str]:
    """Replace a private bridge's fields in an entry (in place); returns addresses to redact elsewhere."""
    keys = _top_level(events)
    values = {k: events[i].value for k, i in keys.items()}
    bridge = privacy.parse_bridge(values.get("input")) or privacy.parse_bridge(values.get("bridge_address"))
    if bridge is None:
        return []
    private = bridges.private(bridge)
    fields = private if private is not None else privacy.PUBLIC_BRIDGE_FIELDS
    end = len(events) - 2  # the top-level MappingEndEvent, before DocumentEndEvent
    additions = []
    for k, v in fields.items():
        if k in keys:
            events[keys[k]] = _scalar(v)
        elif k != "input":
            additions += [_scalar(k), _scalar(v)]
    events[end:end] = additions
    return [bridge.address, bridge.ip] if private is not None else []


def _redact_scalar(ev: yaml.ScalarEvent, redactor: privacy.Redactor) -> yaml.ScalarEvent:
    if ev.tag == yamldocs.BINARY_TAG:
        try:
            data = base64.b64decode("".join(ev.value.split()), validate=True)
        except (binascii.Error, ValueError):
            line = ev.start_mark.line + 1 if ev.start_mark else 0
            raise yamldocs.DocError("unparseable", "invalid !!binary value", line) from None
        clean = redactor.data(data)
        if clean == data:
            return ev
        return yaml.ScalarEvent(ev.anchor, ev.tag, ev.implicit, base64.encodebytes(clean).decode(), style="|")
    clean = redactor.text(ev.value)
    if clean == ev.value:
        return ev
    implicit = (True, True) if ev.tag is None else ev.implicit
    style = ev.style if ev.style in ("'", '"', "|", ">") else None
    return yaml.ScalarEvent(ev.anchor, ev.tag, implicit, clean, style=style)


_DOC_START, _DOC_END = yaml.DocumentStartEvent, yaml.DocumentEndEvent
_MAP_START, _SEQ_START, _SCALAR = yaml.MappingStartEvent, yaml.SequenceStartEvent, yaml.ScalarEvent


def _entry_events(events: list, redactor: privacy.Redactor, bridges: privacy.BridgeDB | None):
    if bridges is not None:
        redactor = redactor.extended(_bridge_rewrite(events, bridges))
    redact = bool(redactor)
    for ev in events:  # the hot loop: dispatch on the exact event type
        kind = type(ev)
        if kind is _SCALAR:
            yield _redact_scalar(ev, redactor) if redact else ev
        elif kind is _MAP_START or kind is _SEQ_START:
            ev.flow_style = False
            yield ev
        elif kind is _DOC_START:
            yield yaml.DocumentStartEvent(explicit=True)
        elif kind is _DOC_END:
            yield yaml.DocumentEndEvent(explicit=True)
        else:
            yield ev


def _header(frames, first_line_hint: str):
    for frame in frames:
        if frame.text is None and frame.size == 0:
            continue  # a stray trailer before any document
        try:
            events = yamldocs.parse(frame)
        except yamldocs.DocError as exc:
            reason = "invalid_header" if exc.reason == "unparseable" else exc.reason
            raise Quarantine(reason, f"header: {exc}", exc.line) from None
        if len(events) >= 2 and isinstance(events[1], yaml.ScalarEvent) and events[1].value in ("", "~", "null"):
            continue  # an empty document
        if len(events) < 2 or not isinstance(events[1], yaml.MappingStartEvent):
            raise Quarantine("not_a_report", "the first document is not a mapping (no report header)",
                             frame.line)
        try:
            header = yamldocs.construct(frame)
        except (yaml.YAMLError, ValueError, TypeError, AttributeError) as exc:  # e.g. !!binary, !!set, !!timestamp
            raise Quarantine("invalid_header", f"header: cannot be read: {exc}"[:500], frame.line) from None
        if not isinstance(header.get("test_name"), str) or not header.get("test_name").strip():
            raise Quarantine("invalid_header", "the header has no test_name", frame.line)
        when = naming.start_time(header)
        if when is None:
            raise Quarantine("invalid_header", "the header has no usable start_time or test_start_time",
                             frame.line)
        return header, when
    raise Quarantine("empty", f"{first_line_hint}: no report header (empty input)")


def sanitize_stream(stream, report_file: str, out_tmp: Path, max_doc_bytes: int,
                    bridges: privacy.BridgeDB) -> Output:
    """Sanitize one report from a byte stream into out_tmp (durable). Raises Quarantine."""
    frames = yamldocs.frames(stream, max_doc_bytes)
    header, when = _header(frames, report_file)
    redactor = privacy.probe_redactor(header)
    test_name = naming.canonical_test_name(header.get("test_name"))
    bridge_rules = bridges if test_name in privacy.BRIDGE_TESTS else None
    entries_tmp = out_tmp.with_name(out_tmp.name + "-entries")
    dropped: list[dict] = []
    entries = 0
    try:
        with atomic.writing(entries_tmp, "w") as fh:
            def events():
                nonlocal entries
                yield yaml.StreamStartEvent()
                for frame in frames:
                    if frame.trailer is not None:
                        dropped.append({"line": frame.trailer_line, "error": "text after the end marker"})
                    if frame.text is None and frame.size == 0:
                        continue
                    try:
                        evs = yamldocs.parse(frame)
                        if len(evs) == 3 and isinstance(evs[1], yaml.ScalarEvent) and \
                                evs[1].value in ("", "~", "null"):
                            continue  # an empty document
                        out = list(_entry_events(evs, redactor, bridge_rules))
                    except yamldocs.DocError as exc:
                        if exc.reason in ("unsafe_tag", "too_large"):
                            raise Quarantine(exc.reason, str(exc), exc.line) from None
                        dropped.append({"line": exc.line, "error": str(exc)[:300]})
                        continue
                    entries += 1
                    yield from out
                yield yaml.StreamEndEvent()
            yaml.emit(events(), fh, Dumper=yaml.CSafeDumper, allow_unicode=True, width=100)
        clean = {k: v for k, v in redactor.obj(header).items() if k not in RESERVED_HEADER_KEYS}
        if "probe_ip" in clean:
            clean["probe_ip"] = privacy.SANITIZED_PROBE_IP
        clean["report_file"] = redactor.text(report_file)  # raw and tar member names are the sender's
        clean["sanitizer_version"] = SANITIZER_VERSION
        if dropped:
            clean["sanitizer_dropped"] = dropped
        # width=-1: every header value on one line, so that content_digest can leave report_file out.
        head = yaml.dump(clean, Dumper=yaml.CSafeDumper, explicit_start=True, explicit_end=True,
                         default_flow_style=False, allow_unicode=True, sort_keys=False, width=-1).encode()
        digest, content = hashlib.sha256(), hashlib.sha256()
        size = len(head)
        with atomic.writing(out_tmp) as out, open(entries_tmp, "rb") as body:
            out.write(head)
            digest.update(head)
            for line in head.splitlines(keepends=True):
                if not line.startswith(REPORT_FILE_LINE):
                    content.update(line)
            for chunk in iter(lambda: body.read(1 << 20), b""):
                out.write(chunk)
                digest.update(chunk)
                content.update(chunk)
                size += len(chunk)
    finally:
        with contextlib.suppress(FileNotFoundError):
            entries_tmp.unlink()
    name = naming.report_file_name(clean, when)
    return Output(member=report_file, outcome="sanitized", tmp=out_tmp, name=name, sha256=digest.hexdigest(),
                  size=size, content_sha256=content.hexdigest(),
                  info={"report_id": header.get("report_id"), "test_name": test_name, "entries": entries,
                        "dropped": len(dropped)})


def content_digest(path: Path) -> str:
    """sha256 of a sanitized report without its header's report_file line: the same report pulled under
    two raw names has the same content digest."""
    h = hashlib.sha256()
    in_header = True
    with open(path, "rb") as fh:
        for line in fh:
            if in_header:
                if line.startswith(REPORT_FILE_LINE):
                    continue
                if line.rstrip(b"\r\n") == b"...":
                    in_header = False
            h.update(line)
    return h.hexdigest()
