"""A tiny headless-Chromium driver for tests: load a page, read its DOM and console, screenshot it.

Debian's `chromium` does all of it from the command line: `--dump-dom` prints the DOM once the page
has loaded and its scripts ran (`--virtual-time-budget` lets timers finish first), and
`--enable-logging=stderr` writes every console message and uncaught error to stderr as
`INFO:CONSOLE...] "message", source: URL (line)`. No driver package and no download needed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

# What the machines of this project need: no sandbox as root, and no network at all.
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--hide-scrollbars", "--virtual-time-budget=10000",
]  # fmt: skip
_CONSOLE = re.compile(r':CONSOLE[^\]]*\] "(?P<message>.*)", source: (?P<source>\S*)')


@dataclass(frozen=True)
class LoadedPage:
    dom: str  # the document after its scripts ran
    console: list[str]  # every console message and uncaught error the page produced


def chromium_or_skip() -> str:
    """The Chromium binary; a missing one skips the test on a laptop and fails it in CI."""
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is not None:
        return binary
    if os.environ.get("CI"):
        pytest.fail("chromium is not installed, and CI must run this test (.ci/run installs it)")
    pytest.skip("chromium is not installed (apt-get install chromium); CI runs this test")


def load(binary: str, page: Path) -> LoadedPage:
    """Opens `page` from disk, lets it run, and returns its DOM and console messages."""
    result = _run(binary, ["--enable-logging=stderr", "--v=0", "--dump-dom", page.as_uri()])
    console = [
        f"{m['message']} ({m['source']})"
        for m in _CONSOLE.finditer(result.stderr)
        if m["source"].startswith("file://")
    ]
    return LoadedPage(result.stdout, console)


def screenshot(binary: str, page: Path, png: Path, width: int = 1200, height: int = 4000) -> Path:
    """Saves a `width` x `height` screenshot of the top of `page` as `png`."""
    png.parent.mkdir(parents=True, exist_ok=True)
    _run(binary, [f"--window-size={width},{height}", f"--screenshot={png}", page.as_uri()])
    assert png.is_file() and png.stat().st_size > 10_000, f"no screenshot at {png}"
    return png


def _run(binary: str, args: list[str]) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory() as profile:
        result = subprocess.run(
            [binary, *FLAGS, f"--user-data-dir={profile}", *args],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    assert result.returncode == 0, f"chromium failed ({result.returncode}): {result.stderr[-2000:]}"
    return result


def rendered_figures(dom: str) -> dict[str, bool]:
    """Each figure div of the report (`figure-<name>`) and whether plotly drew an SVG in it."""
    chunks = re.split(r'(?=<div id="figure-)', dom)[1:]
    return {
        re.match(r'<div id="figure-([\w-]+)"', chunk)[1]: (  # type: ignore[index]
            "js-plotly-plot" in chunk[:500] and 'class="main-svg"' in chunk
        )
        for chunk in chunks
    }
