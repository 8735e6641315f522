"""`invoke screenshot`'s pure parts (dr/watch/screenshot.py); the real chromium takes one in
tests/integration/test_status_page.py."""

from pathlib import Path

import pytest

from common import config
from common.errors import DrError
from dr.machine import host
from dr.watch import screenshot


def test_chromium_runs_headless_without_sandbox_in_a_profile_of_its_own():
    argv = screenshot.argv("http://127.0.0.1:8080/status/", Path("/tmp/x/.status.png.tmp"), Path("/tmp/profile"))
    assert argv == ["/usr/bin/chromium", "--headless=new", "--no-sandbox", "--user-data-dir=/tmp/profile",
                    "--hide-scrollbars", "--screenshot=/tmp/x/.status.png.tmp", "--window-size=1280,2400",
                    "http://127.0.0.1:8080/status/"]
    assert screenshot.argv("http://h/", Path("o"), Path("p"), (800, 600))[-2] == "--window-size=800,600"
    assert host.BROWSER_PACKAGES == ("chromium", "chromium-driver")


def test_the_default_url_is_the_configured_mirrors_status_page_on_loopback():
    cfg = config.load(overrides={"webmirror.port": 18123})
    assert screenshot.page_url(cfg) == "http://127.0.0.1:18123/status/"


def test_the_result_round_trips_and_says_what_it_wrote():
    shot = screenshot.Screenshot("/srv/docs/status.png", "http://127.0.0.1:8080/status/", 123_456)
    assert screenshot.Screenshot.from_json(shot.to_json()) == shot
    assert shot.render() == "screenshot of http://127.0.0.1:8080/status/: /srv/docs/status.png (123 kB)"


def test_a_page_that_does_not_answer_is_one_clear_error_and_no_file(tmp_path):
    from instances import free_port

    cfg = config.load(overrides={"webmirror.port": free_port()})
    out = tmp_path / "status.png"
    with pytest.raises(DrError, match=r"nothing answers at http://127\.0\.0\.1:\d+/status/ .*invoke rebuild"):
        screenshot.take(cfg, out)
    with pytest.raises(DrError, match="must start with http"):
        screenshot.take(cfg, out, "file:///etc/passwd")
    assert list(tmp_path.iterdir()) == []
