"""The results of snapshots.cli's actions are types (snapshots/results.py): they read as attributes, a value
that does not fit is refused naming the field, and what the snapshots modules make of restic's real output
fits its type. Every action's examples round-trip through JSON in test_actions.py."""

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from common.records import RecordError
from snapshots import actions, manifest, offsite, results, sets
from snapshots.restic import ResticError

DIRS = {"raw": {"files": 2, "reports": 1, "bytes": 1200, "digest": "ab" * 32},
        "archive": {"files": 4, "reports": 2, "bytes": 9000, "digest": "cd" * 32}}
DATABASE = {"database": "aggregator", "collections": {"reports": 2, "measurements": 7},
            "reports_by_test_country": {"web_connectivity IT": [2, 7]}}
MANIFEST = {
    "format": 1, "set": "20260101T000000Z", "host": "aggr", "version": "0.1.0", "started": "2026-01-01T00:00:00Z",
    "locked": "2026-01-01T00:00:01Z", "ended": "2026-01-01T00:00:09Z", "paused_seconds": 1.25,
    "lock_waited_seconds": 0.0, "recovered": ["sanitize: rolled back tx-1"], "dump_under_lock": False, "database_beside_files": True,
    "journal_position": 4096, "directories": DIRS, "database": DATABASE,
    "snapshots": {"files": "f" * 64, "db": "d" * 64}, "added_bytes": {"files": 1000, "db": 300},
}
PHYSICAL = {"sha256": "ab" * 32, "bytes": 49457664, "postgres_version_num": 170012, "postgres_major": 17,
            "ferretdb_version": "v1.24.2", "database": "aggregator", "collections": {"reports": 2, "measurements": 9},
            "collections_at_start": {"reports": 2, "measurements": 7}}
MANIFEST_COPY = MANIFEST | {"physical": PHYSICAL, "parts": ["files", "pg"], "portable_dump": False,
                            "database": {"database": "aggregator", "collections": PHYSICAL["collections"]},
                            "snapshots": {"files": "f" * 64, "pg": "e" * 64}}
ROW = {"set": "20260101T000000Z", "time": "2026-01-01T00:00:00", "complete": True,
       "parts": ["db", "files", "manifest"], "snapshots": {"files": "ffffffff", "db": "dddddddd", "manifest": "mmmmmmmm"},
       "paused_seconds": 1.25, "reports": 3, "bytes": 10200, "documents": 9, "added_bytes": 1300}

