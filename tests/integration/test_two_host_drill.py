"""The two-host drill (dr/drills/two_hosts.py): docs/runbook.md executed block by block on two fresh Debian
servers (containers from our base image, each with its own Docker Engine), connected only through the
drill's network. Sections 0 to 11 restore the latest set of an instance after the README's first steps (its
set already holds the samples, as a user's does) on the Aggregator's server; section 12 moves the database
to the other server, imports the drill's own reports across the two, takes a set, loses both servers,
rebuilds both from the repository and rotates the passwords and certificates across them; the drill then
checks, from the new Aggregator's server, that the new database server answers on its two TLS ports only,
refuses plaintext on both, and holds the set's documents and every report the drill fed. Slow: two servers
build their images, twice."""

from conftest import passed_every_block

from dr.drills import two_hosts
from dr.engine import docker_api


def test_the_runbook_moves_the_database_to_its_own_host_and_rebuilds_both(readme_flow):
    cfg, manifest = readme_flow
    report = two_hosts.run(cfg)
    ran = passed_every_block(cfg, report, manifest, "two-host", "two-hosts", "Two-host drill")
    assert {r.host for r in ran} == {"aggregator", "database"}
    assert any("./run invoke rebuild --role database" in r.commands for r in ran if r.host == "database")
    # Every server and the Docker data of each went with the drill.
    assert not docker_api.client().containers.list(all=True, filters={"network": two_hosts.network_name(cfg)})
    assert not [v for v in docker_api.client().volumes.list() if v.name.startswith(f"{cfg.instance}-two-hosts-")]
