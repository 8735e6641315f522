"""Facts about the host (dr/machine/host.py)."""

from dr.machine import host


def test_systemd_runs_when_its_runtime_folder_exists(tmp_path):
    assert not host.systemd_running(tmp_path)
    (tmp_path / "run" / "systemd").mkdir(parents=True)
    (tmp_path / "run" / "systemd" / "system").write_text("")  # a file is not the folder systemd makes
    assert not host.systemd_running(tmp_path)
    (tmp_path / "run" / "systemd" / "system").unlink()
    (tmp_path / "run" / "systemd" / "system").mkdir()
    assert host.systemd_running(tmp_path)


def test_the_bootstrap_report_round_trips_and_says_what_it_did():
    nothing = host.BootstrapReport(present=["docker.io", "git"])
    assert host.BootstrapReport.from_json(nothing.to_json()) == nothing
    assert nothing.render() == "host bootstrap: nothing to do (2 packages present, dockerd answering)"
    did = host.BootstrapReport(installed=["curl", "openssl"], started_dockerd=True, present=["git"])
    assert host.BootstrapReport.from_json(did.to_json()) == did
    assert did.to_dict() == {"installed": ["curl", "openssl"], "started_dockerd": True, "present": ["git"]}
    assert did.render() == did.summary() == "host bootstrap: installed curl openssl; started dockerd"