# One example per action (and per variant of an action's result), as snapshots.cli printed them as dicts.
EXAMPLES = [
    ("init", {"created": True, "repository": "/repo"}),
    ("take", MANIFEST),
    ("take", MANIFEST_COPY),
    ("take", MANIFEST | {"artifacts": {"saved": True, "fingerprint": "0123456789abcdef", "snapshot": "abcdef12",
                                       "artifacts": ["ferretdb-v1.24.2/ferretdb"]}}),
    ("take", MANIFEST | {"artifacts": {"saved": False, "reason": "no artifacts in /artifacts"}}),
    ("take", MANIFEST | {"artifacts": {"saved": False, "error": "restic backup failed"}}),
    ("list", []),
    ("list", [ROW, {"set": "20251231T000000Z", "time": "2025-12-31T00:00:00", "complete": False,
                    "parts": ["files"], "snapshots": {"files": "eeeeeeee"}},
              {"set": "20251230T000000Z", "time": "2025-12-30T00:00:00", "complete": False,
               "parts": ["db", "files", "manifest"], "snapshots": {"files": "1", "db": "2", "manifest": "3"},
               "problem": "manifest unreadable: boom"}]),
    ("forget", {"keep": ["20260101T000000Z"], "forget": ["20251231T000000Z"], "snapshots_removed": 1,
                "dry_run": False}),
    ("check", {"ok": True, "restic_check": {"ok": True, "error": None}, "read_data_subset": None,
               "sets": [{"set": "20260101T000000Z", "verdict": "ok", "problems": []},
                        {"set": "20251231T000000Z", "verdict": "incomplete", "problems": [], "parts": ["files"]}],
               "failed_sets": [], "artifacts": {"verdict": "none", "snapshot": None, "artifacts": [], "problems": []},
               "verified": 1}),
    ("check", {"ok": False, "restic_check": {"ok": False, "error": "restic check failed", "findings": ["pack x"]},
               "read_data_subset": "10%",
               "sets": [{"set": "20260101T000000Z", "verdict": "FAILED", "problems": ["raw/: digest differs"]}],
               "failed_sets": ["20260101T000000Z"],
               "artifacts": {"verdict": "FAILED", "snapshot": "abcdef12", "artifacts": [],
                             "problems": ["artifacts snapshot abcdef12 cannot be read back"]},
               "verified": 0}),
    ("copy", {"copied": ["20260101T000000Z"], "already_offsite": [], "offsite_complete_sets": 1,
              "repository": "rest:http://aggr-offsite:8000/aggregator"}),
    ("db-counts", {"database": "aggregator", "collections": {"measurements": 1000000, "reports": 10000}}),
    ("db-indexes", {"database": "aggregator", "indexes": ["aggr_reports_19b3cb48_report_id"]}),
    ("db-password", {"role": "importer", "changed": True}),
    ("db-password", {"role": "owner", "changed": False}),
    ("restore", {"set": "20260101T000000Z", "set_started": "2026-01-01T00:00:00Z", "manifest": MANIFEST,
                 "files": {"target": "/data", "directories": DIRS, "seconds": 0.5, "bytes": 10200, "files": 6,
                           "moved_aside": None},
                 "db": {"database": "aggregator", "collections": DATABASE["collections"],
                        "reports_by_test_country": DATABASE["reports_by_test_country"], "seconds": 0.25}}),
    ("restore", {"set": "20260101T000000Z", "set_started": "2026-01-01T00:00:00Z", "manifest": MANIFEST,
                 "files": {"target": "/data", "directories": DIRS, "seconds": 0.5, "bytes": 10200, "files": 6,
                           "moved_aside": "/data/.replaced-20260101T000000Z"}}),
    ("pg-restore", {"set": "20260101T000000Z", "sha256": "ab" * 32, "bytes": 49457664, "seconds": 1.5,
                    "postgres_major": 17, "replaced": "replaced-20260101T000000Z-20260102T000000Z"}),
    ("pg-restore", {"set": "20260101T000000Z", "bytes": 49457664, "seconds": 1.5, "postgres_major": 17}),
    ("restore", {"set": "20260101T000000Z", "set_started": "2026-01-01T00:00:00Z", "manifest": MANIFEST,
                 "files": {"target": "/data", "directories": DIRS, "seconds": 0.5, "bytes": 10200, "files": 6,
                           "moved_aside": None},
                 "copy": {"set": "20260101T000000Z", "bytes": 49457664, "seconds": 1.5, "postgres_major": 17}}),
    ("pg-undo", {"set": "20260101T000000Z", "replaced": "replaced-20260101T000000Z-20260102T000000Z"}),
    ("pg-undo", {"set": "20260101T000000Z"}),
    ("artifacts-restore", {"restored": ["ferretdb-v1.24.2/ferretdb"], "snapshot": "abcdef12",
                           "taken": "2026-01-01T00:00:00"}),
    ("artifacts-restore", {"restored": [], "reason": "the repository holds no build artifacts"}),
]


def first(action: str) -> dict:
    return next(data for a, data in EXAMPLES if a == action)


def test_results_are_read_as_attributes():
    take = actions.load("take", MANIFEST)
    assert (take.set_id, take.reports, take.bytes, take.documents, take.bytes_added) == \
        ("20260101T000000Z", 3, 10200, 9, 1300)
    assert take.directories["raw"].reports == 1 and take.artifacts is None
    restored = actions.load("restore", first("restore"))
    assert restored.files.files == 6 and restored.db.documents == 9 and restored.manifest.started.startswith("2026")
    checked = actions.load("check", [d for a, d in EXAMPLES if a == "check"][1])
    assert checked.failure() == ("the repository failed its check; sets affected: 20260101T000000Z; the build "
                                 "artifacts (snapshot abcdef12) are damaged")
    assert actions.load("check", first("check")).failure() == ""


