"""bench.eval.embed (model loading, flip-sum embedding, XNorm) and bench.eval.onnx_export."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from backbones import build_backbone
from bench.core.errors import EvalError, FormatError
from bench.eval.embed import (
    OnnxEmbedder,
    TorchEmbedder,
    embed_pairs,
    l2_normalize,
    load_model,
)
from bench.eval.onnx_export import compare_with_torch, export_onnx, export_torchscript
from bench.eval.preprocess import normalise

TINY_KWARGS = {"width": 4, "embedding_size": 16}


class Tiny(nn.Module):
    """Position-dependent (so a mirrored image gives a different output), cheap."""

    def __init__(self, dim: int = 8) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 4, 5, stride=4)
        self.fc = nn.Linear(4 * 27 * 27, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(torch.relu(self.conv(x)), 1))


def images(count: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (count, 112, 112, 3), dtype=np.uint8)


def reference_views(module: nn.Module, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """insightface's test(): NCHW uint8 tensors, ((x / 255) - 0.5) / 0.5, mirror = flip of W."""
    plain = torch.from_numpy(batch.transpose(0, 3, 1, 2).copy())
    mirrored = torch.from_numpy(batch[:, :, ::-1].transpose(0, 3, 1, 2).copy())
    with torch.no_grad():
        return tuple(module(((x / 255) - 0.5) / 0.5).numpy() for x in (plain, mirrored))


def checkpoint_file(tmp_path, name="ir18", kwargs=None, prefix="", extra=None):
    kwargs = dict(TINY_KWARGS if kwargs is None else kwargs)
    torch.manual_seed(1)
    module = build_backbone(name, **kwargs).eval()
    state = {prefix + key: value for key, value in module.state_dict().items()}
    path = tmp_path / "final.pt"
    torch.save({"backbone": name, "backbone_kwargs": kwargs, "model": state, **(extra or {})}, path)
    return path, module


def test_preprocess_is_insightface_arithmetic():
    batch = images(2)
    expected = ((torch.from_numpy(batch).permute(0, 3, 1, 2).float() / 255) - 0.5) / 0.5
    got = normalise(torch.from_numpy(batch))
    assert got.is_contiguous()
    assert got.dtype == torch.float32 and got.shape == (2, 3, 112, 112)
    assert torch.equal(got, expected)
    assert got.min() >= -1 and got.max() <= 1


