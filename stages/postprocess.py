"""Post-processing: a sanitized report becomes database documents (JSON lines, one per document).

One line per entry for the `measurements` collection, in the report's order, then, last, the report (its
header) for the `reports` collection (written last: it carries the entry count). Values are normalized so
that they are plain JSON and storable in the database:
- mapping keys become strings (a list key is stringified as JSON); '.' in a key becomes '．' (U+FF0E) and
  a leading '$' becomes '＄' (U+FF04), as FerretDB refuses both; NUL bytes are stripped from keys and
  strings;
- an array directly inside an array becomes {"array": [...]} (FerretDB 1.x stores no nested arrays, and
  legacy reports are full of them: headers are [[name, [values]]]);
- binary values become {"format": "base64", "data": ...}; sets become sorted lists; timestamps become
  ISO 8601 strings; NaN and infinities become strings (FerretDB 1.x drops the connection on NaN);
  integers beyond 64 bits become strings;
- 2012 reports nest each entry's data under `report:`; it is flattened into the entry;
- a document larger than the database stores has its largest values replaced by references (see fit), and
  an entry that cannot be built at all is stored as a stub with "refused" (see documents);
- test_name variants are mapped to canonical names (naming.TEST_NAME_VARIANTS).
Ids are deterministic: the report key is its report_id (else a hash of the canonical header), with the
file's collision suffix appended when it has one; a measurement's id is the report key and its index.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import math
import re
from pathlib import Path
from typing import IO, Iterator

import bson
import yaml

from stages import naming
from stages.inputs import InputError, open_input
from stages.yamldocs import HeaderLoader

HEADER_NOISE = ("report_file", "sanitizer_version", "sanitizer_dropped")
_SUFFIX = re.compile(r"-probe-(\d+)\.yaml$")
INT64 = (-(2 ** 63), 2 ** 63 - 1)


class ReportLoader(HeaderLoader):
    """Sanitized reports only hold standard tags; mappings may have list keys, which become strings."""

    def construct_mapping(self, node, deep=False):
        if not isinstance(node, yaml.MappingNode):
            return super().construct_mapping(node, deep)
        self.flatten_mapping(node)
        mapping = {}
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, (list, dict, set)):
                key = json.dumps(normalize(key), sort_keys=True, ensure_ascii=False)
            mapping[key] = self.construct_object(value_node, deep=deep)
        return mapping

    # Resolving tags: what BaseResolver does when there are no path resolvers (checked below), without
    # its generality; the composer calls these for every node.
    def resolve(self, kind, value, implicit):
        if kind is yaml.ScalarNode:
            if implicit[0]:
                for tag, regexp in self.yaml_implicit_resolvers.get(value[:1], ()):
                    if regexp.match(value):
                        return tag
            return self.DEFAULT_SCALAR_TAG
        return self.DEFAULT_SEQUENCE_TAG if kind is yaml.SequenceNode else self.DEFAULT_MAPPING_TAG

    def descend_resolver(self, current_node, current_index):
        pass

    def ascend_resolver(self):
        pass

    def construct_document(self, node):
        """The document as construct_object builds it, faster: plain strings, sequences and mappings (nearly
        every node of a report) are built here directly, without the generic constructor's bookkeeping;
        every other node (other tags, sets, timestamps, binary, ...) goes to it as before."""
        try:
            return self._build(node)
        finally:
            super().construct_document(yaml.ScalarNode(_STR, ""))  # finish and reset the constructor's state

    def _build(self, node):
        cls, tag = node.__class__, node.tag
        if cls is yaml.ScalarNode:
            if tag == _STR:
                return node.value
            value = node.value
            if tag == _INT and value.isascii() and value.isdigit() and (value[0] != "0" or value == "0"):
                return int(value)  # decimal: what construct_yaml_int gives (which also reads 0x, 0o, 1_0, ...)
        if cls is yaml.SequenceNode and tag == _SEQ:
            return [self._build(item) for item in node.value]
        if cls is yaml.MappingNode and tag == _MAP:
            self.flatten_mapping(node)
            mapping = {}
            for key_node, value_node in node.value:
                key = self._build(key_node)
                if isinstance(key, (list, dict, set)):
                    key = json.dumps(normalize(key), sort_keys=True, ensure_ascii=False)
                mapping[key] = self._build(value_node)
            return mapping
        return self.construct_object(node, deep=True)


_STR, _INT = "tag:yaml.org,2002:str", "tag:yaml.org,2002:int"
_SEQ, _MAP = "tag:yaml.org,2002:seq", "tag:yaml.org,2002:map"
if ReportLoader.yaml_path_resolvers or None in ReportLoader.yaml_implicit_resolvers:
    raise ImportError("ReportLoader.resolve assumes no path resolvers and no wildcard implicit resolvers")
ReportLoader.add_constructor(_MAP, ReportLoader.construct_mapping)


def _key(k) -> str:
    if k.__class__ is str and "." not in k and "\x00" not in k and not k.startswith("$"):
        return k  # nearly every key: nothing to change
    if isinstance(k, bytes):
        k = k.decode("utf-8", "replace")
    elif isinstance(k, (dt.date, dt.datetime)):
        k = k.isoformat()
    elif not isinstance(k, str):
        k = json.dumps(k) if isinstance(k, (bool, type(None))) else str(k)
    k = k.replace("\x00", "").replace(".", "\uff0e")
    if k.startswith("$"):
        k = "\uff04" + k[1:]
    return k


def normalize(value):
    """Any constructed YAML value -> plain, storable JSON data."""
    cls = value.__class__  # the common exact types first; the general tests below give the same results
    if cls is str:
        return value.replace("\x00", "") if "\x00" in value else value
    if cls is dict:
        return {_key(k): normalize(v) for k, v in value.items()}
    if cls is list:
        return [_wrap(normalize(v)) for v in value]
    if isinstance(value, dict):
        return {_key(k): normalize(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_wrap(normalize(v)) for v in value]
    if isinstance(value, (set, frozenset)):
        items = [_wrap(normalize(v)) for v in value]
        return sorted(items, key=lambda v: json.dumps(v, sort_keys=True))
    if isinstance(value, str):
        return value.replace("\x00", "") if "\x00" in value else value
    if isinstance(value, bytes):
        return {"format": "base64", "data": base64.b64encode(value).decode()}
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return value if INT64[0] <= value <= INT64[1] else str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def _wrap(item):
    return {"array": item} if isinstance(item, list) else item


def flatten_entry(entry) -> dict:
    if not isinstance(entry, dict):
        return {"value": entry}
    inner = entry.get("report")
    if isinstance(inner, dict):
        flat = {k: v for k, v in entry.items() if k != "report"}
        for k, v in inner.items():
            flat.setdefault(k, v)
        return flat
    return entry


def report_key(header: dict, file_name: str) -> str:
    rid = naming.report_id(header)
    if rid is None:
        canonical = json.dumps(normalize({k: v for k, v in header.items() if k not in HEADER_NOISE}),
                               sort_keys=True, ensure_ascii=False)
        rid = "h" + hashlib.sha256(canonical.encode()).hexdigest()[:32]
    m = _SUFFIX.search(file_name)
    return f"{rid}~{m.group(1)}" if m else rid


def _each_document(fh: IO[bytes]) -> Iterator[tuple[object, str]]:
    """(document, "") or (None, error) for every document: one that cannot be built (a !!timestamp or
    !!int that is not one, ...) costs only itself."""
    loader = ReportLoader(fh)
    try:
        while loader.check_node():
            node = loader.get_node()
            try:
                yield loader.construct_document(node), ""
            except (yaml.YAMLError, ValueError, TypeError, AttributeError, RecursionError) as exc:
                loader.constructed_objects, loader.recursive_objects, loader.state_generators = {}, {}, []
                loader.deep_construct = False
                yield None, f"{type(exc).__name__}: {exc}"[:500]
    finally:
        loader.dispose()


def documents(fh: IO[bytes], file_name: str) -> Iterator[tuple[str, dict]]:
    """(collection, document) for a sanitized report, streamed document by document. An entry that cannot
    be built is stored as a stub: "refused": {"error", "archive", "document"} (the archive keeps it)."""
    docs = _each_document(fh)
    header, error = next(docs, (None, "empty"))
    if not isinstance(header, dict):
        raise ValueError(f"{file_name}: no report header" + (f" ({error})" if error else ""))
    key = report_key(header, file_name)
    test_name = naming.canonical_test_name(header.get("test_name"))
    when = naming.start_time(header)
    start = normalize(when) if when else None
    common = {"report_key": key, "test_name": test_name, "probe_cc": naming.country(header),
              "probe_asn": naming.asn(header), "start_time": start}
    # "day": reports by country, test and day are an equality filter FerretDB pushes down to an index.
    report = {"_id": key, **common, "day": when.strftime("%Y-%m-%d") if when else None,
              "report_id": header.get("report_id"), "report_file": file_name,
              "header": normalize({k: v for k, v in header.items() if k != "test_name"}),
              "original_test_name": normalize(header.get("test_name"))}
    n = 0
    for entry, error in docs:
        if error:
            yield "measurements", {"_id": f"{key}:{n:06d}", **common, "index": n, "input": None, "entry": None,
                                   "refused": {"error": f"cannot be converted: {error}",
                                               "archive": naming.archive_path(file_name), "document": n + 2}}
            n += 1
            continue
        if entry is None:
            continue
        flat = normalize(flatten_entry(entry))
        yield "measurements", {"_id": f"{key}:{n:06d}", **common, "index": n, "input": flat.get("input"),
                               "entry": flat}
        n += 1
    report["entries"] = n
    yield "reports", report


def staged_key(yaml_path: Path) -> str | None:
    """The report key of a sanitized report from its header alone (the first document), or None when it
    has none: the importer gives reports of one key to one worker."""
    try:
        with open_input(yaml_path) as fh:
            docs = _each_document(fh)
            header, _ = next(docs, (None, ""))
            docs.close()
    except (OSError, ValueError, UnicodeDecodeError, yaml.YAMLError, InputError):
        return None
    return report_key(header, yaml_path.name) if isinstance(header, dict) else None


def write_jsonl(yaml_path: Path, out: IO[bytes]) -> dict:
    """Write the report's documents as JSON lines; returns the report document (written last). A document
    larger than the database stores has its largest values replaced by references (see `fit`)."""
    report = None
    omitted: list[int] = []
    where = naming.archive_path(yaml_path.name)
    with open_input(yaml_path) as fh:
        for coll, doc in documents(fh, yaml_path.name):
            if coll == "reports":
                report = doc
                if omitted:
                    doc["omitted_entries"] = omitted[:MAX_LISTED]
                    doc["omitted_entries_count"] = len(omitted)
            line = json.dumps({"c": coll, "d": doc}, ensure_ascii=False, sort_keys=True)
            if len(line) > FIT_CHECK_BYTES and fit(doc, where):
                if coll == "measurements":
                    omitted.append(doc["index"])
                line = json.dumps({"c": coll, "d": doc}, ensure_ascii=False, sort_keys=True)
            out.write((line + "\n").encode())
    return report


# ---- documents larger than the database stores -----------------------------------------------------------
# A document over MAX_STORED_BYTES (BSON) keeps its shape: its largest strings are replaced, largest first,
# by {"omitted": {"bytes", "sha256"}} until it fits (a document of many small values has its whole
# entry or header replaced). The document gets "omitted": {"archive", "document", "paths"}: the sanitized
# report in the archive, which keeps everything, and the document's number in it (the header is 1).
MAX_STORED_BYTES = 8 << 20       # FerretDB and MongoDB refuse 16 MiB; half of it keeps batches sendable
FIT_CHECK_BYTES = 1 << 20        # JSON shorter than this is far below the limit in BSON too
MIN_OMITTED = 1024               # smaller values are not worth a reference
MAX_LISTED = 1000


def stored_size(doc: dict) -> int:
    return len(bson.encode(doc))


def fit(doc: dict, where: str) -> bool:
    """Make doc fit MAX_STORED_BYTES in place; True when something was replaced."""
    excess = stored_size(doc) - MAX_STORED_BYTES
    if excess <= 0:
        return False
    body = "entry" if "entry" in doc else "header"
    paths: list[str] = []
    leaves = sorted(_large_strings(doc[body], body), key=lambda leaf: -leaf[0])
    for size, path, parent, key in leaves:
        if excess <= 0:
            break
        parent[key] = _reference(parent[key])
        paths.append(path)
        excess -= size
    if stored_size(doc) > MAX_STORED_BYTES:
        doc[body] = _reference(json.dumps(doc[body], ensure_ascii=False, sort_keys=True))
        paths = [body]
    doc["omitted"] = {"archive": where, "document": doc["index"] + 2 if body == "entry" else 1, "paths": paths}
    return True


def _reference(value: str) -> dict:
    data = value.encode("utf-8", "replace")
    return {"omitted": {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}}


def _large_strings(value, path: str):
    """(size, path, parent, key) of every string of at least MIN_OMITTED characters inside value."""
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, v in items:
        if isinstance(v, str):
            if len(v) >= MIN_OMITTED:
                yield len(v.encode("utf-8", "replace")), f"{path}/{key}", value, key
        elif isinstance(v, (dict, list)):
            yield from _large_strings(v, f"{path}/{key}")


def read_jsonl(path: Path) -> Iterator[tuple[str, dict, int]]:
    """(collection, document, the bytes of its line) for every line of a post-processed report."""
    with open_input(path) as fh:
        for line in fh:
            rec = json.loads(line)
            yield rec["c"], rec["d"], len(line)
