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
