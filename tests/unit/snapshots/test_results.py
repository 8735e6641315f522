"""The results of snapshots.cli's actions are types (snapshots/results.py): they read as attributes, a value
that does not fit is refused naming the field, what the snapshots modules make of restic's real output
fits its type, and the results a task prints render the text it printed before. Every action's examples
round-trip through JSON in test_actions.py."""

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from common.records import RecordError
from snapshots import manifest, offsite, results, sets
from snapshots.actions import ACTIONS
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
    ("list", {"sets": []}),
    ("list", {"sets": [ROW, {"set": "20251231T000000Z", "time": "2025-12-31T00:00:00", "complete": False,
                             "parts": ["files"], "snapshots": {"files": "eeeeeeee"}},
                       {"set": "20251230T000000Z", "time": "2025-12-30T00:00:00", "complete": False,
                        "parts": ["db", "files", "manifest"], "snapshots": {"files": "1", "db": "2", "manifest": "3"},
                        "problem": "manifest unreadable: boom"}]}),
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
    ("copy", {"copied": [], "already_offsite": ["20260101T000000Z"], "offsite_complete_sets": 1,
              "repository": "rest:http://aggr-offsite:8000/aggregator",
              "artifacts": {"state": "copied", "fingerprint": "0123456789abcdef", "snapshot": "abcdef12"}}),
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


def load(action: str, data):
    """The result of action read from its decoded JSON into the type its row names."""
    return ACTIONS[action].result.from_dict(data)


def test_results_are_read_as_attributes():
    take = load("take", MANIFEST)
    assert (take.set_id, take.reports, take.bytes, take.documents, take.bytes_added) == \
        ("20260101T000000Z", 3, 10200, 9, 1300)
    assert take.directories["raw"].reports == 1 and take.artifacts is None
    restored = load("restore", first("restore"))
    assert restored.files.files == 6 and restored.db.documents == 9 and restored.manifest.started.startswith("2026")
    checked = load("check", [d for a, d in EXAMPLES if a == "check"][1])
    assert checked.failure() == ("the repository failed its check; sets affected: 20260101T000000Z; the build "
                                 "artifacts (snapshot abcdef12) are damaged")
    assert load("check", first("check")).failure() == ""


def test_a_physical_copy_accepts_counts_between_its_start_and_end_only():
    copy_ = load("take", MANIFEST_COPY).physical
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
    ("list", [], "SetList: expected an object, got list"),
    ("list", {"set": "x"}, "SetList: unexpected key(s) set"),
    ("list", {"sets": [{"set": "x", "time": "t", "complete": True, "parts": [], "snapshots": {}, "reports": 1.5}]},
     "SetList.sets[0].reports: expected int, got float"),
    ("take", MANIFEST | {"directories": {"raw": {"files": 1}}}, "TakeResult.directories.raw: missing key"),
    ("copy", [], "CopyResult: expected an object, got list"),
])
def test_a_result_that_does_not_fit_is_refused_naming_the_field(action, data, message):
    with pytest.raises(RecordError, match=None) as err:
        load(action, data)
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
    listed = load("list", {"sets": rows}).sets
    assert [(r.set_id, r.complete, r.reports, r.documents) for r in listed] == [
        (NEWEST, True, 3, 9), (INTERRUPTED, False, None, None), (LEGACY, True, 3, 9)]
    newest = {s["short_id"] for s in SNAPSHOTS if f"set:{NEWEST}" in (s.get("tags") or [])}
    assert set(listed[0].snapshots.values()) == newest and listed[0].parts == ["db", "files", "manifest", "pg"]
    assert listed[0].time == min(s["time"] for s in SNAPSHOTS if s["short_id"] in newest)[:19]


def test_a_rows_database_size_is_its_physical_copys():
    assert sets.manifest_totals(MANIFEST_COPY)["db_bytes"] == PHYSICAL["bytes"]
    assert sets.manifest_totals(MANIFEST)["db_bytes"] is None  # a set from before the physical copy
    row = load("list", {"sets": [ROW | {"db_bytes": PHYSICAL["bytes"]}]}).sets[0]
    assert row.db_bytes == PHYSICAL["bytes"] and load("list", {"sets": [ROW]}).sets[0].db_bytes is None


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
    copied = load("copy", offsite.copy_result(primary, [NEWEST], done, "rest:http://offsite:8000/x"))
    assert copied.copied == [NEWEST] and copied.already_offsite == [LEGACY] and copied.offsite_complete_sets == 2
    with pytest.raises(ResticError, match=f"still not complete off-site: {NEWEST}"):
        offsite.copy_result(primary, [NEWEST, LEGACY], {LEGACY: primary[LEGACY]}, "rest:http://offsite:8000/x")


def test_forget_drops_whole_sets_and_keeps_one_in_progress():
    groups = sets.group(SNAPSHOTS)
    plan, dropped = sets.forget_plan(groups, KEEP_ONE, dry_run=True)
    forgot = load("forget", plan)
    assert forgot.keep == [NEWEST] and forgot.forget == [LEGACY, INTERRUPTED] and forgot.dry_run
    assert forgot.snapshots_removed == 0 and dropped == ids(LEGACY, *sets.KINDS) + ids(INTERRUPTED, *sets.KINDS)
    plan, _ = sets.forget_plan(groups, KEEP_ONE)
    assert load("forget", plan).snapshots_removed == 4 and not plan["dry_run"]
    # An interrupted set newer than the newest complete one may be in progress: it is kept.
    newer = {sid: parts for sid, parts in groups.items() if sid != NEWEST}
    plan, dropped = sets.forget_plan(newer, KEEP_ONE)
    assert plan["keep"] == [INTERRUPTED, LEGACY] and plan["forget"] == [] and dropped == []
    assert load("forget", plan).snapshots_removed == 0


