"""`bench speed` on CPU with the tiniest settings, plus the GPU-decode logic testable on CPU."""

from __future__ import annotations

import json
import math
import types
from dataclasses import replace

import numpy as np
import pytest
import torch

from bench.cli import main as cli_main
from bench.core.errors import ConfigError
from bench.core.io import chunked
from bench.data import gpu_decode
from bench.formats import RecordIODataset, decode_image, encode_jpeg, encode_png
from bench.speed import run as speed
from bench.speed.run import measure_parity, write_synthetic_recordio
from bench.speed.settings import SpeedSettings

TINY = SpeedSettings(
    device="cpu", backbone="ir18", width=8, embedding_size=32, num_classes=50, batch_size=4,
    steps=2, warmup=0, workers=1, records=16, eval_sets=("lfw", "cfp_fp"), eval_pairs=10,
    eval_batch=20, parity_steps=2, threads=1,
)  # fmt: skip
TINY_ARGS = [
    "--device", "cpu", "--backbone", "ir18", "--width", "8", "--embedding-size", "32",
    "--num-classes", "50", "--batch-size", "4", "--steps", "2", "--warmup", "0",
    "--workers", "1", "--records", "16", "--eval-sets", "lfw,cfp_fp", "--eval-pairs", "10",
    "--eval-batch", "20", "--parity-steps", "2", "--threads", "1",
]  # fmt: skip
SECTIONS = ("settings", "environment", "train_step", "data_pipeline", "end_to_end")


