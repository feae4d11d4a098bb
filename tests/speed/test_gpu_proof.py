"""The GPU proof rehearsed on CPU with tiny sizes: every section runs and records its result,
and the summary is written, so the script cannot break unnoticed before a GPU is lent."""

from __future__ import annotations

import json
import subprocess

import pytest
from helpers import REPO


@pytest.mark.slow
def test_gpu_proof_cpu_rehearsal_runs_every_section(tmp_path):
    out = tmp_path / "proof"
    done = subprocess.run(
        ["bash", str(REPO / "benchmarks" / "gpu_proof.sh"), "--cpu-rehearsal", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    sections = [json.loads(line) for line in (out / "sections.jsonl").read_text().splitlines()]
    names = [section["section"] for section in sections]
    assert names == ["environment", "gpu_tests", "speed_cpu_decoder", "speed_nvjpeg", "train"]
    failed = {s["section"]: (out / f"{s['section']}.log").read_text()[-2000:] for s in sections
              if s["rc"] != 0}  # fmt: skip
    assert not failed, failed
    summary = (out / "summary.md").read_text()
    assert "bench train (THE recipe" in summary and "end-to-end" in summary
    train = json.loads((out / "train" / "proof_train.json").read_text())
    assert train["steps"] == 4 and train["images_per_s_steady"] > 0


def test_gpu_proof_script_is_valid_bash():
    done = subprocess.run(["bash", "-n", str(REPO / "benchmarks" / "gpu_proof.sh")])
    assert done.returncode == 0