def test_a_physical_copy_accepts_counts_between_its_start_and_end_only():
    copy_ = actions.load("take", MANIFEST_COPY).physical
    assert copy_.problems({"reports": 2, "measurements": 7}) == []
    assert copy_.problems({"reports": 2, "measurements": 9}) == []
    assert copy_.problems({"reports": 2, "measurements": 6}) == [
        "measurements: 6 documents restored, the set's copy holds between 7 and 9"]
    assert copy_.problems({"reports": 3, "measurements": 8}) == [
        "reports: 3 documents restored, the set's copy holds 2"]
    assert copy_.problems({"reports": 2, "measurements": 8, "other": 1}) == [
        "other: 1 documents restored, the set's copy holds 0"]
    assert copy_.problems({"measurements": 8}) == ["reports: 0 documents restored, the set's copy holds 2"]


def test_a_manifest_keeps_what_a_newer_version_wrote_and_reads_an_older_one():
    newer = MANIFEST | {"compression": "zstd"}
    m = results.Manifest.from_dict(newer)
    assert m.extra == {"compression": "zstd"} and m.to_dict() == newer
    older = {k: v for k, v in MANIFEST.items() if k not in ("dump_under_lock", "database_beside_files", "added_bytes")}
    older["database"] = {"collections": DATABASE["collections"]}
    m = results.Manifest.from_dict(older)
    assert m.dump_under_lock is False and m.bytes_added == 0 and m.database.reports_by_test_country is None


@pytest.mark.parametrize("action,data,message", [
    ("init", {"created": "yes", "repository": "/repo"}, "InitResult.created: expected bool, got str"),
    ("init", {"created": True}, "InitResult: missing key repository"),
    ("init", {"created": True, "repository": "/r", "extra": 1}, "InitResult: unexpected key(s) extra"),
    ("forget", {"keep": "all", "forget": [], "snapshots_removed": 0, "dry_run": True},
     "ForgetResult.keep: expected a list, got str"),
    ("list", {"set": "x"}, "expected a list, got dict"),
    ("list", [{"set": "x", "time": "t", "complete": True, "parts": [], "snapshots": {}, "reports": 1.5}],
     "list of SetRow[0].reports: expected int, got float"),
    ("take", MANIFEST | {"directories": {"raw": {"files": 1}}}, "TakeResult.directories.raw: missing key"),
    ("copy", [], "CopyResult: expected an object, got list"),
    ("nosuch", {}, "snapshots has no action 'nosuch'"),
])
def test_a_result_that_does_not_fit_is_refused_naming_the_field(action, data, message):
    with pytest.raises(RecordError, match=None) as err:
        actions.load(action, data)
    assert message in str(err.value)


# What `restic snapshots --json` printed (restic 0.18, our backup image; tests/data/restic/make.sh): a set from
# before the physical copy (files, db, manifest), an interrupted set (files only), a complete set (files, pg,
# db, manifest) and an operator's snapshot of no set. The modules run over the real restic in
# tests/integration/test_snapshots.py (list, copy, forget through backup.run, which reads them into these types).
SNAPSHOTS = json.loads((Path(__file__).resolve().parents[2] / "data" / "restic" / "snapshots-0.18.json").read_text())
NEWEST, INTERRUPTED, LEGACY = "20260101T000000Z", "20251231T000000Z", "20251230T000000Z"
KEEP_ONE = SimpleNamespace(keep_last=1, keep_hourly=0, keep_daily=0, keep_weekly=0, keep_monthly=0)


def ids(set_id: str, *kinds: str) -> list[str]:
    """The snapshot ids of these parts of a set, in restic's order."""
    return [s["id"] for s in SNAPSHOTS if f"set:{set_id}" in (s.get("tags") or [])
            and any(f"kind:{k}" in s["tags"] for k in kinds)]


