"""Hypothesis strategies for hostile legacy reports, and writing them into a data root's raw/ folder.

A `Batch` is what one example puts in raw/: a few inputs (plain, gzip, tar with odd members, links,
duplicates of one another) holding reports built as YAML text, so that every construct libyaml accepts can
appear: every tag (standard, python, unknown), anchors and aliases (recursive, undefined, bombs by count
and by bytes), deep nesting (also through aliases), huge scalars and keys, keys of every type (complex `? `
keys too), documents that are not mappings, invalid UTF-8, a BOM, CRLF, NUL bytes, truncation. Every
report of a batch has the batch's probe IP in its header (in some textual form) and, when that header
names it usably, the IP hidden in its values, keys, multi-line strings and !!binary payloads (as text and
packed) in every form of `ipforms.ip_forms`.
"""

from __future__ import annotations

import base64
import gzip
import io
import json
import os
import re
import shutil
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import strategies as st

from campaign.ipforms import ip_forms, packed_forms

PROBE_IPS = ["1.2.3.4", "203.0.113.77", "198.51.100.9", "10.9.8.7", "2001:db8::42", "2001:db8:0:1::a0",
             "fe80::1:2"]
DECOYS = {"1.2.3.4": ["11.2.3.45", "1.2.3.44", "0.1.2.3", "4.3.2.11.in-addr.arpa"],
          "2001:db8::42": ["2001:db8::421", "2001:db8::4"]}
TEST_NAMES = ["http_requests", "dns_consistency", "tcp_connect", "bridge_reachability", "web_connectivity",
              "DNS tamper", "x"]
PLAIN = ["a", "x1", "GET", "200", "-7", "0x1F", "0o17", "1_000", "1e3", "-.5", ".nan", "-.inf", "~", "null",
         "true", "yes", "No", "off", "2001-12-14", "2001-12-14t21:59:43.10-05:00", "2002-12-14 21:59:43.10",
         "12:30:00", "=", "<<", "http://a.example/x?y=1&z=2", "99999999999999999999999", "-0", "0.", "1.2.3"]
SAFE_TAGGED = ["!!str 12", "!!int '12'", "!!float '1.5'", "!!bool 'yes'", "!!null ''", "! 7",
               "!!python/unicode 'text'", "!!python/str 'text'", "!<tag:yaml.org,2002:str> long-form",
               "!!timestamp 2001-12-14t21:59:43.10-05:00", "!!timestamp '2001-12-14'", "!!binary 'AAEC/w=='",
               "!!binary ' not base64 !'", "!!timestamp nonsense", "!!int abc", "!!float x",
               "!!set {a, b, ~}", "!!set {[1]}", "!!omap [{a: 1}, {b: 2}]", "!!omap [a, b]", "!!pairs [{a: 1}, {a: 2}]",
               "!!seq [a]", "!!map {a: b}", "!!merge <<", "!!value ="]
UNSAFE_TAGGED = ["!!python/object:os.system {}", "!!python/object/apply:os.system ['true']",
                 "!!python/object/new:list [[1]]", "!!python/name:os.system ''", "!!python/module:os ''",
                 "!!python/tuple [1, 2]", "!!python/bytes 'eA=='", "!foo x", "!<tag:x> y", "!e!str undefined-handle",
                 "!<!> x", "!!whatever 1"]
# The fixed examples (what Batch.save writes, named in cases.json): test data of this checkout.
REPRODUCERS = Path(__file__).resolve().parents[1] / "tests" / "unit" / "stages" / "data" / "hostile"
NAME_EXTS = [".yaml", ".yamloo", ".yamlooni", ".json", ".gz", ".yaml.gz", ".tar", "", ".txt"]


@dataclass
class Input:
    """One entry of raw/<collector>/: a file, or a link (to a file outside raw/ holding data, to a folder,
    or dangling)."""
    name: str                 # path under raw/, e.g. "c1/e03.yaml"
    data: bytes = b""
    kind: str = "file"        # file, symlink, hardlink, dirlink, dangling


