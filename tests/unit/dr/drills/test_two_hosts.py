"""The two-host drill's pure parts (dr/drills/two_hosts.py): the servers' fixed addresses and the set it expects
both new servers to restore. The drill itself runs in tests/integration/test_two_host_drill.py."""

import ipaddress

from dr.drills import two_hosts


def test_each_server_has_its_own_fixed_address_on_the_drills_subnet():
    subnet = ipaddress.ip_network("10.213.40.0/24")
    assert two_hosts.address(subnet, "aggregator") == "10.213.40.10"
    assert two_hosts.address(subnet, "database") == "10.213.40.20"


def test_the_last_set_the_aggregator_took_is_the_one_both_new_servers_restore():
    outputs = [("aggregator", "set 20261129T100000Z complete (files, pg, db): 6 reports, 40 database documents;"),
               ("database", "set 20261129T110000Z complete (files, pg): 1 reports, 1 database documents"),
               ("aggregator", "rebuild summary:\nset 20261129T120000Z complete (files, pg): 24 reports, 99 database "
                              "documents; pipeline paused 0.4s")]
    assert two_hosts.last_set(outputs) == ("20261129T120000Z", 99)
    assert two_hosts.last_set(outputs[1:2]) is None  # only the Aggregator's server takes sets