def test_restic_snapshots_group_into_sets_whose_rows_fit_the_type():
    groups = sets.group(SNAPSHOTS)
    assert {sid: sorted(parts) for sid, parts in groups.items()} == {
        LEGACY: ["db", "files", "manifest"], INTERRUPTED: ["files"], NEWEST: ["db", "files", "manifest", "pg"]}
    rows = [sets.set_row(sid, parts) for sid, parts in sorted(groups.items(), reverse=True)]
    for row in rows:
        if row["complete"]:
            row.update(sets.manifest_totals(MANIFEST | {"set": row["set"]}))
    listed = actions.load("list", rows)
    assert [(r.set_id, r.complete, r.reports, r.documents) for r in listed] == [
        (NEWEST, True, 3, 9), (INTERRUPTED, False, None, None), (LEGACY, True, 3, 9)]
    newest = {s["short_id"] for s in SNAPSHOTS if f"set:{NEWEST}" in (s.get("tags") or [])}
    assert set(listed[0].snapshots.values()) == newest and listed[0].parts == ["db", "files", "manifest", "pg"]
    assert listed[0].time == min(s["time"] for s in SNAPSHOTS if s["short_id"] in newest)[:19]


def test_a_rows_database_size_is_its_physical_copys():
    assert sets.manifest_totals(MANIFEST_COPY)["db_bytes"] == PHYSICAL["bytes"]
    assert sets.manifest_totals(MANIFEST)["db_bytes"] is None  # a set from before the physical copy
    row = actions.load("list", [ROW | {"db_bytes": PHYSICAL["bytes"]}])[0]
    assert row.db_bytes == PHYSICAL["bytes"] and actions.load("list", [ROW])[0].db_bytes is None


def test_copy_takes_only_complete_sets_their_data_before_their_manifests():
    primary = sets.group(SNAPSHOTS)
    todo, data, manifests = offsite.copy_plan(primary, {})
    assert todo == [NEWEST, LEGACY]  # the interrupted set stays behind
    assert data == ids(LEGACY, "files", "db") + ids(NEWEST, "files", "pg", "db")
    assert manifests == ids(LEGACY, "manifest") + ids(NEWEST, "manifest")
    # Off-site holds part of the newest set already (an interrupted copy): only what it lacks is copied.
    partly = {NEWEST: {k: v for k, v in primary[NEWEST].items() if k == "files"}}
    todo, data, manifests = offsite.copy_plan(primary, partly)
    assert todo == [NEWEST, LEGACY] and ids(NEWEST, "files")[0] not in data
    done = {sid: primary[sid] for sid in (NEWEST, LEGACY)}
    assert offsite.copy_plan(primary, done) == ([], [], [])
    copied = actions.load("copy", offsite.copy_result(primary, [NEWEST], done, "rest:http://offsite:8000/x"))
    assert copied.copied == [NEWEST] and copied.already_offsite == [LEGACY] and copied.offsite_complete_sets == 2
    with pytest.raises(ResticError, match=f"still not complete off-site: {NEWEST}"):
        offsite.copy_result(primary, [NEWEST, LEGACY], {LEGACY: primary[LEGACY]}, "rest:http://offsite:8000/x")


def test_forget_drops_whole_sets_and_keeps_one_in_progress():
    groups = sets.group(SNAPSHOTS)
    plan, dropped = sets.forget_plan(groups, KEEP_ONE, dry_run=True)
    forgot = actions.load("forget", plan)
    assert forgot.keep == [NEWEST] and forgot.forget == [LEGACY, INTERRUPTED] and forgot.dry_run
    assert forgot.snapshots_removed == 0 and dropped == ids(LEGACY, *sets.KINDS) + ids(INTERRUPTED, *sets.KINDS)
    plan, _ = sets.forget_plan(groups, KEEP_ONE)
    assert actions.load("forget", plan).snapshots_removed == 4 and not plan["dry_run"]
    # An interrupted set newer than the newest complete one may be in progress: it is kept.
    newer = {sid: parts for sid, parts in groups.items() if sid != NEWEST}
    plan, dropped = sets.forget_plan(newer, KEEP_ONE)
    assert plan["keep"] == [INTERRUPTED, LEGACY] and plan["forget"] == [] and dropped == []
    assert actions.load("forget", plan).snapshots_removed == 0


def test_a_manifest_of_real_directories_fits(tmp_path):
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "r.yaml").write_text("x: 1\n")
    body = MANIFEST | {"directories": manifest.directories(tmp_path)}
    assert results.Manifest.from_dict(body).directories["raw"].reports == 1
