"""What `invoke rotate-secrets` reports (dr/jobs/rotate.Rotation) on one host, on the Aggregator's host of a
database on its own host (with and without --kit) and on that database's host: JSON that reads back into an
equal record (no kit, an empty one and a folder stay apart), and the text the task printed."""

from dr.jobs.rotate import Rotation

ROLES = ["owner", "importer", "reader"]
CERTS = ["db until 2027-01-01", "postgres until 2027-01-01"]
NEXT = "now on the database's host: the kit into its secrets folder, then `invoke rotate-secrets` there " \
       "(docs/runbook.md 12.5)"


def round_trips(r: Rotation) -> dict:
    assert Rotation.from_json(r.to_json()) == r
    return r.to_dict()


def test_one_host_names_the_roles_certificates_and_the_pause():
    r = Rotation(ROLES, CERTS, 1.37, 9.5)
    assert round_trips(r) == {"roles": ROLES, "certificates": CERTS, "paused_seconds": 1.37, "seconds": 9.5,
                              "taken_up": False}
    assert r.render().splitlines() == [
        "new passwords: owner, importer, reader; every role logged in with its new one",
        "new certificates: db until 2027-01-01; postgres until 2027-01-01",
        "the pipeline waited 1.37 s"]
    assert "new certificates" not in Rotation(ROLES, [], 0.5, 1.0).render()


def test_the_aggregators_host_says_where_the_kit_is_or_how_to_make_it():
    kit = Rotation(ROLES, CERTS, 0.5, 3.0, kit="/root/kit")
    assert round_trips(kit)["kit"] == "/root/kit"
    assert kit.render().splitlines()[-2:] == ["database host kit: /root/kit", NEXT]
    no_kit = Rotation(ROLES, CERTS, 0.5, 3.0, kit="")
    assert round_trips(no_kit)["kit"] == ""
    assert no_kit.render().splitlines()[-2:] == ["make the database's host kit (`invoke db-host-kit --to DIR`)",
                                                 NEXT]
    assert Rotation.from_dict(no_kit.to_dict()).kit == "" and Rotation.from_dict(
        Rotation(ROLES, CERTS, 0.5, 3.0).to_dict()).kit is None  # one host: no key at all
    assert "kit" not in Rotation(ROLES, CERTS, 0.5, 3.0).render()


def test_the_database_host_took_the_rotation_up():
    r = Rotation(ROLES, [], 0.0, 20.0, taken_up=True)
    assert round_trips(r)["taken_up"] is True
    assert r.render() == ("passwords of owner, importer, reader are PostgreSQL's; PostgreSQL and FerretDB "
                          "restarted on them and on the certificates; every role logged in")
