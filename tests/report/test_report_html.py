"""The HTML leaderboard in a real headless Chromium: it renders, the tables are in the DOM, and
the screenshot is a readable page (skips with a message where Chromium is not installed)."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
from helpers import FIXTURES
from PIL import Image

from bench.catalog import load_catalog
from bench.report import build_reports

RESULTS = FIXTURES / "results"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("chromium not installed: `apt-get install chromium` (.ci/run installs it)")


def _run(command: list[str]) -> subprocess.CompletedProcess:
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{command[0]} failed: {done.stderr[-2000:]}"
    return done


def test_html_leaderboard_renders_in_chromium(tmp_path):
    browser = _chromium()
    summary = build_reports(RESULTS, tmp_path / "reports", load_catalog())
    page = (tmp_path / "reports" / "leaderboard.html").resolve().as_uri()
    profile = ["--user-data-dir=" + str(tmp_path / "profile")]
    dom = _run([browser, *FLAGS, *profile, "--dump-dom", page]).stdout
    assert "<table" in dom and "facebench leaderboard" in dom
    datasets = {run.dataset for run in _runs()}
    for dataset in datasets:
        assert f'data-dataset="{dataset}"' in dom, f"row {dataset} missing from the rendered DOM"
    assert dom.count('class="group" data-dataset=') == len(datasets)
    assert summary.results_used == len(list(RESULTS.rglob("*.json")))

    shot = tmp_path / "page.png"
    _run([browser, *FLAGS, *profile, f"--screenshot={shot}", "--window-size=1400,1000", page])
    image = np.asarray(Image.open(shot).convert("L"))
    assert image.shape == (1000, 1400)
    # A rendered page: mostly light background with a fair amount of dark text on it.
    dark = np.mean(image < 128)
    assert image.mean() > 180 and 0.005 < dark < 0.4


def _runs():
    from bench.report.tables import load_results

    runs, warnings = load_results(RESULTS)
    assert warnings == []
    return runs
