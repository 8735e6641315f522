"""Reading a legacy report document by document, tolerantly, as libyaml parse events.

The report is split on its document frames (`---` starts a document, `...` ends one) before anything is
parsed, so one bad document costs only itself; its line number is kept. Each document is parsed by libyaml
(CSafeLoader's C parser) into events, which are checked before anything is built from them:
- tags: only YAML's standard tags; `!!python/unicode` and `!!python/str` are kept as plain strings; any
  other tag (`!!python/object/...`, custom tags) raises UnsafeTag. Nothing is ever constructed from a tag.
- aliases: the size a document would have with every alias expanded is counted; an alias bomb raises
  TooLarge long before anything is expanded (events keep aliases as aliases).
Documents are held one at a time, capped at max_doc_bytes, so memory stays bounded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import IO, Iterator

import yaml

YAML_TAG = "tag:yaml.org,2002:"
STANDARD_TAGS = frozenset(YAML_TAG + t for t in (
    "str", "int", "float", "bool", "null", "binary", "set", "timestamp", "map", "seq", "omap", "pairs",
    "merge", "value"))
STRING_PYTHON_TAGS = frozenset({YAML_TAG + "python/unicode", YAML_TAG + "python/str"})
BINARY_TAG = YAML_TAG + "binary"
BOM = "\ufeff"
# Legacy reports nest at most 9 levels; the database takes 100, and post-processing may double the levels
# of nested lists ({"array": [...]}).
MAX_DEPTH = 32
_MAP_START, _SEQ_START = yaml.MappingStartEvent, yaml.SequenceStartEvent
_MAP_END, _SEQ_END = yaml.MappingEndEvent, yaml.SequenceEndEvent


class DocError(Exception):
    def __init__(self, reason: str, message: str, line: int):
        super().__init__(message)
        self.reason, self.line = reason, line


@dataclass
class Frame:
    line: int                 # line number (1-based) of the document's first content line
    text: str | None          # None when the document was over the size limit
    size: int
    trailer: str | None = None  # junk after a `...` marker on its line (a malformed trailer)
    trailer_line: int = 0


def _is_start(line: str) -> bool:
    return line.startswith("---") and (len(line) == 3 or line[3] in " \t\r\n")


def _is_end(line: str) -> bool:
    return line.startswith("...") and (len(line) == 3 or line[3] in " \t\r\n")


def _blank_or_comment(line: str) -> bool:
    s = line.strip()
    return not s or s.startswith("#") or s.startswith("%")


def frames(stream: IO[bytes], max_doc_bytes: int) -> Iterator[Frame]:
    """Split a byte stream into document frames. Invalid UTF-8 makes that document's text None-safe: the
    bytes are decoded with replacement and the document is parsed (and rejected) by libyaml as usual."""
    buf: list[str] = []
    size = 0
    start = 0
    open_doc = False
    over = False

    def close():
        return Frame(start, None if over else "".join(buf), size)

    lineno = 0
    for raw in stream:
        lineno += 1
        line = raw.decode("utf-8", "replace")
        if lineno == 1 and line.startswith(BOM):  # a byte order mark is not content
            line = line[1:]
        if _is_start(line):
            if open_doc:
                yield close()
            rest = line[3:].lstrip(" \t")
            buf, size, over, open_doc, start = [], 0, False, True, lineno
            if rest.strip():
                buf.append(rest)
                size = len(rest)
            continue
        if _is_end(line):
            trailer = line[3:].strip()
            if open_doc:
                frame = close()
                if trailer and not trailer.startswith("#"):
                    frame.trailer, frame.trailer_line = trailer[:200], lineno
                yield frame
            elif trailer and not trailer.startswith("#"):
                yield Frame(lineno, None, 0, trailer[:200], lineno)
            buf, size, over, open_doc = [], 0, False, False
            continue
        if not open_doc:
            if _blank_or_comment(line):
                continue
            buf, size, over, open_doc, start = [], 0, False, True, lineno  # a bare document
        if over:
            size += len(raw)
            continue
        size += len(raw)
        if size > max_doc_bytes:
            over, buf = True, []
            continue
        buf.append(line)
    if open_doc:
        yield close()


def parse(frame: Frame, max_expansion_factor: int = 10, expansion_slack: int = 10_000) -> list:
    """Parse one frame into a checked list of events (StreamStart/End removed)."""
    if frame.text is None:
        raise DocError("too_large", f"document of {frame.size} bytes is over the size limit", frame.line)
    try:
        events = list(yaml.parse(frame.text, Loader=yaml.CSafeLoader))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = frame.line + (mark.line if mark else 0)
        raise DocError("unparseable", f"{exc.problem or exc} (line {line})", line) from None
    except yaml.YAMLError as exc:
        raise DocError("unparseable", str(exc), frame.line) from None
    events = events[1:-1]  # without StreamStart and StreamEnd
    # Tags need a '!', anchors (hence aliases) an '&': a document with neither has only its depth to check.
    if "!" in frame.text or "&" in frame.text:
        check(events, frame.line, max_expansion_factor * len(events) + expansion_slack)
    else:
        check_depth(events, frame.line)
    return events


def _too_deep(first_line: int, ev) -> DocError:
    line = first_line + (ev.start_mark.line if ev.start_mark else 0)
    return DocError("unparseable", f"nested deeper than {MAX_DEPTH} levels (line {line})", line)


def check_depth(events: list, first_line: int) -> None:
    """Refuse documents nested deeper than MAX_DEPTH (documents without anchors: plain nesting)."""
    depth = 0
    for ev in events:
        kind = type(ev)
        if kind is _MAP_START or kind is _SEQ_START:
            depth += 1
            if depth > MAX_DEPTH:
                raise _too_deep(first_line, ev)
        elif kind is _MAP_END or kind is _SEQ_END:
            depth -= 1


def check(events: list, first_line: int, max_nodes: int) -> None:
    """Refuse unknown tags, alias bombs and nesting deeper than MAX_DEPTH (counting what aliases bring:
    a chain of aliases can nest deeply in a few lines); rewrite python string tags to plain strings, in
    place."""
    anchors: dict[str, int] = {}
    heights: dict[str, int] = {}  # anchor -> levels of nesting its node holds (a scalar: 0)
    stack: list[list] = []   # [anchor, node count, tallest child] of open collections
    total = 0
    for i, ev in enumerate(events):
        tag = getattr(ev, "tag", None)
        if tag is not None and tag != "!" and tag not in STANDARD_TAGS:
            line = first_line + (ev.start_mark.line if ev.start_mark else 0)
            if tag in STRING_PYTHON_TAGS and isinstance(ev, yaml.ScalarEvent):
                events[i] = yaml.ScalarEvent(ev.anchor, None, (False, True), ev.value, style="'")
            else:
                raise DocError("unsafe_tag", f"tag {tag} is not allowed (line {line})", line)
        if isinstance(ev, (yaml.ScalarEvent, yaml.AliasEvent)):
            n = 1 if isinstance(ev, yaml.ScalarEvent) else anchors.get(ev.anchor, 1)
            height = 0 if isinstance(ev, yaml.ScalarEvent) else heights.get(ev.anchor, 0)
            if isinstance(ev, yaml.ScalarEvent) and ev.anchor:
                anchors[ev.anchor], heights[ev.anchor] = 1, 0
            total += n
            if stack:
                stack[-1][1] += n
                stack[-1][2] = max(stack[-1][2], height)
            if len(stack) + height > MAX_DEPTH:
                raise _too_deep(first_line, ev)
        elif isinstance(ev, yaml.CollectionStartEvent):
            stack.append([ev.anchor, 1, 0])
            total += 1
            if len(stack) > MAX_DEPTH:
                raise _too_deep(first_line, ev)
        elif isinstance(ev, yaml.CollectionEndEvent):
            anchor, n, tallest = stack.pop()
            if anchor:
                anchors[anchor], heights[anchor] = n, tallest + 1
            if stack:
                stack[-1][1] += n
                stack[-1][2] = max(stack[-1][2], tallest + 1)
        if total > max_nodes:
            line = first_line + (ev.start_mark.line if ev.start_mark else 0)
            raise DocError("too_large", f"aliases expand to more than {max_nodes} nodes (alias bomb?) "
                                        f"(line {line})", line)


class HeaderLoader(yaml.CSafeLoader):
    """Builds the header (small, already checked) with python string tags read as strings."""


HeaderLoader.add_constructor(YAML_TAG + "python/unicode", yaml.constructor.SafeConstructor.construct_yaml_str)
HeaderLoader.add_constructor(YAML_TAG + "python/str", yaml.constructor.SafeConstructor.construct_yaml_str)


def construct(frame: Frame):
    """Build a (checked) document as Python data."""
    return yaml.load(frame.text, Loader=HeaderLoader)