def test_a_manifest_of_real_directories_fits(tmp_path):
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "r.yaml").write_text("x: 1\n")
    body = MANIFEST | {"directories": manifest.directories(tmp_path)}
    assert results.Manifest.from_dict(body).directories["raw"].reports == 1


# --- what the tasks print: render() and exit_status() ---------------------------------------------------------

def test_init_says_whether_it_created_the_repository():
    assert load("init", first("init")).render() == "created restic repository /repo"
    assert results.InitResult(created=False, repository="/srv/restic").render() == \
        "already exists: restic repository /srv/restic"


def test_take_says_the_sets_parts_counts_pause_and_bytes_added():
    m = load("take", MANIFEST_COPY | {"paused_seconds": 2.04, "added_bytes": {"files": 2_500_000, "pg": 1_000_000}})
    assert m.render() == ("set 20260101T000000Z complete (files, pg): 3 reports, 11 database documents; "
                          "pipeline paused 2.0s; added 3.5 MB")


def test_the_list_is_a_table_newest_first_and_says_when_there_is_no_set():
    listed = load("list", [d for a, d in EXAMPLES if a == "list"][1])
    assert listed.render().splitlines() == [
        "set               time                 state       reports  documents  MB   paused_s",
        "20260101T000000Z  2026-01-01T00:00:00  complete    3        9          0.0  1.25",
        "20251231T000000Z  2025-12-31T00:00:00  INCOMPLETE",
        "20251230T000000Z  2025-12-30T00:00:00  INCOMPLETE"]
    assert [r.set_id for r in listed.complete] == ["20260101T000000Z"]
    assert load("list", {"sets": []}).render() == "no snapshot sets in the repository"


def test_forget_says_what_it_forgot_or_would_forget():
    plan = {"keep": ["20260101T000000Z"], "forget": ["20251231T000000Z", "20251230T000000Z"],
            "snapshots_removed": 0, "dry_run": True}
    assert load("forget", plan).render() == \
        "would forget 2 set(s): 20251231T000000Z, 20251230T000000Z; keeping 1: 20260101T000000Z"
    assert load("forget", first("forget")).render() == "forgot 1 set(s): 20251231T000000Z; keeping 1: 20260101T000000Z"
    nothing = results.ForgetResult(keep=[], forget=[], snapshots_removed=0, dry_run=False)
    assert nothing.render() == "forgot 0 set(s): none; keeping 0: none"


def test_a_check_says_each_part_and_exits_1_when_something_failed():
    ok, failed = (load("check", d) for a, d in EXAMPLES if a == "check")
    assert ok.render().splitlines() == ["restic check: ok", "set 20260101T000000Z: ok",
                                        "set 20251231T000000Z: incomplete", "artifacts: none in the repository"]
    assert ok.exit_status() == 0
    assert failed.render().splitlines() == [
        "restic check: FAILED: restic check failed (read back 10% of the data)", "    pack x",
        "set 20260101T000000Z: FAILED", "    raw/: digest differs",
        "artifacts: FAILED", "    artifacts snapshot abcdef12 cannot be read back"]
    assert failed.exit_status() == 1
    empty = load("check", first("check") | {"sets": [], "artifacts": {
        "verdict": "ok", "snapshot": "abcdef12", "artifacts": ["ferretdb-v1.24.2/ferretdb"], "problems": []}})
    assert empty.render().splitlines()[1:] == [
        "no snapshot sets in the repository",
        "artifacts: ok (snapshot abcdef12: ferretdb-v1.24.2/ferretdb read back, sha256 as recorded)"]


def test_copy_says_what_it_copied_and_what_was_there():
    assert load("copy", first("copy")).render() == (
        "copied 1 set(s) to rest:http://aggr-offsite:8000/aggregator: 20260101T000000Z; 0 already there; "
        "1 complete off-site")
    again = results.CopyResult(copied=[], already_offsite=["a", "b"], offsite_complete_sets=2, repository="r")
    assert again.render() == "copied 0 set(s) to r: none; 2 already there; 2 complete off-site"
    # Since the build artifacts go off-site too, the copy says what it did with them; older results have none.
    with_artifacts = load("copy", [d for a, d in EXAMPLES if a == "copy" and "artifacts" in d][0])
    assert with_artifacts.render().splitlines()[1:] == ["artifacts: copied (snapshot abcdef12)"]
    present = results.ArtifactsCopied("present", "0123456789abcdef", "abcdef12")
    assert present.line() == "artifacts: already off-site (snapshot abcdef12)"
    assert results.ArtifactsCopied("none").line().startswith("artifacts: none in the primary repository")
    assert results.ArtifactsCopied("none").to_dict() == {"state": "none"}


@pytest.mark.parametrize("action,data", EXAMPLES, ids=[f"{a}-{i}" for i, (a, _) in enumerate(EXAMPLES)])
def test_only_a_failed_check_asks_for_a_non_zero_exit(action, data):
    failed_check = action == "check" and not data["ok"]
    assert load(action, data).exit_status() == (1 if failed_check else 0)
