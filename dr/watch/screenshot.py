"""`invoke screenshot`: a PNG of the status page as the web mirror serves it, taken by Debian's chromium headless
(installed on first use: host.BROWSER_PACKAGES), through the runner. The picture is written atomically: chromium
writes a temporary name beside it, which is renamed into place once it holds a PNG. docs/status.png is made
with it."""

from __future__ import annotations

import os
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from common import atomic, runner
from common.config import Config
from common.errors import DrError
from common.records import Record
from dr.machine import host

CHROMIUM = "/usr/bin/chromium"
WINDOW = (1280, 2400)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SECONDS = 120  # chromium's run at most: a page that never finishes loading is an error, not a hang


@dataclass
class Screenshot(Record):
    """What `invoke screenshot` wrote: the PNG's path and size, and the page's URL."""
    out: str
    url: str
    bytes: int

    def render(self) -> str:
        return f"screenshot of {self.url}: {self.out} ({self.bytes / 1e3:.0f} kB)"


def page_url(cfg: Config) -> str:
    """The status page as this host's web mirror serves it, over loopback."""
    return f"http://127.0.0.1:{cfg.webmirror.port}/status/"


def argv(url: str, out: Path, profile: Path, window: tuple[int, int] = WINDOW) -> list[str]:
    """chromium's command line: headless, no sandbox (we run as root), a profile folder of its own (never
    root's), the window's size, the PNG into out."""
    return [CHROMIUM, "--headless=new", "--no-sandbox", f"--user-data-dir={profile}", "--hide-scrollbars",
            f"--screenshot={out}", f"--window-size={window[0]},{window[1]}", url]


def answers(url: str) -> None:
    """The page answers 200 at url; else a DrError saying what answered (chromium would picture its error
    page)."""
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            resp.read()
    except urllib.error.HTTPError as exc:
        raise DrError(f"{url} answered {exc.code}: is the status page published (status.page_dir) and the web "
                      f"mirror started (invoke rebuild)?") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DrError(f"nothing answers at {url} ({reason}): is the web mirror running (invoke rebuild)?") from None


def take(cfg: Config, out: Path, url: str | None = None) -> Screenshot:
    """A PNG of url (default: this host's status page) in out, atomically."""
    url = url or page_url(cfg)
    if not url.startswith(("http://", "https://")):
        raise DrError(f"--url {url!r}: must start with http:// or https://")
    answers(url)
    host.ensure_packages(host.BROWSER_PACKAGES, optional={})
    out = out.resolve()
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DrError(f"--out {out}: cannot make its folder: {exc.strerror}") from None
    tmp = atomic.temp_path(out)
    tmp = tmp.with_name(tmp.name + ".png")  # chromium picks the picture's type by the name's ending
    try:
        with tempfile.TemporaryDirectory(prefix="aggregator-dr-chromium-") as profile:
            runner.run(argv(url, tmp, Path(profile)), timeout=SECONDS, quiet=True)
        with open(tmp, "rb") as fh:
            if fh.read(len(PNG_MAGIC)) != PNG_MAGIC:
                raise DrError(f"chromium wrote no PNG for {url}")
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        atomic.publish(tmp, out)
    except FileNotFoundError:
        raise DrError(f"chromium wrote no screenshot for {url}") from None
    finally:
        atomic.remove(tmp)
    return Screenshot(str(out), url, out.stat().st_size)