def test_views_and_flip_sum_match_reference():
    module, batch = Tiny().eval(), images(5)
    embedder = TorchEmbedder(module, info=None)
    plain, flipped = embedder.views(batch)
    ref_plain, ref_flipped = reference_views(module, batch)
    np.testing.assert_allclose(plain, ref_plain, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(flipped, ref_flipped, rtol=1e-6, atol=1e-6)
    assert not np.allclose(plain, flipped)  # the mirror really is a different input
    np.testing.assert_allclose(embedder(batch, batch_size=2), plain + flipped, rtol=1e-6)


def test_embed_pairs_normalises_like_insightface_and_computes_xnorm():
    module, batch = Tiny().eval(), images(7, seed=1)
    normalised, xnorm = embed_pairs(TorchEmbedder(module, info=None), batch, batch_size=3)
    plain, flipped = reference_views(module, batch)
    summed = plain.astype(np.float64) + flipped.astype(np.float64)
    np.testing.assert_allclose(
        normalised, summed / np.linalg.norm(summed, axis=1, keepdims=True), rtol=1e-5, atol=1e-6
    )
    assert normalised.dtype == np.float64
    # insightface: loop over both per-view embedding lists, summing each row's norm.
    total, count = 0.0, 0
    for view in (plain.astype(np.float64), flipped.astype(np.float64)):
        for row in view:
            total += np.linalg.norm(row)
            count += 1
    assert xnorm == pytest.approx(total / count, rel=1e-5)
    flip_summed_norm = np.mean(np.linalg.norm(summed, axis=1))
    assert xnorm != pytest.approx(flip_summed_norm, rel=1e-3)


def test_batch_size_does_not_change_embeddings():
    embedder = TorchEmbedder(Tiny().eval(), info=None)
    batch = images(9, seed=2)
    small, _ = embed_pairs(embedder, batch, batch_size=2)
    large, _ = embed_pairs(embedder, batch, batch_size=64)
    np.testing.assert_allclose(small, large, rtol=1e-5, atol=1e-6)


def test_l2_normalize_leaves_zero_rows_alone():
    rows = np.array([[3.0, 4.0], [0.0, 0.0]])
    np.testing.assert_array_equal(l2_normalize(rows), [[0.6, 0.8], [0.0, 0.0]])


def test_load_checkpoint_builds_registered_backbone(tmp_path):
    path, module = checkpoint_file(tmp_path, prefix="module.")  # DDP prefix is stripped
    embedder = load_model(path)
    assert embedder.info.format == "checkpoint" and embedder.info.backbone == "ir18"
    assert len(embedder.info.sha256) == 64
    batch = images(3)
    plain, flipped = embedder.views(batch)
    ref_plain, ref_flipped = reference_views(module, batch)
    np.testing.assert_allclose(plain, ref_plain, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(flipped, ref_flipped, rtol=1e-5, atol=1e-5)


def test_checkpoint_that_needs_full_unpickling_is_refused(tmp_path):
    # numpy objects need code execution to unpickle: a model file is untrusted input.
    extra = {"rng": {"numpy": np.random.default_rng(0).bit_generator.state, "a": np.arange(3)}}
    path, _ = checkpoint_file(tmp_path, extra=extra)
    with pytest.raises(FormatError, match="could run code"):
        load_model(path)


def test_bad_checkpoints_are_format_errors(tmp_path):
    with pytest.raises(FormatError, match="not found"):
        load_model(tmp_path / "missing.pt")
    torch.save({"state_dict": {}}, tmp_path / "plain.pt")
    with pytest.raises(FormatError, match="'backbone'"):
        load_model(tmp_path / "plain.pt")
    path, _ = checkpoint_file(tmp_path)
    state = torch.load(path, weights_only=True)
    state["backbone_kwargs"] = {"width": 8, "embedding_size": 16}
    torch.save(state, tmp_path / "mismatch.pt")
    with pytest.raises(FormatError, match="do not fit backbone 'ir18'"):
        load_model(tmp_path / "mismatch.pt")
    (tmp_path / "garbage.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(FormatError, match="not a readable torch checkpoint"):
        load_model(tmp_path / "garbage.pt")


def test_torchscript_model(tmp_path):
    module = Tiny().eval()
    path = tmp_path / "model.ts"
    torch.jit.trace(module, torch.zeros(1, 3, 112, 112)).save(str(path))
    embedder = load_model(path, trust=True)  # TorchScript runs code: loaded only when trusted
    assert embedder.info.format == "torchscript" and embedder.info.backbone is None
    batch = images(2)
    np.testing.assert_allclose(embedder(batch), sum(reference_views(module, batch)), rtol=1e-5)


def test_onnx_model_dynamic_and_fixed_batch(tmp_path):
    module = Tiny().eval()
    dynamic = tmp_path / "dynamic.onnx"
    export_torchscript(module, dynamic)
    fixed = tmp_path / "fixed.onnx"
    with torch.no_grad():
        torch.onnx.export(
            module,
            (torch.zeros(4, 3, 112, 112),),
            str(fixed),
            dynamo=False,
            input_names=["input"],
            output_names=["embedding"],
        )
    batch = images(6)
    expected = sum(reference_views(module, batch))
    for path, fixed_batch in ((dynamic, None), (fixed, 4)):
        embedder = load_model(path)
        assert isinstance(embedder, OnnxEmbedder) and embedder.fixed_batch == fixed_batch
        assert embedder.info.format == "onnx"
        np.testing.assert_allclose(embedder(batch, batch_size=5), expected, rtol=1e-4, atol=1e-4)


def test_onnx_cuda_without_provider_is_a_clear_error(tmp_path):
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this onnxruntime has CUDA; the error path cannot be reached")
    path = tmp_path / "m.onnx"
    export_torchscript(Tiny().eval(), path)
    with pytest.raises(EvalError, match="no CUDA provider"):
        load_model(path, device="cuda")


def test_export_onnx_checks_and_compares(tmp_path):
    path, module = checkpoint_file(tmp_path)
    report = export_onnx(path, tmp_path / "out" / "model.onnx")
    assert report.path.is_file() and report.backbone == "ir18"
    assert report.max_abs_diff < 1e-4 and report.min_cosine > 1 - 1e-5
    embedder = load_model(report.path)
    batch = images(2)
    np.testing.assert_allclose(
        embedder(batch), sum(reference_views(module, batch)), rtol=1e-4, atol=1e-4
    )


def test_compare_with_torch_fails_on_a_different_graph(tmp_path):
    path = tmp_path / "tiny.onnx"
    export_torchscript(Tiny().eval(), path)
    other = Tiny().eval()
    with torch.no_grad():
        other.fc.bias.add_(0.5)  # a model that is not the exported one
    with pytest.raises(EvalError, match="disagrees with torch"):
        compare_with_torch(other, path)


@pytest.mark.slow
def test_dynamo_exporter_fallback(tmp_path, monkeypatch):
    import bench.eval.onnx_export as onnx_export

    def unavailable(*args, **kwargs):
        raise RuntimeError("legacy exporter removed")

    monkeypatch.setattr(onnx_export, "export_torchscript", unavailable)
    path, _ = checkpoint_file(tmp_path)
    report = export_onnx(path, tmp_path / "model.onnx")
    assert report.exporter == "dynamo" and report.max_abs_diff < 1e-4


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_embedder_matches_cpu():
    module, batch = Tiny().eval(), images(4)
    on_cpu, _ = embed_pairs(TorchEmbedder(module, info=None, device="cpu"), batch)
    on_gpu, _ = embed_pairs(TorchEmbedder(Tiny().eval(), info=None, device="cuda"), batch)
    np.testing.assert_allclose(on_gpu, on_cpu, atol=1e-3)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA error path")
def test_cuda_without_a_gpu_is_a_clear_error():
    with pytest.raises(EvalError, match="no CUDA device"):
        TorchEmbedder(Tiny(), info=None, device="cuda")
