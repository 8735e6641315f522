"""Run the real stages as subprocesses (their peak memory measured with os.wait4) and check the campaign's
invariants on what they did:

1. every input ends in archive/ or quarantine/<reason>/ (with a .reason.json naming that reason): followed
   through the journal, so that tar members and duplicates are accounted for, and `invoke where <raw
   path>` (stages/where.py) says it is there; nothing stays in raw/, staging/ or reports/;
2. every stage run exits 0 and prints no traceback;
3. a second run of both stages changes nothing in archive/, quarantine/ or the database (sha256 of every
   file, a digest of every collection);
4. no run's peak RSS is over the bound;
5. the probe IP, in none of its textual forms (`ipforms`), is in anything published (archive/, index.json,
   and the pages the target publishes from the runs: the status page, given from above this layer by
   dr/drills/fuzz.status_page) or stored (every document of every collection), with binary values decoded.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import yaml

from campaign.ipforms import find_ip
from common import digest
from stages import journal, where
from stages.layout import DataRoot

ROOT = Path(__file__).resolve().parents[1]  # the stages run from the checkout (python -m stages.<stage>)
# Peak RSS of one stage run (the largest process of the run: the parent or one sanitizer worker). Inputs
# here are at most a few MB (the fixed >16 MB measurement has its own bound): a stage holding a document
# or two in memory stays far below it; one that expands an alias bomb or builds a report at once does not.
MAX_RSS_MB = 300
MAX_RSS_BIG_MB = 512  # the fixed example with one 17 MB measurement (measured: 126 MB)
STAGE_TIMEOUT_S = 300
BINARY_TAG = "tag:yaml.org,2002:binary"


@dataclass
class StageRun:
    stage: str
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    max_rss_mb: float

    def describe(self) -> str:
        tail = "\n".join(self.stderr.strip().splitlines()[-25:])
        return (f"{self.stage}: exit {self.returncode} after {self.seconds:.1f}s, peak RSS "
                f"{self.max_rss_mb:.0f} MB\nstdout: {self.stdout.strip()[:3000]}\nstderr (tail): {tail}")


def write_config(path: Path, secrets_dir: str, db_port: int, workers: int = 2) -> Path:
    """A configuration file for the stages: the test database on loopback, its password in secrets_dir."""
    # db.role: as dr/jobs/contract.py writes it
    path.write_text(f'secrets_dir = "{secrets_dir}"\n\n[db]\nhost = "127.0.0.1"\nport = {db_port}\n'
                    f'role = "importer"\n\n[pipeline]\nworkers = {workers}\n')
    return path


# The stage is started by a small Python parent that waits for it with os.wait4: a child's ru_maxrss also
# counts the memory image it was forked from (until its exec), so a stage forked by pytest itself would
# report pytest's size. The stage's rusage covers the worker processes it reaped (the largest of them).
_MEASURE = """
import os, sys
pid = os.fork()
if pid == 0:
    os.execv(sys.executable, [sys.executable] + sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as fh:
    fh.write(f"{status} {usage.ru_maxrss}")
"""


def run_stage(stage: str, data_root: Path, config: Path, timeout: float = STAGE_TIMEOUT_S) -> StageRun:
    """python -m stages.<stage> --data-root D --json --config F; its exit code and peak RSS."""
    argv = ["-m", f"stages.{stage}", "--data-root", str(data_root), "--json", "--config", str(config)]
    with tempfile.TemporaryDirectory() as tmp, open(Path(tmp) / "out", "w+b") as out, \
            open(Path(tmp) / "err", "w+b") as err:
        measured = Path(tmp) / "rusage"
        start = time.monotonic()
        proc = subprocess.Popen([sys.executable, "-c", _MEASURE, str(measured), *argv], stdout=out, stderr=err,
                                cwd=ROOT, start_new_session=True)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        seconds = time.monotonic() - start
        status, maxrss_kb = (int(x) for x in measured.read_text().split()) if measured.exists() else (9, 0)
        out.seek(0)
        err.seek(0)
        stderr = err.read().decode("utf-8", "replace")
        if not measured.exists():
            stderr += f"\n(killed after the {timeout:.0f}s timeout)"
        return StageRun(stage, os.waitstatus_to_exitcode(status), out.read().decode("utf-8", "replace"), stderr,
                        seconds, maxrss_kb / 1024)


def run_both(data_root: Path, config: Path) -> list[StageRun]:
    return [run_stage("sanitize", data_root, config), run_stage("importer", data_root, config)]


# ---- 1. every input in archive/ or quarantine/ -------------------------------------------------------

def leftovers(dr: DataRoot) -> list[str]:
    """Anything (file, link, FIFO...) still in raw/, staging/ or reports/, temporaries aside."""
    found = []
    for state in ("raw", "staging", "reports"):
        for dirpath, dirs, files in os.walk(dr.state(state)):
            dirs[:] = [d for d in dirs if not d.startswith(".") and not os.path.islink(os.path.join(dirpath, d))]
            links = [d for d in os.listdir(dirpath) if os.path.islink(os.path.join(dirpath, d))]
            found += [dr.relative(Path(dirpath) / f) for f in sorted(set(files) | set(links))
                      if not f.startswith(".")]
    return found


def _committed(dr: DataRoot) -> list[dict]:
    """The `begin` entries of committed transactions, in journal order."""
    begun, done = {}, []
    for _, entry in journal.read(dr):
        if entry.get("op") == "begin":
            begun[entry["txid"]] = entry
        elif entry.get("op") == "commit" and entry.get("txid") in begun:
            done.append(begun.pop(entry["txid"]))
    return done


def _placed(tx: dict) -> list[tuple[str, bool]]:
    """Where a transaction put the report(s) it took, and whether as a duplicate: per output of a sanitize
    commit (a duplicate: where the report it duplicates was put), else its renames and moves (reason files
    and originals aside)."""
    outputs = tx.get("info", {}).get("outputs")
    if outputs:
        return [(out["to"], False) if out.get("to") else (f"staging/{out['duplicate_of']}", True) for out in outputs]
    return [(s["dst"], False) for s in tx["steps"] if s["op"] in ("rename", "move")
            and not s["dst"].endswith((".reason.json", ".jsonl")) and not s["dst"].startswith("originals/")]


def fates(dr: DataRoot, rel: str) -> list[tuple[str, bool]] | None:
    """Where each report a raw input held is now (a tar holds several; True: as a duplicate of another),
    following it through the journal: from the sanitize transaction that took the input, through each
    later transaction that took the report from where it was. None when no sanitize transaction took it."""
    txs = _committed(dr)
    first = [tx for tx in txs if tx["stage"] == "sanitize" and tx["report"] == rel]
    if not first:
        return None
    places = _placed(first[-1])
    for tx in txs:
        for i, (place, dup) in enumerate(places):
            if tx["report"] == place:
                nxt = [d for d, _ in _placed(tx) if Path(d).name == Path(place).name]
                places[i] = (nxt[0] if nxt else place, dup)
    return places


def accounting_problems(dr: DataRoot, inputs: list[str], final=("archive/", "quarantine/")) -> dict[str, list[str]]:
    """Problems by kind: untaken (no sanitize transaction), lost (not where the journal says), misplaced
    (not in archive/ or quarantine/), reason (no reason file, or one naming another reason), where
    (`invoke where <raw path>` does not say where it is now)."""
    problems: dict[str, list[str]] = {k: [] for k in ("untaken", "lost", "misplaced", "reason", "where")}
    for rel in inputs:
        found = fates(dr, rel)
        if found is None:
            problems["untaken"].append(f"{rel}: no sanitize transaction took it")
            continue
        now = where.locate(dr, rel).now
        for place, duplicate in found:
            if not os.path.lexists(dr.root / place):
                problems["lost"].append(f"{rel}: the journal puts a report of it in {place}, which does not exist")
            elif place.startswith("quarantine/"):
                sidecar = dr.root / (place + ".reason.json")
                try:
                    reason = json.loads(sidecar.read_text()).get("reason")
                except (OSError, ValueError) as exc:
                    problems["reason"].append(f"{rel}: {place} has no readable reason file ({exc})")
                    continue
                if reason != place.split("/")[1] or not reason:
                    problems["reason"].append(f"{rel}: {place}'s reason file names reason {reason!r}")
            if not place.startswith(final):
                problems["misplaced"].append(f"{rel}: ended in {place}")
            if place not in now and not duplicate:
                problems["where"].append(f"{rel}: `invoke where` says it is now in {now}, not in {place}")
    return problems


# ---- 3. a second run changes nothing ----------------------------------------------------------------

def sha256(path: Path) -> str:
    return digest.sha256_file(path)


def state(dr: DataRoot, db) -> dict:
    """sha256 of every file in archive/ and quarantine/ (temporaries aside), and every collection's count
    and digest."""
    files = {}
    for s in ("archive", "quarantine"):
        for dirpath, dirs, names in os.walk(dr.state(s)):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            for n in names:
                if not n.startswith("."):
                    p = Path(dirpath) / n
                    files[dr.relative(p)] = sha256(p) if p.is_file() and not p.is_symlink() else "not a file"
    collections = {}
    for name in sorted(db.list_collection_names()):
        digest, count = hashlib.sha256(), 0
        for doc in db[name].find({}).sort("_id", 1):
            digest.update(json.dumps(doc, sort_keys=True, default=repr).encode())
            count += 1
        collections[name] = (count, digest.hexdigest())
    return {"files": files, "db": collections}


def differences(before: dict, after: dict) -> list[str]:
    out = []
    for what in ("files", "db"):
        a, b = before[what], after[what]
        out += [f"{what}: {k} added" for k in sorted(set(b) - set(a))]
        out += [f"{what}: {k} gone" for k in sorted(set(a) - set(b))]
        out += [f"{what}: {k} changed {a[k]} -> {b[k]}" for k in sorted(set(a) & set(b)) if a[k] != b[k]]
    return out


# ---- 5. the probe IP -----------------------------------------------------------------------------------

def _yaml_values(path: Path):
    """Every scalar of a YAML file, !!binary values decoded (from parse events: nothing is built)."""
    with open(path, "rb") as fh:
        for ev in yaml.parse(fh, Loader=yaml.CSafeLoader):
            if isinstance(ev, yaml.ScalarEvent):
                if ev.tag == BINARY_TAG:
                    try:
                        yield base64.b64decode("".join(ev.value.split()))
                    except (binascii.Error, ValueError):
                        yield ev.value
                else:
                    yield ev.value


def walk(value):
    """Every key and leaf value of a document (dicts, lists, sets, tuples), depth first."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from walk(v)
    elif isinstance(value, (list, set, tuple)):
        for v in value:
            yield from walk(v)
    else:
        yield value


def binaries(value):
    """Decoded payloads of {"format": "base64", "data": ...} values (how the importer stores binary values),
    anywhere in a document."""
    if isinstance(value, dict):
        if value.get("format") == "base64" and isinstance(value.get("data"), str):
            yield base64.b64decode(value["data"])
        for v in value.values():
            yield from binaries(v)
    elif isinstance(value, list):
        for v in value:
            yield from binaries(v)


def _document_leak(ip: str, doc) -> str | None:
    for value in walk(doc):
        if isinstance(value, (str, bytes)) and (hit := find_ip(ip, value)):
            return hit
    for data in binaries(doc):
        if hit := find_ip(ip, data):
            return hit
    return None


def published_leaks(dr: DataRoot, ip: str, state: str = "archive") -> list[str]:
    """Where a form of the probe IP is published: archive/ (reports, their JSON lines, index.json); or
    would be, from another state directory (staging/: what the sanitizer let through)."""
    found = []
    for dirpath, dirs, names in os.walk(dr.state(state)):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for n in sorted(x for x in names if not x.startswith(".")):  # dot-files are never served
            p = Path(dirpath) / n
            rel = dr.relative(p)
            if p.is_symlink() or not p.is_file():
                found.append(f"{rel}: not a regular file (not read)")
                continue
            if hit := find_ip(ip, p.read_bytes().decode("utf-8", "replace")):
                found.append(f"{rel}: {hit!r} in its text")
            if n.endswith(".yaml"):
                try:
                    hits = [h for v in _yaml_values(p) if (h := find_ip(ip, v))]
                except yaml.YAMLError as exc:
                    found.append(f"{rel}: not parseable YAML ({exc})")
                    continue
                found += [f"{rel}: {h!r} in a value" for h in hits[:3]]
            if n.endswith(".jsonl"):
                # JSON lines end at "\n" only: str.splitlines() would also split at U+2028, U+0085, ...,
                # which json.dumps(ensure_ascii=False) leaves in strings (found by invoke fuzz)
                for line in filter(None, p.read_bytes().split(b"\n")):
                    if hit := _document_leak(ip, json.loads(line)):
                        found.append(f"{rel}: {hit!r} in a document")
                        break
    return found


def stored_leaks(db, ip: str) -> list[str]:
    """Where a form of the probe IP is stored: every document of every collection."""
    found = []
    for name in db.list_collection_names():
        for doc in db[name].find({}):
            if hit := _document_leak(ip, doc):
                found.append(f"database {name} {doc.get('_id')!r}: {hit!r}")
    return found


def page_leaks(pages: dict[str, str], ip: str) -> list[str]:
    """Where a form of the probe IP is in the pages published from the runs ({name: text})."""
    return [f"{name}: {hit!r}" for name, text in sorted(pages.items()) if (hit := find_ip(ip, text))]


# What else is published from a data root and the stage runs on it: {name: text} (the status page).
Pages = Callable[[DataRoot, list[StageRun]], dict[str, str]]


# ---- all of them -------------------------------------------------------------------------------------

def check(dr: DataRoot, db, config: Path, inputs: list[str], ip: str | None, max_rss_mb: float = MAX_RSS_MB,
          pages: Pages | None = None) -> None:
    """Run both stages twice over what is in raw/ and assert every invariant. `inputs`: the raw paths
    (relative to the data root) that were put there; `ip`: the probe IP (None: nothing to look for); `pages`:
    what else the first runs publish (looked through for the IP)."""
    # One assert per invariant and stage: hypothesis tells distinct failures apart by where they are raised.
    sanitize, importer = run_both(dr.root, config)
    assert "Traceback" not in sanitize.stderr, f"first run: {sanitize.describe()}"
    assert sanitize.returncode == 0, f"first run: {sanitize.describe()}"
    assert "Traceback" not in importer.stderr, f"first run: {importer.describe()}"
    assert importer.returncode == 0, f"first run: {importer.describe()}"
    assert sanitize.max_rss_mb < max_rss_mb, f"over {max_rss_mb} MB: {sanitize.describe()}"
    assert importer.max_rss_mb < max_rss_mb, f"over {max_rss_mb} MB: {importer.describe()}"
    assert not leftovers(dr), f"left behind: {leftovers(dr)}"
    problems = accounting_problems(dr, inputs)
    assert not problems["untaken"], problems["untaken"]
    assert not problems["lost"], problems["lost"]
    assert not problems["misplaced"], problems["misplaced"]
    assert not problems["reason"], problems["reason"]
    assert not problems["where"], problems["where"]
    if ip:
        published = published_leaks(dr, ip)
        assert not published, f"the probe IP {ip} is published: {published[:10]}"
        stored = stored_leaks(db, ip)
        assert not stored, f"the probe IP {ip} is stored: {stored[:10]}"
        if pages is not None:
            on_pages = page_leaks(pages(dr, [sanitize, importer]), ip)
            assert not on_pages, f"the probe IP {ip} is on a published page: {on_pages}"
    before = state(dr, db)
    second = run_both(dr.root, config)
    for run in second:
        assert run.returncode == 0 and "Traceback" not in run.stderr, f"second run: {run.describe()}"
        assert run.max_rss_mb < max_rss_mb, f"over {max_rss_mb} MB: {run.describe()}"
    changed = differences(before, state(dr, db))
    assert not changed, f"the second run changed: {changed[:20]}"