@dataclass
class Batch:
    ip: str
    inputs: list[Input] = field(default_factory=list)

    def __repr__(self):  # short enough to read in a falsifying example (save() keeps it whole)
        return "Batch(ip=%r, inputs=[\n%s])" % (self.ip, ",\n".join(
            f"  Input({i.name!r}, kind={i.kind!r}, {len(i.data)} bytes: {i.data[:2000]!r}"
            f"{'...' if len(i.data) > 2000 else ''})" for i in self.inputs))

    def _repr_pretty_(self, printer, cycle):  # how hypothesis prints it
        printer.text(repr(self))

    def save(self, folder: Path) -> None:
        """Each input as a file in folder (as it would be in raw/, links as their target's content), and
        batch.json (probe IP, raw names, kinds): what a fixed example in tests/unit/stages/data/hostile/ needs.
        What the folder held before (an earlier, larger failing batch) is replaced."""
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        files = []
        for n, inp in enumerate(self.inputs):
            name = f"input{n}-" + inp.name.replace("/", "_")
            (folder / name).write_bytes(inp.data)
            files.append({"file": name, "raw": inp.name, "kind": inp.kind})
        (folder / "batch.json").write_text(json.dumps({"probe_ip": self.ip, "inputs": files}, indent=1) + "\n")


def write(batch: Batch, raw: Path, outside: Path) -> list[str]:
    """Put the batch's inputs into raw/ (links point into `outside`, a folder beside the data root);
    returns their paths relative to the data root."""
    out = []
    for i, inp in enumerate(batch.inputs):
        path = raw / inp.name
        path.parent.mkdir(parents=True, exist_ok=True)
        target = outside / f"target-{i}"
        if inp.kind == "file":
            path.write_bytes(inp.data)
        elif inp.kind in ("symlink", "hardlink"):
            target.write_bytes(inp.data)
            (os.symlink if inp.kind == "symlink" else os.link)(target, path)
        elif inp.kind == "dirlink":
            target.mkdir()
            (target / "inside.yaml").write_bytes(inp.data)
            os.symlink(target, path)
        elif inp.kind == "dangling":
            os.symlink(outside / "nowhere", path)
        out.append(f"raw/{inp.name}")
    return out


def reproducers(folder: Path = REPRODUCERS) -> list[dict]:
    """The fixed examples: every defect the campaign found, minimal. folder/cases.json (by default
    tests/unit/stages/data/hostile/cases.json) is a list of {"name", "probe_ip", "stage", "defect", "inputs":
    [{"file", "raw", "kind"}]} (inputs as Batch.save writes them); none when the folder has no cases.json."""
    index = folder / "cases.json"
    return json.loads(index.read_text()) if index.exists() else []


def place(case: dict, raw: Path, outside: Path, folder: Path = REPRODUCERS) -> list[str]:
    """Put a fixed example's inputs (files in folder) into raw/ as the campaign had them; returns their raw
    paths. An input with "tar_member" is its file wrapped in a tar under that member name (made here: no
    binary in git)."""
    inputs = [Input(i["raw"], _reproducer_bytes(folder, i), i.get("kind", "file")) for i in case["inputs"]]
    return write(Batch(case.get("probe_ip") or "", inputs), raw, outside)


def _reproducer_bytes(folder: Path, item: dict) -> bytes:
    data = (folder / item["file"]).read_bytes()
    return tar_of([(item["tar_member"], data, "file")], compress=False) if "tar_member" in item else data


# ---- YAML text -------------------------------------------------------------------------------------------

