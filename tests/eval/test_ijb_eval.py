"""`bench eval --targets <bin>,ijbc` folds the IJB metrics into the normal result JSON."""

from __future__ import annotations

import pytest
import torch
import yaml
from test_eval_e2e import make_bin

from backbones import build_backbone
from bench import cli
from bench.demo.ijb import MiniIJB, write_mini_ijb
from bench.eval.results import read_result


@pytest.mark.slow
def test_eval_with_an_ijb_target(tmp_path):
    eval_dir = tmp_path / "data" / "eval"
    eval_dir.mkdir(parents=True)
    make_bin(eval_dir / "tiny.bin", 20, seed=0)
    write_mini_ijb(
        eval_dir, "ijbc", MiniIJB(subjects=4, probes_per_subject=1, media_per_template=(1, 2))
    )
    evaluation = {
        "tiny": {"display_name": "Tiny", "pairs": 20, "file": "tiny.bin", "obtain": "the test"},
        "ijbc": {
            "display_name": "IJB-C",
            "kind": "ijb",
            "pairs": 66,
            "file": "IJBC",
            "obtain": "the test",
        },
    }
    catalog = tmp_path / "datasets.yaml"
    catalog.write_text(
        yaml.safe_dump({"schema_version": 1, "training": {}, "evaluation": evaluation})
    )
    torch.manual_seed(0)
    kwargs = {"width": 4, "embedding_size": 8}
    checkpoint = tmp_path / "tiny.pt"
    model = build_backbone("ir18", **kwargs).eval()
    torch.save(
        {"backbone": "ir18", "backbone_kwargs": kwargs, "model": model.state_dict()}, checkpoint
    )
    out = tmp_path / "result.json"
    argv = ["eval", "--model", str(checkpoint), "--data-root", str(tmp_path / "data")]
    argv += ["--catalog", str(catalog), "--device", "cpu", "--out", str(out)]
    assert cli.main([*argv, "--targets", "tiny,ijbc"]) == 0
    result = read_result(out)
    assert list(result["targets"]) == ["tiny"]  # the .bin mean is not mixed with IJB
    ijb = result["ijb"]["ijbc"]
    assert set(ijb["verification"]["tar_at_far"]) == {
        "1e-06",
        "1e-05",
        "0.0001",
        "0.001",
        "0.01",
        "0.1",
    }
    assert set(ijb["identification"]["galleries"]) == {"G1", "G2"}
    assert ijb["flags"]["name"] == "N0D1F1"
    assert cli.main([*argv, "--targets", "ijbc"]) == 2  # IJB alone: bench ijb
