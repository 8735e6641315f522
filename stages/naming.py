"""Canonical test names and canonical report file names."""

from __future__ import annotations

import datetime as dt
import re

# Legacy reports name the same test in many ways (old class names, human titles, later renames).
# Keys are normalized with `normalize`; values are the canonical names used in file names and the database.
TEST_NAME_VARIANTS = {
    "dns_tamper": "dns_consistency",
    "dns_tamper_test": "dns_consistency",
    "dnstamper": "dns_consistency",
    "dns_consistency": "dns_consistency",
    "http_requests_test": "http_requests",
    "http_requests": "http_requests",
    "httprequests": "http_requests",
    "http_host": "http_host",
    "httphost": "http_host",
    "http_invalid_request_line": "http_invalid_request_line",
    "http_header_field_manipulation": "http_header_field_manipulation",
    "captive_portal": "captiveportal",
    "captiveportal": "captiveportal",
    "multi_protocol_traceroute_test": "multi_protocol_traceroute",
    "multi_protocol_traceroute": "multi_protocol_traceroute",
    "traceroute": "multi_protocol_traceroute",
    "psiphon_test": "psiphon",
    "psiphon": "psiphon",
    "bridget": "bridge_reachability",
    "bridge_reachability": "bridge_reachability",
    "tcpconnect": "tcp_connect",
    "tcp_connect": "tcp_connect",
}

_NON_WORD = re.compile(r"[^a-z0-9]+")
_SAFE_ID = re.compile(r"[^A-Za-z0-9_]+")


def normalize(name: str) -> str:
    return _NON_WORD.sub("_", str(name).strip().lower()).strip("_")


def canonical_test_name(name) -> str:
    n = normalize(name) if name is not None else ""
    if not n:
        return "unknown"
    return TEST_NAME_VARIANTS.get(n, n)


def start_time(header: dict) -> dt.datetime | None:
    """The report's start time from `start_time` (epoch seconds) or `test_start_time` ("Y-m-d H:M:S")."""
    value = header.get("start_time")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            return dt.datetime.fromtimestamp(float(value), dt.timezone.utc)
        except (OverflowError, OSError, ValueError):
            return None
    for key in ("test_start_time", "start_time"):
        value = header.get(key)
        if isinstance(value, dt.datetime):  # a time with an offset is converted: file names are in UTC
            return value.astimezone(dt.timezone.utc) if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
        if isinstance(value, str):
            for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S"):
                try:
                    return dt.datetime.strptime(value.strip(), fmt).replace(tzinfo=dt.timezone.utc)
                except ValueError:
                    continue
    return None


def country(header: dict) -> str:
    cc = header.get("probe_cc")
    return cc.upper() if isinstance(cc, str) and re.fullmatch(r"[A-Za-z]{2}", cc) else "ZZ"


def asn(header: dict) -> str:
    value = header.get("probe_asn")
    if isinstance(value, int) and not isinstance(value, bool):
        return f"AS{value}"
    if isinstance(value, str) and re.fullmatch(r"(?i)(AS)?\d{1,10}", value.strip()):
        return "AS" + re.sub(r"(?i)^AS", "", value.strip())
    return "AS0"


def report_id(header: dict) -> str | None:
    rid = header.get("report_id")
    if rid is None or rid == "":
        return None
    safe = _SAFE_ID.sub("", str(rid))[:120]
    return safe or None


def data_format_version(header: dict) -> str:
    v = header.get("data_format_version")
    if isinstance(v, str) and re.fullmatch(r"\d+(\.\d+){0,3}", v.strip()):
        return v.strip()
    return "0.1.0"


def report_file_name(header: dict, when: dt.datetime) -> str:
    return "-".join([
        when.strftime("%Y%m%dT%H%M%SZ"), country(header), asn(header),
        canonical_test_name(header.get("test_name")), report_id(header) or "no_report_id",
        data_format_version(header), "probe",
    ]) + ".yaml"


def archive_subdir(name: str) -> str:
    """The archive folder of a canonically named report: "YYYY-MM-DD/CC" (from its first two fields)."""
    stamp, cc = name.split("-", 2)[:2]
    return f"{stamp[0:4]}-{stamp[4:6]}-{stamp[6:8]}/{cc}"


def archive_path(name: str) -> str:
    """Where a canonically named report is published, relative to the data root."""
    return f"archive/{archive_subdir(name)}/{name}"


def with_suffix_number(name: str, n: int) -> str:
    stem = name[: -len(".yaml")] if name.endswith(".yaml") else name
    return f"{stem}-{n}.yaml"
