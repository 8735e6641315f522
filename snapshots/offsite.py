"""The off-site copy: whole snapshot sets copied (`restic copy`) from the primary repository into a second
one, served by an append-only rest-server on another host.

Only complete sets are copied, and a set's manifest only after its other parts (files, physical copy, dump) are there,
so an interrupted copy leaves an incomplete set off-site, never a complete one that lacks a part. restic copy
itself skips snapshots the destination already has; the rest-server's append-only mode means the Aggregator
can add sets but never delete or overwrite one (a compromised Aggregator cannot destroy the off-site copy).

The newest build-artifacts snapshot (snapshots/artifacts.py: the FerretDB binary, in no set) goes with the data
parts, unless the off-site repository's newest one holds the same binaries already (its `artifacts:<fingerprint>`
tag): a host lost together with its local repository then rebuilds from the off-site copy alone, without the Go
module proxy. Both repositories are listed once each before the copy and the off-site one once after it; the
plan for the sets and for the artifacts comes from those listings.
"""

from __future__ import annotations

from common import log
from snapshots import artifacts, sets
from snapshots.restic import Restic, ResticError, snapshots_args

_log = log.get("offsite")
TLS_CHECK_TIMEOUT = 15  # seconds for the off-site server's TLS handshake


def check_tls(repository: str, cafile: str | None) -> None:
    """A rest:https:// repository's server completes a TLS handshake verified against cafile (the system's CAs
    without one): ResticError naming why not. restic itself retries such a failure for about 15 minutes
    before it gives up, so the reason is asked here first, in seconds."""
    import socket
    import ssl
    import urllib.parse

    if not repository.startswith("rest:https://"):
        return
    url = urllib.parse.urlsplit(repository.removeprefix("rest:"))
    host, port = url.hostname or "", url.port or 443
    try:
        ctx = ssl.create_default_context(cafile=cafile)
        with socket.create_connection((host, port), timeout=TLS_CHECK_TIMEOUT) as raw:
            with ctx.wrap_socket(raw, server_hostname=host):
                pass
    except ssl.SSLCertVerificationError as exc:
        raise ResticError(f"the off-site server {host}:{port} is not the one configured: its certificate does not "
                          f"verify against {cafile or 'the system CAs'} ({exc.verify_message}; certificate verify "
                          "failed)") from None
    except (OSError, ssl.SSLError) as exc:
        raise ResticError(f"the off-site server {host}:{port} does not complete a TLS handshake: {exc}") from None


def copy_plan(primary: dict[str, dict[str, dict]], there: dict[str, dict[str, dict]]
              ) -> tuple[list[str], list[str], list[str]]:
    """(the complete primary sets the off-site repository lacks or holds only in part, newest first; the ids of
    their data parts it lacks; the ids of their manifests, copied after the data parts) from both repositories'
    sets (sets.group). Pure."""
    todo = {sid: parts for sid, parts in primary.items()
            if sets.is_complete(parts) and not sets.is_complete(there.get(sid, {}))}
    data = [parts[k]["id"] for sid, parts in sorted(todo.items())
            for k in sets.DATA_KINDS if k in parts and k not in there.get(sid, {})]
    return sorted(todo, reverse=True), data, [parts["manifest"]["id"] for sid, parts in sorted(todo.items())]


def copy_result(primary: dict[str, dict[str, dict]], todo: list[str], after: dict[str, dict[str, dict]],
                repository: str) -> dict:
    """copy's result from the primary's sets, the sets copied and the off-site sets after the copy; ResticError
    when one of those is still not complete off-site. Pure."""
    missing = sorted(sid for sid in todo if not sets.is_complete(after.get(sid, {})))
    if missing:
        raise ResticError(f"after the copy, these sets are still not complete off-site: {', '.join(missing)}")
    complete = {sid for sid, parts in primary.items() if sets.is_complete(parts)}
    return {"copied": todo, "already_offsite": sorted(complete - set(todo), reverse=True),
            "offsite_complete_sets": sum(1 for parts in after.values() if sets.is_complete(parts)),
            "repository": repository}


def copy_args(primary: Restic, snapshot_ids: list[str]) -> list[str]:
    """restic copy of these snapshots from the primary repository (run against the off-site one, which the
    environment names): the primary's location and its password file, never a password."""
    return ["copy", "--from-repo", primary.repository, "--from-password-file", primary.password_file, *snapshot_ids]


def copy_runs(primary: Restic, data_ids: list[str], manifest_ids: list[str]) -> list[list[str]]:
    """The copy commands in order (copy_plan's ids): the data parts first, then the manifests, so an
    interrupted copy leaves no complete set that lacks a part; none for an empty list."""
    return [copy_args(primary, ids) for ids in (data_ids, manifest_ids) if ids]


def artifacts_plan(primary: list[dict], there: list[dict]) -> tuple[dict | None, bool]:
    """(the primary's newest artifacts snapshot, None when it holds none; whether to copy it: the off-site
    repository's newest artifacts snapshot, the one a rebuild from there restores, does not carry its
    fingerprint) from both repositories' listings (`restic snapshots --json`). Pure."""
    built = artifacts.newest(primary)
    there_newest = artifacts.newest(there)
    wanted = built is not None and (there_newest is None
                                    or artifacts.fingerprint_of(there_newest) != artifacts.fingerprint_of(built))
    return built, wanted


def artifacts_result(built: dict | None, wanted: bool, after: list[dict]) -> dict:
    """copy's `artifacts` (results.ArtifactsCopied) from artifacts_plan and the off-site listing after the copy:
    copied, present (it was there) or none (the primary holds none), with the off-site snapshot; ResticError
    when the off-site repository's newest artifacts snapshot still does not carry those binaries. Pure."""
    if built is None:
        return {"state": "none"}
    fp = artifacts.fingerprint_of(built)
    there = artifacts.newest(after)
    if there is None or artifacts.fingerprint_of(there) != fp:
        raise ResticError(f"after the copy, the off-site repository's newest build artifacts are not those of the "
                          f"primary's snapshot {built['short_id']} (artifacts:{fp})")
    return {"state": "copied" if wanted else "present", "fingerprint": fp, "snapshot": there["short_id"]}


def copy(primary: Restic, offsite: Restic) -> dict:
    """Copy every complete primary set the off-site repository lacks (or holds only in part), and the newest
    build artifacts unless it holds the same ones."""
    listed = primary.json(*snapshots_args()) or []
    source = sets.group(listed)
    there = offsite.json(*snapshots_args()) or []
    todo, data_ids, manifest_ids = copy_plan(source, sets.group(there))
    built, wanted = artifacts_plan(listed, there)
    for args in copy_runs(primary, ([built["id"]] if wanted else []) + data_ids, manifest_ids):
        offsite.run(*args)
    after = offsite.json(*snapshots_args()) or []
    result = copy_result(source, todo, sets.group(after), offsite.repository)
    return {**result, "artifacts": artifacts_result(built, wanted, after)}
