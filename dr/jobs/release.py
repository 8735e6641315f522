"""Releasing the collectors' reports after a set (issue 22; docs/snapshots.md): `invoke snapshot` and
`invoke offsite` as jobs that, after the set is taken (or copied off-site) and verified, have the backup
container write the set's release list (`--release-list`, snapshots/release.py) and then run the sync stage
in its image with `--release` (as dr/jobs/pipeline.py runs a stage), which removes from each collector's
.pulled/ exactly the files the lists name with their sha256.

`[sync] release` decides (`release_mode`): "pulled" releases nothing here (sync removes at pull time);
"set" writes the local list after a set and the off-site one after a copy; "offsite" only the off-site one.
The release's outcome goes into the job's result (TakeResult / CopyResult `release`); a release that failed
never fails the set (the set is fine, the next job retries): it is named there and in the job's text.
"""

from __future__ import annotations

from common import log
from common.config import Config
from common.errors import DrError
from dr.jobs import backup, pipeline
from snapshots.results import CopyResult, Release, TakeResult
from stages import release as stages_release
from stages import sync
from stages.cli import EXIT_INFRA, Summary

_log = log.get("release")

MODES = ("pulled", "set", "offsite")


def release_mode(cfg: Config) -> str:
    """The resolved `[sync] release` mode: "pulled", "set" or "offsite" (stages.sync.release_mode)."""
    return sync.release_mode(cfg)


def lists_wanted(mode: str) -> tuple[str, ...]:
    """The release lists a mode's sync reads (r22: "set" accepts local and off-site lists, "offsite" only
    off-site ones, "pulled" none): only those are written, so none waits for ever. Pure."""
    return stages_release.ACCEPTS[mode]


def run_sync(cfg: Config) -> Summary:
    """The sync stage's `--release` run in its image; a run that printed no summary becomes one naming the
    failure (a release never fails the job that asked for it)."""
    try:
        return pipeline.run_stage(cfg, "sync", ("--release",))
    except DrError as exc:
        _log.info("the release did not run: %s", exc)
        return Summary("sync", errors=[f"the release did not run: {exc}"], exit_code=EXIT_INFRA)


def _taken(cfg: Config, action: str, wanted: bool):
    """The result of a backup action (take, copy), with --release-list when wanted; DrError when it failed."""
    code, result = backup.run(cfg, action, extra=("--release-list",) if wanted else ())
    if result is None:
        raise DrError(f"snapshots {action} failed (exit {code}); the reason is in the lines above")
    return result


def active(cfg: Config, mode: str) -> bool:
    """Whether jobs release at all: not in mode "pulled", and only with collectors configured."""
    return mode != "pulled" and bool(cfg.collectors)


def _released(cfg: Config, result, mode: str, repository: str):
    """result with the sync stage's release run in its `release` (none when not active)."""
    if not active(cfg, mode):
        return result
    if result.release is None:
        result.release = Release(repository=repository)
    result.release.sync = run_sync(cfg)
    if result.release.failed:
        _log.info("the release after this set failed (the set is fine; the next run retries): %s",
                  result.release.line())
    return result


def taken(cfg: Config, action: str) -> TakeResult | CopyResult:
    """A set taken (action "take") or the complete sets copied off-site ("copy"), with the release list when the
    mode wants one from that repository; DrError when it failed."""
    mode = release_mode(cfg)
    repository = "local" if action == "take" else "offsite"
    return _taken(cfg, action, active(cfg, mode) and repository in lists_wanted(mode))


def release(cfg: Config, result: TakeResult | CopyResult) -> TakeResult | CopyResult:
    """What taken() returned, with the release run after it (none when the mode or configuration has none)."""
    return _released(cfg, result, release_mode(cfg), "local" if isinstance(result, TakeResult) else "offsite")


def snapshot(cfg: Config) -> TakeResult:
    """A set taken, then its reports released (release mode "set"; in mode "offsite" the lists waiting from
    earlier copies are released again: sync reads every list its mode accepts)."""
    return release(cfg, taken(cfg, "take"))


def offsite(cfg: Config) -> CopyResult:
    """The complete sets copied off-site, then the newest one's reports released (modes "set", "offsite")."""
    return release(cfg, taken(cfg, "copy"))
