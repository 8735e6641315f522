"""naming: whatever a report's header says, its file name is one safe path component in the canonical
form, and its archive path stays under archive/."""

from __future__ import annotations

import datetime as dt
import re

from hypothesis import given
from hypothesis import strategies as st

from stages import naming

CANONICAL = re.compile(r"\d{8}T\d{6}Z-[A-Z]{2}-AS\d+-[a-z0-9_]+-[A-Za-z0-9_]+-\d+(\.\d+){0,3}-probe\.yaml")
WHEN = dt.datetime(2014, 3, 4, 5, 6, 7, tzinfo=dt.timezone.utc)


def test_a_legacy_header_gets_its_canonical_name():
    header = {"probe_cc": "it", "probe_asn": "as12345", "test_name": "DNS Tamper", "report_id": "abc-DEF_1",
              "data_format_version": "0.1.0"}
    name = naming.report_file_name(header, WHEN)
    assert name == "20140304T050607Z-IT-AS12345-dns_consistency-abcDEF_1-0.1.0-probe.yaml"
    assert naming.archive_path(name) == f"archive/2014-03-04/IT/{name}"


def test_missing_or_hostile_fields_fall_back():
    header = {"probe_cc": "../", "probe_asn": True, "test_name": None, "report_id": "../../etc",
              "data_format_version": "1; rm"}
    assert naming.report_file_name(header, WHEN) == "20140304T050607Z-ZZ-AS0-unknown-etc-0.1.0-probe.yaml"
    assert naming.report_id({"report_id": "/.-"}) is None


def test_start_times_in_every_legacy_form():
    assert naming.start_time({"start_time": 1393909567.0}) == WHEN
    assert naming.start_time({"test_start_time": "2014-03-04 05:06:07"}) == WHEN
    offset = dt.datetime(2014, 3, 4, 7, 6, 7, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert naming.start_time({"test_start_time": offset}) == WHEN
    assert naming.start_time({"start_time": 1e300}) is None
    assert naming.start_time({"start_time": "soon"}) is None


header_values = st.none() | st.booleans() | st.integers() | st.floats() | st.text() | st.binary()


@given(st.dictionaries(st.sampled_from(["probe_cc", "probe_asn", "test_name", "report_id",
                                        "data_format_version"]), header_values))
def test_any_header_gives_one_safe_canonical_file_name(header):
    name = naming.report_file_name(header, WHEN)
    assert CANONICAL.fullmatch(name), name
    assert "/" not in name and "\x00" not in name and len(name.encode()) < 255
    assert naming.archive_path(name).startswith("archive/2014-03-04/")
