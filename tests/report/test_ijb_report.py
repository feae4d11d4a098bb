"""The leaderboard's IJB table and ROC figure from a `bench ijb` result (no model needed)."""

from __future__ import annotations

import numpy as np

from bench import cli
from bench.catalog import load_catalog
from bench.demo.ijb import MiniIJB, write_mini_ijb
from bench.eval.ijb.package import read_package
from bench.report.build import build_reports


def test_ijb_result_becomes_a_table_row_and_a_roc(tmp_path):
    root = write_mini_ijb(tmp_path / "ijb", "ijbc", MiniIJB(subjects=4, probes_per_subject=1))
    images = len(read_package(root, "ijbc").image_names)
    features = tmp_path / "mine.npy"
    np.save(features, np.random.default_rng(0).standard_normal((images, 16)).astype(np.float32))
    results = tmp_path / "results"
    out = results / "ijb" / "ijbc-mine.json"
    assert (
        cli.main(
            [
                "ijb",
                "--root",
                str(root),
                "--target",
                "ijbc",
                "--features",
                str(features),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    summary = build_reports(results, tmp_path / "reports", load_catalog())
    assert not any("ijbc-mine.json" in warning for warning in summary.warnings)
    markdown = (tmp_path / "reports" / "leaderboard.md").read_text()
    assert "## IJB-B / IJB-C" in markdown
    row = next(line for line in markdown.splitlines() if line.startswith("| model:mine.npy"))
    assert "| ijbc | N0D1F1 |" in row and "`ijb/ijbc-mine.json`" in row
    assert (tmp_path / "reports" / "plots" / "ijb" / "roc.png").is_file()
    assert 'id="ijb"' in (tmp_path / "reports" / "leaderboard.html").read_text()
