"""Training input (issue 18 items 7, 10): a prepared set changed after `bench prepare` (a .rec
byte, the .idx order, the manifest, a truncated .rec) is refused before training, and images that
are not 112x112 are named before the first step instead of crashing in torch.stack."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from helpers import CONFIGS, FIXTURES, make_set

from bench.cli import main as cli
from bench.formats import encode_png, write_canonical

CATALOG = FIXTURES / "datasets.yaml"
DATASET = "uiface_0.5m"


@pytest.fixture(scope="module")
def prepared_once(tmp_path_factory):
    root = tmp_path_factory.mktemp("prepared")
    source = make_set(root / "source")
    assert cli(["prepare", DATASET, "--from", str(source), "--data-root", str(root / "data"),
                "--catalog", str(CATALOG)]) == 0  # fmt: skip
    return root / "data" / "prepared" / DATASET


def _train(tmp_path, *extra) -> list[str]:
    return ["train", DATASET, "--catalog", str(CATALOG), "--recipe", str(CONFIGS / "smoke.yaml"),
            "--data-root", str(tmp_path / "data"), "--runs-root", str(tmp_path / "runs"),
            "--device", "cpu", *extra]  # fmt: skip


def _error(caplog) -> str:
    return "\n".join(r.getMessage() for r in caplog.records if r.levelname == "ERROR")


def _flip_rec_byte(prepared) -> None:
    rec = prepared / "train.rec"
    data = bytearray(rec.read_bytes())
    data[len(data) // 2] ^= 0x01  # inside a record's image bytes: sizes and index unchanged
    rec.write_bytes(bytes(data))


def _swap_idx_lines(prepared) -> None:
    idx = prepared / "train.idx"
    lines = idx.read_text(encoding="ascii").splitlines(keepends=True)
    lines[1], lines[2] = lines[2], lines[1]
    idx.write_text("".join(lines), encoding="ascii")


def _edit_manifest(prepared) -> None:
    path = prepared / "manifest.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    manifest["images"] += 1
    path.write_text(json.dumps(manifest), encoding="utf-8")


def _truncate_rec(prepared) -> None:
    rec = prepared / "train.rec"
    rec.write_bytes(rec.read_bytes()[:-200])


TAMPERING = {
    "rec byte (--verify-data)": (_flip_rec_byte, ["--verify-data"], "rec_sha256"),
    "idx order": (_swap_idx_lines, [], "idx_sha256"),
    "manifest counts": (_edit_manifest, [], "do not match identities/images"),
    "truncated rec": (_truncate_rec, [], "truncated"),
}


@pytest.mark.parametrize("case", sorted(TAMPERING))
def test_a_tampered_prepared_set_is_refused(tmp_path, caplog, prepared_once, case):
    tamper, extra, expected = TAMPERING[case]
    prepared = tmp_path / "data" / "prepared" / DATASET
    shutil.copytree(prepared_once, prepared)
    tamper(prepared)
    assert cli(_train(tmp_path, *extra)) == 2
    message = _error(caplog)
    assert expected in message and str(prepared) in message and "bench prepare --force" in message
    assert not list((tmp_path / "runs").rglob("*.pt")), "it trained anyway"


def _odd_sized_set(out, sizes: list[int]) -> None:
    rng = np.random.default_rng(0)
    items = [
        (encode_png(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)), index // 6)
        for index, size in enumerate(sizes)
    ]
    write_canonical(out, items, 4)


@pytest.mark.parametrize("odd", ["all", "one"])
def test_images_that_are_not_112_are_named_before_they_reach_torch_stack(tmp_path, caplog, odd):
    sizes = [96] * 24 if odd == "all" else [112] * 23 + [96]
    source = tmp_path / "source"
    _odd_sized_set(source, sizes)
    assert cli(["prepare", DATASET, "--from", str(source), "--data-root", str(tmp_path / "data"),
                "--catalog", str(CATALOG)]) == 0  # fmt: skip
    assert cli(_train(tmp_path)) == 2
    message = _error(caplog)
    assert "image is 96x96x3, training takes aligned 112x112x3 crops" in message
    assert not list((tmp_path / "runs").rglob("final.pt"))


def test_the_result_records_the_manifest_it_trained_on(prepared_once):
    import hashlib

    from bench.eval.run import prepared_data

    manifest = (prepared_once / "manifest.json").read_bytes()
    assert prepared_data(prepared_once)["manifest_sha256"] == hashlib.sha256(manifest).hexdigest()
