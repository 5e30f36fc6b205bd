"""Test helpers for the paper outputs: PDF/PNG inspection and a headless Chromium page load.

External tools (``chromium``, ``latexmk``, ``pdfinfo``) are optional on a developer machine:
:func:`~stronglens_assets_tests.harness.require_tool` skips with the reason when one is absent,
but fails when ``CI`` is set, because CI installs them (Debian packages) and must run those
tests.
"""

from __future__ import annotations

import re
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path

from stronglens_assets_tests.harness import require_tool

#: Headless Chromium with no traffic of its own (no updates, sync, first-run pages).
CHROMIUM_OFFLINE_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)
#: ... plus the console on stderr, which :func:`load_in_chromium` scans for errors.
CHROMIUM_FLAGS = (*CHROMIUM_OFFLINE_FLAGS, "--enable-logging=stderr", "--v=0")
_CONSOLE = re.compile(r":CONSOLE[^\]]*\]\s*(.*)")


def pdf_page_count(data: bytes) -> int:
    """Pages of a PDF, from its page objects (matplotlib and pdfTeX write them uncompressed)."""
    return len(re.findall(rb"/Type\s*/Page(?![s\w])", data))


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) in pixels from a PNG's IHDR chunk."""
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        raise ValueError("not a PNG")
    return struct.unpack(">II", data[16:24])


@dataclass(frozen=True)
class PageLoad:
    dom: str
    console: list[str]
    stderr: str


def load_in_chromium(url: str, profile_dir: Path, budget_ms: int = 5000) -> PageLoad:
    """Load ``url`` in headless Chromium with a fresh profile; return the DOM after the
    page's scripts ran and every console message (errors, uncaught exceptions, logs)."""
    chromium = require_tool("chromium", "the gallery's browser test needs Debian's chromium")
    result = subprocess.run(
        [
            chromium,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile_dir}",
            f"--virtual-time-budget={budget_ms}",
            "--dump-dom",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"chromium exited with {result.returncode}: {result.stderr[-2000:]}")
    console = [m.group(1) for m in map(_CONSOLE.search, result.stderr.splitlines()) if m]
    return PageLoad(result.stdout, console, result.stderr)
