"""The SQL that database/pgsql.py hands psql: identifiers and literals quoted whatever the names, one
count query for every collection, and GIN expression indexes matching FerretDB's pushed-down equality."""

from hypothesis import given
from hypothesis import strategies as st

from database import pgsql

NAMES = st.text(st.characters(blacklist_characters="\x00"), min_size=1, max_size=80)


@given(NAMES)
def test_identifiers_and_literals_are_quoted_whatever_the_name(name):
    quoted = pgsql.ident(name)
    assert quoted.startswith('"') and quoted.endswith('"')
    assert quoted[1:-1].replace('""', "") == name.replace('"', "")  # every quote doubled, nothing else
    lit = pgsql.literal(name)
    assert lit[1:-1].replace("''", "") == name.replace("'", "")


def test_a_nul_byte_is_refused():
    for fn in (pgsql.ident, pgsql.literal):
        try:
            fn("a\x00b")
        except ValueError:
            continue
        raise AssertionError(f"{fn.__name__} accepted a NUL byte")


def test_the_tables_come_from_ferretdb_metadata():
    assert pgsql.tables_sql("aggregator") == (
        "SELECT _jsonb ->> '_id', _jsonb ->> 'table' FROM \"aggregator\"._ferretdb_database_metadata ORDER BY 1")


def test_one_query_counts_every_collection():
    sql = pgsql.counts_sql("aggr", {"reports": "reports_1a2b3c4d", "measurements": "measurements_0f0f0f0f"})
    assert sql == ("SELECT 'measurements', count(*) FROM \"aggr\".\"measurements_0f0f0f0f\" UNION ALL "
                   "SELECT 'reports', count(*) FROM \"aggr\".\"reports_1a2b3c4d\"")


def test_the_index_matches_the_pushed_down_form():
    assert pgsql.index_sql("aggregator", "reports_1a2b3c4d", "report_id") == (
        'CREATE INDEX IF NOT EXISTS "aggr_reports_1a2b3c4d_report_id" ON "aggregator"."reports_1a2b3c4d" '
        "USING gin ((_jsonb -> 'report_id') jsonb_path_ops)")


@given(st.text("abcdefghijklmnopqrstuvwxyz_0123456789", min_size=1, max_size=63),
       st.text("abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=63))
def test_index_names_fit_postgresql_and_differ_per_field(table, field):
    name = pgsql.index_name(table, field)
    assert len(name.encode()) <= 63 and name.startswith("aggr_")
    assert pgsql.index_name(table, field + "x") != name


def test_psql_rows_are_split_on_tabs():
    assert pgsql.parse_rows("reports\t18\nmeasurements\t51\n") == [["reports", "18"], ["measurements", "51"]]
    assert pgsql.parse_rows("") == []


def test_the_served_fields_are_the_users_queries():
    assert set(pgsql.SERVED) == {"reports", "measurements"}
    assert {"report_id", "probe_cc", "test_name", "day"} <= set(pgsql.SERVED["reports"])
    assert {"report_key", "input"} <= set(pgsql.SERVED["measurements"])


def test_psql_in_the_container_acts_as_the_role_over_the_socket():
    argv = pgsql.socket_argv("SELECT 1", 'read"er')
    assert argv[0] == "psql" and "--quiet" in argv and "--dbname=ferretdb" in argv
    assert not any(a.startswith(("--host", "--username", "--port")) for a in argv)  # the socket, as the superuser
    assert argv[-4:] == ["--command", 'SET ROLE "read""er"', "--command", "SELECT 1"]

