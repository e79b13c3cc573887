"""The HTML report in a real browser: headless Chromium renders
`carscore report sample_cases/*.csv -o report.html` offline, to a PNG that is
not blank and with no console message (the page has no script, so any
message is an error), and its parsed DOM holds every section.

Chromium is Debian's `chromium` package at /usr/bin/chromium (CI installs it);
where it is absent the tests are skipped and say why.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from test_html_report import SAMPLES, Page, run_cli

CHROMIUM = os.environ.get("CARSCORE_CHROMIUM", "/usr/bin/chromium")
TIMEOUT = 60
# a console message of the page, as Chromium logs it on stderr with --enable-logging=stderr
CONSOLE = re.compile(r"CONSOLE|Uncaught|console\.error", re.IGNORECASE)


def chromium_or_skip() -> str:
    found = CHROMIUM if os.access(CHROMIUM, os.X_OK) else shutil.which("chromium")
    if not found:
        print(f"headless Chromium not found at {CHROMIUM} (Debian package 'chromium'); browser test skipped")
        pytest.skip(f"headless Chromium not found at {CHROMIUM} (install Debian's 'chromium' package)")
    return found


def chromium(page: Path, profile: Path, *what: str) -> subprocess.CompletedProcess[str]:
    """Chromium run headless on a local file, offline: no network service,
    no component update, no sync, a profile of its own."""
    args = [
        chromium_or_skip(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        f"--user-data-dir={profile}",
        "--enable-logging=stderr",
        "--v=0",
        *what,
        page.resolve().as_uri(),
    ]
    try:
        proc = subprocess.run(args, capture_output=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        pytest.fail(f"Chromium did not finish within {TIMEOUT} s")
    return subprocess.CompletedProcess(
        proc.args, proc.returncode, proc.stdout.decode("utf-8", "replace"), proc.stderr.decode("utf-8", "replace")
    )


def console_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if CONSOLE.search(line)]


def pixel_spread(png: Path) -> tuple[tuple[int, ...], float]:
    """(height, width, ...) of the image and the standard deviation of its pixels (0 for a blank page)."""
    import matplotlib.image

    pixels = matplotlib.image.imread(str(png))
    return pixels.shape, float(pixels[..., :3].std())


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    chromium_or_skip()
    out = tmp_path_factory.mktemp("report") / "report.html"
    proc = run_cli("report", *(f"sample_cases/{p.name}" for p in SAMPLES), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    return out


def test_the_report_renders_in_chromium_with_no_console_message(report: Path, tmp_path: Path) -> None:
    png = tmp_path / "report.png"
    proc = chromium(report, tmp_path / "profile", f"--screenshot={png}", "--window-size=1280,2000")
    assert png.exists(), f"no screenshot (exit {proc.returncode}): {proc.stderr[-2000:]}"
    assert console_lines(proc.stderr) == []
    shape, spread = pixel_spread(png)
    assert shape[:2] == (2000, 1280)
    assert spread > 0.05, f"the rendered page is blank (pixel spread {spread:.4f})"


def test_chromium_parses_every_section(report: Path, tmp_path: Path) -> None:
    proc = chromium(report, tmp_path / "profile", "--dump-dom")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert console_lines(proc.stderr) == []
    dom = Page(proc.stdout)
    sections = [s.get("id") for s in dom.sections()]
    assert sections[:2] == ["cohort", "swimmer"] and "rulesets" in sections
    courses = [s["id"] for s in dom.sections() if s.get("class") == "course"]
    assert len(courses) == 6 and "course-TP53-BALL-01-2" in courses
    # the figures are SVG elements of the page, each with its accessible name
    figures = [a for t, a, enclosing in dom.elements if t == "svg" and "figure" in enclosing]
    assert len(figures) >= 1 + 6 * 3 and all(f.get("role") == "img" and f.get("aria-label") for f in figures)


def test_the_checks_see_a_blank_page_and_a_console_error(tmp_path: Path) -> None:
    """The two checks above can fail: a page with a script error logs it, a blank page has no spread."""
    broken = tmp_path / "broken.html"
    broken.write_text('<!DOCTYPE html><html><body><script>console.error("boom"); notDefined();</script></body></html>')
    png = tmp_path / "broken.png"
    proc = chromium(broken, tmp_path / "profile", f"--screenshot={png}", "--window-size=400,300")
    lines = console_lines(proc.stderr)
    assert any("boom" in line for line in lines) and any("Uncaught" in line for line in lines), proc.stderr[-2000:]
    assert pixel_spread(png)[1] < 0.01