def double_quoted(text: str) -> str:
    out = []
    for ch in text:
        o = ord(ch)
        if ch in '"\\':
            out.append("\\" + ch)
        elif o == 0:
            out.append("\\0")
        elif o < 0x20 or 0x7F <= o <= 0x9F or ch in "\u2028\u2029\ufeff" or 0xD800 <= o <= 0xDFFF:
            out.append(f"\\x{o:02x}" if o < 0x100 else f"\\u{o:04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def single_quoted(text: str) -> str:
    return "'" + "".join(c for c in text if c.isprintable()).replace("'", "''") + "'"


class Ctx:
    """What one report's generation needs: the IP forms to hide (none when its header has no usable probe
    IP), whether unsafe tags may appear, and the anchors of the document being written."""

    def __init__(self, ip: str, hide: bool, unsafe: bool):
        self.forms = ip_forms(ip) if hide else []
        self.packed = packed_forms(ip) if hide else []
        self.decoys = DECOYS.get(ip, ["192.0.2.1"])
        self.unsafe = unsafe
        self.anchors: list[str] = []  # complete, may be aliased
        self.open: list[str] = []     # still open: an alias to one is a recursive structure
        self.n = 0

    def new_doc(self):
        self.anchors, self.open = [], []

    def anchor(self) -> str:
        self.n += 1
        return f"a{self.n}"


def rare(draw, one_in: int = 10) -> bool:
    """True about once in `one_in` draws; shrinks to False."""
    return draw(st.integers(0, one_in - 1)) == one_in - 1


@st.composite
def hidden_text(draw, ctx: Ctx) -> str:
    """A string holding the probe IP in one of its forms (or a decoy when there is nothing to hide)."""
    form = draw(st.sampled_from(ctx.forms or ctx.decoys))
    pre = draw(st.sampled_from(["", "client ", "X-Forwarded-For: ", "addr=", "[", "(", "host\t", "\"",
                                "connected to ", "ip-"]))
    post = draw(st.sampled_from(["", ":4433", " ok", "]", ")", "/24", ",", "\nsecond line", ".", "\"",
                                 ".dyn.isp.example"]))
    if ctx.forms and rare(draw, 30):
        form = form[:3] + "\0" + form[3:]  # a NUL inside: gone after post-processing strips NULs
    return pre + form + post


@st.composite
def binary_scalar(draw, ctx: Ctx) -> str:
    how = draw(st.sampled_from(["bytes", "text", "packed"]))
    if how == "bytes" or not ctx.packed and how == "packed":
        data = draw(st.binary(max_size=64))
    elif how == "text":
        data = draw(hidden_text(ctx)).encode("utf-8", "surrogatepass")
    else:
        data = draw(st.binary(max_size=8)) + draw(st.sampled_from(ctx.packed)) + draw(st.binary(max_size=8))
    encoded = base64.b64encode(data).decode()
    if rare(draw, 4):
        encoded = "\n".join(encoded[i:i + 8] for i in range(0, len(encoded), 8))
        return "!!binary " + double_quoted(encoded)
    return "!!binary " + (encoded or "''")


@st.composite
def scalar(draw, ctx: Ctx) -> str:
    """A scalar in flow context."""
    kind = draw(st.sampled_from(["plain", "dq", "sq", "ip", "ip", "tagged", "binary", "alias", "big"]))
    if kind == "plain":
        return draw(st.sampled_from(PLAIN))
    if kind == "dq":
        return double_quoted(draw(st.text(max_size=30)))
    if kind == "sq":
        return single_quoted(draw(st.text(max_size=30)))
    if kind == "ip":
        text = draw(hidden_text(ctx))
        plain = re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9 .:/=-]*", text) and ": " not in text and text[-1] not in ": "
        return text if plain and draw(st.booleans()) else double_quoted(text)
    if kind == "tagged":
        if ctx.unsafe and rare(draw, 3):
            return draw(st.sampled_from(UNSAFE_TAGGED))
        return draw(st.sampled_from(SAFE_TAGGED))
    if kind == "binary":
        return draw(binary_scalar(ctx))
    if kind == "alias":
        pool = ctx.anchors + (ctx.open if rare(draw, 4) else []) + (["nope"] if rare(draw, 10) else [])
        return f"*{draw(st.sampled_from(pool))}" if pool else "~"
    n = draw(st.integers(1, 200_000))
    middle = draw(hidden_text(ctx)) if draw(st.booleans()) else ""
    return double_quoted("x" * (n // 2) + middle + "y" * (n - n // 2))


@st.composite
def key(draw, ctx: Ctx, depth: int) -> str:
    """A mapping key in flow context: of every type, and complex (collections) too."""
    kind = draw(st.sampled_from(["plain", "int", "float", "null", "bool", "timestamp", "dq", "ip", "binary",
                                 "merge", "collection", "set", "long"]))
    simple = {"plain": ["k", "input", "report", "$where", "a.b", "_id"],
              "int": ["1", "-7", "0x10", "99999999999999999999"],
              "float": ["1.5", ".inf", ".nan", "1e400"], "null": ["~", "null"], "bool": ["true", "No"],
              "timestamp": ["2001-12-14", "2001-12-14t21:59:43.10-05:00"], "merge": ["<<"]}
    if kind in simple:
        return draw(st.sampled_from(simple[kind]))
    if kind == "dq":
        return double_quoted(draw(st.text(max_size=20)))
    if kind == "ip":
        return double_quoted(draw(hidden_text(ctx)))
    if kind == "binary":
        return draw(binary_scalar(ctx))
    if kind == "set":
        return "!!set {" + ", ".join(draw(st.lists(st.sampled_from(["a", "1", "~"]), max_size=3))) + "}"
    if kind == "long":
        return double_quoted("k" * draw(st.integers(1000, 100_000)))  # over 1024: only as an explicit `? ` key
    return draw(node(ctx, depth + 1))


@st.composite
def node(draw, ctx: Ctx, depth: int = 0) -> str:
    """Any node in flow context."""
    kinds = ["scalar", "scalar", "seq", "map"] if depth < 6 else ["scalar"]
    kind = draw(st.sampled_from(kinds + ["deep", "special"]))
    if kind == "scalar":
        return draw(scalar(ctx))
    if kind == "deep":
        d = draw(st.integers(1, 3000))
        return ("[" * d + "x" + "]" * d) if draw(st.booleans()) else ("{a: " * d + "x" + "}" * d)
    if kind == "special":
        return draw(st.sampled_from(["!!set {a, b}", "!!omap [{a: 1}, {b: 2}]", "!!pairs [{a: 1}, {a: 2}]",
                                     "{<<: {m: 1}, x: 2}", "{a: 1, a: 2}", "[]", "{}", "{? a : b}"]))
    anchor = ctx.anchor() if rare(draw, 4) else None
    if anchor:
        ctx.open.append(anchor)
    n = draw(st.integers(0, 4))
    if kind == "seq":
        text = "[" + ", ".join(draw(node(ctx, depth + 1)) for _ in range(n)) + "]"
    else:
        items = []
        for _ in range(n):
            k = draw(key(ctx, depth))
            explicit = len(k) > 1000 or k.startswith(("[", "{", "!!set")) and draw(st.booleans())
            items.append(f"? {k} : {draw(node(ctx, depth + 1))}" if explicit else f"{k}: {draw(node(ctx, depth + 1))}")
        text = "{" + ", ".join(items) + "}"
    if anchor:
        ctx.open.remove(anchor)
        ctx.anchors.append(anchor)
        return f"&{anchor} {text}"
    return text


def block_pair(k: str, v: str, indent: str = "") -> str:
    """key: value in block context; an explicit `? ` key when the key is complex or too long to be implicit."""
    if k.startswith(("[", "{", "!!set")) or len(k) > 1000:
        return f"{indent}? {k}\n{indent}: {v}"
    return f"{indent}{k}: {v}"


def literal(text: str) -> str:
    """A block literal, its indentation given explicitly (the first line may start with spaces)."""
    return "|2\n" + "\n".join("  " + line for line in text.split("\n"))


@st.composite
def entry(draw, ctx: Ctx) -> str:
    """The body of one entry document."""
    ctx.new_doc()
    shape = draw(st.sampled_from(["block", "block", "block", "flow", "scalar", "seq", "bomb", "alias_chain",
                                  "deep_block", "empty"]))
    if shape == "flow":
        return draw(node(ctx))
    if shape == "scalar":
        return draw(scalar(ctx))
    if shape == "seq":
        return "\n".join("- " + draw(node(ctx, 1)) for _ in range(draw(st.integers(1, 4))))
    if shape == "empty":
        return draw(st.sampled_from(["", "~", "# only a comment"]))
    if shape == "bomb":  # expands by count (width ** levels nodes) and by bytes (a large leaf)
        levels, width = draw(st.integers(2, 9)), draw(st.integers(2, 10))
        leaf = draw(st.sampled_from(["x", double_quoted("z" * draw(st.integers(1, 20_000)))]))
        lines = [f"b0: &b0 [{leaf}]"]
        lines += [f"b{i}: &b{i} [" + ", ".join([f"*b{i - 1}"] * width) + "]" for i in range(1, levels + 1)]
        return "\n".join(lines)
    if shape == "alias_chain":  # deep nesting built from a few aliases
        d = draw(st.integers(2, 3000))
        seq = draw(st.booleans())
        return "\n".join(["l0: &l0 [x]"] + [f"l{i}: &l{i} " + (f"[*l{i - 1}]" if seq else f"{{n: *l{i - 1}}}")
                                            for i in range(1, d)])
    if shape == "deep_block":
        d = draw(st.integers(2, 150))
        return "\n".join("  " * i + "k:" for i in range(d)) + " x"
    lines = []
    if draw(st.booleans()):
        inputs = ["http://a.example/", "192.0.2.55:443 " + "A" * 40, "obfs3 192.0.2.56:443", "~"]  # bridges too
        lines.append(f"input: {draw(st.sampled_from(inputs))}")
    for _ in range(draw(st.integers(1, 6))):
        how = draw(st.sampled_from(["pair", "pair", "literal", "complex", "nested", "merge"]))
        if how == "pair":
            lines.append(block_pair(draw(key(ctx, 1)), draw(node(ctx, 1))))
        elif how == "literal":
            text = "\n".join(draw(st.lists(st.one_of(st.sampled_from(["GET / HTTP/1.1", "", "  indented", "a: b"]),
                                                    hidden_text(ctx)), min_size=1, max_size=5)))
            text = text.replace("\0", "").replace("\r", "")
            lines.append(block_pair(draw(key(ctx, 5)) if rare(draw, 4) else 'log', literal(text)))
        elif how == "complex":
            lines.append("? - " + draw(scalar(ctx)) + "\n  - " + draw(scalar(ctx)) + "\n: " + draw(node(ctx, 1)))
        elif how == "nested":
            inner = [block_pair(draw(key(ctx, 5)), draw(node(ctx, 2)), "  ") for _ in range(draw(st.integers(1, 3)))]
            lines.append("nested:\n" + "\n".join(inner))
        else:
            merged = f"*{ctx.anchors[-1]}" if ctx.anchors else draw(st.sampled_from(["{m: 1}", "[{m: 1}]", "x"]))
            lines.append(f"<<: {merged}")
    return "\n".join(lines)


@st.composite
def header(draw, ip: str) -> tuple[str, bool]:
    """The header document's body, and whether it names the probe IP usably (then the IP is hidden in the
    report; otherwise the sanitizer cannot know what to redact)."""
    fields = {}
    # Mostly a usable header (else the report stops at the header, and its entries are never exercised).
    test_name = draw(st.sampled_from(TEST_NAMES)) if not rare(draw, 8) else \
        draw(st.sampled_from(["!!python/unicode 'http_requests'", "[x]", "''", "7", "{a: b}", None]))
    if test_name is not None:
        fields["test_name"] = test_name
    start = draw(st.sampled_from(["1407420650.5", "1407420650", "'2014-08-07 14:10:50'"])) if not rare(draw, 8) \
        else draw(st.sampled_from(["0", "-1", "1e400", ".nan", "!!timestamp 2014-08-07t14:10:50Z",
                                   "2014-08-07 14:10:50", "x", "[1]", None]))
    if start is not None:
        fields["test_start_time" if rare(draw, 5) else "start_time"] = start
    fields["probe_cc"] = draw(st.sampled_from(["IT", "zz", "'../'", "12", "~"]))
    fields["probe_asn"] = draw(st.sampled_from(["AS3269", "3269", "AS99999999999999", "x"]))
    usable = True
    forms = [ip, ip.upper(), f"' {ip} '", f"!!python/unicode '{ip}'"] + ([ip_forms(ip)[1]] if ":" in ip else [])
    probe_ip = draw(st.sampled_from(forms + ["127.0.0.1", "[192.0.2.1]", "not-an-ip", None]))
    if probe_ip in ("127.0.0.1", "[192.0.2.1]", "not-an-ip", None):
        usable = False
    if probe_ip is not None:
        fields["probe_ip"] = probe_ip
    rid = draw(st.sampled_from(["r1", "20160712T172644Z_AS7922_obPihy", "'../../etc'", "''", "~", "12",
                                double_quoted("r" * 300), None]))
    if rid is not None:
        fields["report_id"] = rid
    ctx = Ctx(ip, usable, unsafe=False)
    lines = [f"{k}: {v}" for k, v in fields.items()]
    if rare(draw, 3):
        lines.append(f"probe_city: {draw(binary_scalar(ctx))}")
    if rare(draw, 3):
        lines.append(f"options: [-f, {double_quoted(draw(hidden_text(ctx)))}]")
    if rare(draw, 4):
        lines.append(f"{double_quoted(draw(hidden_text(ctx)))}: as a key")
    if rare(draw, 5):
        lines.append(f"extra: {draw(node(ctx))}")
    if rare(draw, 8):
        lines.append(draw(st.sampled_from(["report_file: /etc/passwd", "sanitizer_version: spoofed",
                                           "sanitizer_dropped: [{line: 1}]", "data_format_version: '0.2.0'"])))
    order = draw(st.permutations(lines))
    return "\n".join(order), usable


@st.composite
def report(draw, ip: str) -> tuple[bytes, bool]:
    """One legacy report (header document, then entry documents), possibly mangled at the byte level; and
    whether its header names the probe IP usably (only then may the IP be in its file name, too)."""
    fields, usable = draw(header(ip))
    ctx = Ctx(ip, usable, unsafe=rare(draw, 4))
    docs = []
    if rare(draw, 4):
        docs.append("#" * 43 + "\n# OONI Probe Report for http_requests (0.2)\n" + "#" * 43)
    if rare(draw, 10):
        docs.append("%YAML 1.1")
    header_doc = draw(st.sampled_from(["---\n{}\n...", "---\n{}", "{}\n..."])).format(fields)
    not_a_mapping = rare(draw, 10)
    if not_a_mapping:
        header_doc = draw(st.sampled_from(["--- [a, b]\n...", "--- just text\n...", "---\n- a\n- b\n..."]))
    docs.append(header_doc)
    head = ("\n".join(docs) + "\n").encode()
    ends = st.sampled_from(["\n...", "\n...", "", "\n... trailing junk"])
    body = "".join("---\n" + draw(entry(ctx)) + draw(ends) + "\n"
                   for _ in range(draw(st.integers(0, 5)))).encode("utf-8", "surrogatepass")
    # Bytes are mangled after the header only: a header mangled where it names the probe IP would hide the
    # IP from the sanitizer too (then nothing can be redacted), and headers have hostile values of their own.
    for bad in (b"\xff\xfe", b"\xc3", b"\x00", b"\xed\xa0\x80"):
        if rare(draw, 12):
            at = draw(st.integers(0, len(body)))
            body = body[:at] + bad + body[at:]
    if rare(draw, 12):
        body = body[:draw(st.integers(0, len(body)))]
    data = head + body
    if rare(draw):
        data = data.replace(b"\n", b"\r\n")
    if rare(draw):
        data = b"\xef\xbb\xbf" + data
    return data, usable and not not_a_mapping


def tar_of(members: list[tuple[str, bytes | None, str]], compress: bool) -> bytes:
    """A tar (gzipped or not) of (name, data, type) members: type file, dir, symlink, hardlink, fifo."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz" if compress else "w") as tar:
        for name, data, kind in members:
            info = tarfile.TarInfo(name)
            if kind == "file":
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
                continue
            info.type = {"dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE, "hardlink": tarfile.LNKTYPE,
                         "fifo": tarfile.FIFOTYPE}[kind]
            info.linkname = "/etc/passwd" if kind != "hardlink" else members[0][0]
            tar.addfile(info)
    return buf.getvalue()


@st.composite
def batches(draw, max_inputs: int = 5) -> Batch:
    """A few raw inputs sharing one probe IP."""
    ip = draw(st.sampled_from(PROBE_IPS))
    batch = Batch(ip)
    for i in range(draw(st.integers(1, max_inputs))):
        collector = draw(st.sampled_from(["c1", "c1", "c2", "c1/sub"]))
        ext = draw(st.sampled_from(NAME_EXTS))
        wrapper = draw(st.sampled_from(["plain", "plain", "plain", "gzip", "tar", "dup", "link"]))
        if wrapper == "dup" and batch.inputs:  # the same bytes delivered again under another name
            batch.inputs.append(Input(f"{collector}/in{i:02d}{ext}", draw(st.sampled_from(batch.inputs)).data))
            continue
        data, usable = draw(report(ip))
        # The probe IP in a file name (reports name their file), when the report names it usably.
        name = f"{collector}/in{i:02d}{'-' + ip if usable and wrapper != 'tar' and rare(draw, 20) else ''}{ext}"
        if wrapper == "gzip":
            data = gzip.compress(data, mtime=0)
        elif wrapper == "tar":
            members = [(f"r{i}.yaml", data, "file")]
            for j in range(draw(st.integers(0, 3))):
                kind = draw(st.sampled_from(["file", "file", "dir", "symlink", "hardlink", "fifo"]))
                member = draw(st.sampled_from([f"m{j}.yaml", f"../../m{j}.yaml", f"sub/m{j}", f"r{i}.yaml",
                                               f"{ip}.yaml", "\u00e9\u0000x"]))
                content, usable = draw(report(ip)) if kind == "file" else (None, True)
                members.append((member if usable or ip not in member else f"m{j}.yaml", content, kind))
            data = tar_of(draw(st.permutations(members)), compress=draw(st.booleans()))
        elif wrapper == "link":
            kind = draw(st.sampled_from(["symlink", "hardlink", "dirlink", "dangling"]))
            batch.inputs.append(Input(name, data, kind))
            continue
        batch.inputs.append(Input(name, data))
    return batch
