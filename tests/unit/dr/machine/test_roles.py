"""The table of what each host.role does (dr/machine/roles.py) agrees with the configuration and with itself."""

from common import config
from dr.jobs import contract
from dr.machine import images, roles


def test_every_role_the_configuration_accepts_has_a_row():
    assert set(roles.ROLES) == set(config.HOST_ROLES)


def test_a_host_builds_the_images_of_what_it_runs():
    for name, role in roles.ROLES.items():
        built = role.images or images.COMPONENTS
        assert set(role.services) <= set(built), name
        if role.runs_pipeline:
            assert {row.component for row in contract.STAGES.values()} <= set(built), name
        if role.restores_files or role.restores_database:
            assert "backup" in built, name


def test_the_database_lives_where_its_set_part_is_restored():
    for name, role in roles.ROLES.items():
        assert role.restores_database == ("postgres" in role.services) == ("db" in role.services), name
        assert role.database_elsewhere == (role.runs_pipeline and "db" not in role.services), name
        assert role.from_kit == (not role.runs_pipeline), name  # the database's own host
        assert not (role.publishes_postgres and not role.from_kit), name