@pytest.fixture(autouse=True)
def _restore_threads():
    """Tiny tensors: one thread avoids contention; `--threads` is global, so restore it."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _positive(value: float) -> bool:
    return isinstance(value, float) and math.isfinite(value) and value > 0


def test_bench_speed_cpu_writes_every_section(tmp_path, capsys) -> None:
    out = tmp_path / "speed.json"
    assert cli_main(["speed", *TINY_ARGS, "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    for section in (*SECTIONS, "peak_memory", "evaluation", "parity"):
        assert section in report, section
    assert report["kind"] == "facebench-speed" and report["schema_version"] == 1
    for section in ("train_step", "end_to_end"):
        assert _positive(report[section]["images_per_s"])
        assert report[section]["steps"] == 2
    data = report["data_pipeline"]
    for key in ("records_per_s", "decoded_images_per_s_per_worker", "loader_images_per_s"):
        assert _positive(data[key]), key
    assert data["workers"] == 1 and data["gpu_decode_images_per_s"] is None
    assert _positive(report["peak_memory"]["end_to_end"]["mb"])
    sets = report["evaluation"]["sets"]
    assert list(sets) == ["lfw", "cfp_fp"]
    assert all(entry["pairs"] == 10 and _positive(entry["seconds"]) for entry in sets.values())
    assert report["evaluation"]["total_s"] == pytest.approx(
        sum(e["seconds"] for e in sets.values())
    )
    assert report["parity"]["ok"] and len(report["parity"]["plain"]) == 2
    table = capsys.readouterr().out
    assert "end-to-end training" in table and "eval lfw (10 pairs)" in table


def test_parity_detects_bf16_differences_within_tolerance() -> None:
    result = measure_parity(replace(TINY, amp="bf16", fused_sgd=True))
    plain, fast = np.array(result["plain"]), np.array(result["optimised"])
    assert np.all(np.isfinite(fast)) and not np.array_equal(plain, fast)
    assert result["max_relative_gap"] == pytest.approx(np.max(np.abs(plain - fast) / np.abs(plain)))
    assert result["ok"] == (result["max_relative_gap"] <= result["tolerance"])


@pytest.mark.parametrize(
    "change, match",
    [
        ({"amp": "fp8"}, "--amp"),
        ({"records": 2}, "--records"),
        ({"eval_pairs": 5}, "--eval-pairs"),
        ({"channels_last": True}, "cuda only"),
    ],
)
def test_settings_validation(change: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        replace(TINY, **change).validate()


def test_synthetic_recordio_is_canonical_and_decodable(tmp_path) -> None:
    write_synthetic_recordio(tmp_path, replace(TINY, records=12, num_classes=5))
    records = RecordIODataset(tmp_path)
    assert len(records) == 12
    labels = records.labels
    assert labels.tolist() == sorted(labels.tolist()) and set(labels.tolist()) == set(range(5))
    image, _label = records[3]
    assert image.shape == (112, 112, 3) and image.dtype == np.uint8


def test_end_to_end_gpu_decoder_path_feeds_encoded_batches(tmp_path, monkeypatch) -> None:
    """With --decoder gpu the loader ships JPEG bytes and the decoder runs before the step."""
    calls = []

    def fake_gpu_decode(buffers, device):
        calls.append(len(buffers))
        # bench.data.loader ships the stored bytes (or 1-D uint8 tensors): never decoded pixels.
        assert all(isinstance(b, (bytes, torch.Tensor)) and len(b) < 112 * 112 for b in buffers)
        return torch.from_numpy(gpu_decode.decode_batch_cpu(buffers))

    monkeypatch.setattr(speed, "select_decoder", lambda requested, device: "gpu")
    monkeypatch.setattr(speed, "decode_batch_gpu", fake_gpu_decode)
    settings = replace(TINY, workers=0)
    write_synthetic_recordio(tmp_path, settings)
    result = speed.measure_end_to_end(tmp_path, settings)
    assert result["decoder"] == "gpu" and _positive(result["images_per_s"])
    assert calls == [settings.batch_size] * (settings.warmup + settings.steps)


# --- gpu_decode ---------------------------------------------------------------------------------
def _images(count: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (112, 112, 3), dtype=np.uint8) for _ in range(count)]


def test_select_decoder_rules(monkeypatch) -> None:
    with pytest.raises(ConfigError, match="not cuda"):
        gpu_decode.select_decoder("gpu", "cpu")
    with pytest.raises(ConfigError, match="unknown"):
        gpu_decode.select_decoder("nvjpeg", "cpu")
    monkeypatch.setattr(gpu_decode, "_simplejpeg_available", lambda: True)
    assert gpu_decode.select_decoder("auto", "cpu") == "simplejpeg"
    monkeypatch.setattr(gpu_decode, "_simplejpeg_available", lambda: False)
    assert gpu_decode.select_decoder("auto", "cpu") == "pil"
    with pytest.raises(ConfigError, match="simplejpeg is not installed"):
        gpu_decode.select_decoder("simplejpeg", "cpu")
    monkeypatch.setattr(gpu_decode, "gpu_decode_problem", lambda device: None)
    assert gpu_decode.select_decoder("auto", "cuda") == "gpu"


def test_gpu_decode_problem_names_the_reason(monkeypatch) -> None:
    assert "not cuda" in gpu_decode.gpu_decode_problem("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(gpu_decode, "torchvision_io", lambda: None)
    assert "torchvision" in gpu_decode.gpu_decode_problem("cuda")


def test_chunked_and_split_jpeg() -> None:
    assert [len(b) for b in chunked(range(10), 4)] == [4, 4, 2]
    with pytest.raises(ValueError):
        list(chunked([1], 0))
    image = _images(1)[0]
    buffers = [encode_png(image), encode_jpeg(image), encode_png(image), encode_jpeg(image)]
    assert gpu_decode.split_jpeg(buffers) == ([1, 3], [0, 2])
    as_tensors = [torch.frombuffer(bytearray(b), dtype=torch.uint8) for b in buffers]
    assert gpu_decode.split_jpeg(as_tensors) == ([1, 3], [0, 2])


def _fake_torchvision_io(calls: list) -> types.SimpleNamespace:
    """Stands in for torchvision.io: decode_jpeg(list, mode, device) -> list of CHW tensors."""

    def decode_jpeg(data, mode, device):
        calls.append((len(data), mode, device))
        arrays = [decode_image(bytes(t.numpy()), backend="pil") for t in data]
        return [torch.from_numpy(a.copy()).permute(2, 0, 1).to(device) for a in arrays]

    return types.SimpleNamespace(
        decode_jpeg=decode_jpeg, ImageReadMode=types.SimpleNamespace(RGB="RGB")
    )


def test_decode_batch_gpu_keeps_order_and_sends_only_jpegs(monkeypatch) -> None:
    calls: list = []
    monkeypatch.setattr(gpu_decode, "torchvision_io", lambda: _fake_torchvision_io(calls))
    images = _images(4)
    buffers = [
        encode_jpeg(images[0]),
        encode_png(images[1]),
        encode_jpeg(images[2]),
        encode_png(images[3]),
    ]
    decoded = gpu_decode.decode_batch_gpu(buffers, device="cpu")
    assert calls == [(2, "RGB", "cpu")]
    expected = gpu_decode.decode_batch_cpu(buffers, backend="pil")
    assert decoded.shape == (4, 112, 112, 3) and decoded.dtype == torch.uint8
    np.testing.assert_array_equal(decoded.numpy(), expected)
    np.testing.assert_array_equal(decoded[1].numpy(), images[1])  # PNG: lossless


def test_decode_batch_gpu_without_torchvision_is_a_clear_error(monkeypatch) -> None:
    monkeypatch.setattr(gpu_decode, "torchvision_io", lambda: None)
    with pytest.raises(ConfigError, match="torchvision"):
        gpu_decode.decode_batch_gpu([encode_jpeg(_images(1)[0])])


def test_batch_decoder_cpu_matches_decode_image() -> None:
    buffers = [encode_jpeg(image) for image in _images(3)]
    decoded = gpu_decode.BatchDecoder("pil", "cpu")(buffers)
    for index, buf in enumerate(buffers):
        np.testing.assert_array_equal(decoded[index].numpy(), decode_image(buf, backend="pil"))
