from dr.machine import host


def test_bootstrap_is_idempotent(built):
    # `built` already bootstrapped once; another run must change nothing and say so.
    first = host.bootstrap(built)
    second = host.bootstrap(built)
    assert not second.changed, second.summary()
    assert second.summary().startswith("host bootstrap: nothing to do")
    assert not first.installed and not first.started_dockerd
    assert host.docker_answers()


def test_preflight_reports_missing_disk(built):
    import pytest

    from common import config
    from common.errors import PreflightError

    greedy = config.load(overrides={"data_root": built.data_root, "host.min_free_gb": 10**6})
    with pytest.raises(PreflightError, match="host.min_free_gb"):
        host.preflight(greedy)
    assert any("free" in line for line in host.preflight(built))
