"""The results of the services' tasks `down` (`Stopped`) and `offsite-server` (`OffsiteServer`): records that
round-trip through JSON, and the text each says. (`invoke status` is dr/watch/status.py's, tested in
tests/unit/dr/watch/test_status.py.)"""

from dr.services import offsite, stack


def test_down_says_what_it_stopped_and_what_still_runs():
    stopped = stack.Stopped(["inst-db", "inst-postgres"], [stack.StillRunning("inst-offsite", stack.KEPT["offsite"])])
    assert stack.Stopped.from_json(stopped.to_json()) == stopped
    assert stopped.to_dict()["still_running"] == [{"container": "inst-offsite", "why": stack.KEPT["offsite"]}]
    assert stopped.render().splitlines() == [
        "stopped: inst-db, inst-postgres",
        "still running: inst-offsite (the off-site copy's server stands for another host: "
        "`invoke offsite-server --stop`)"]
    assert stack.Stopped([], []).render() == "stopped: nothing was running"


def test_the_offsite_server_says_how_to_configure_it_or_that_it_stopped():
    server = offsite.OffsiteServer("started", "inst-offsite", "inst-offsite", "127.0.0.1:8000",
                                   "rest:http://inst-offsite:8000/aggregator", "aggregator")
    assert offsite.OffsiteServer.from_json(server.to_json()) == server
    assert set(server.to_dict()) == {"state", "container", "network", "published", "repository", "user"}
    assert server.render().splitlines() == [
        "offsite server started: inst-offsite on network inst-offsite, published on 127.0.0.1:8000",
        "to use it from this host, set in the configuration:",
        "  [offsite]",
        '  repository = "rest:http://inst-offsite:8000/aggregator"',
        '  network = "inst-offsite"',
        '  user = "aggregator"   # password: the secret file offsite-http-password']
    server.state = "stopped"
    assert server.render() == "offsite server stopped; its data volume is kept"
