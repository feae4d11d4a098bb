"""Backbones: every registered one (timm-style parametrisation), and arcface_torch compatibility."""

from __future__ import annotations

import pytest
import torch

from backbones import BACKBONES, backbone_names, build_backbone
from bench.core.errors import CatalogError

NARROW = {"width": 8, "embedding_size": 16}


@pytest.fixture(autouse=True)
def _seed_and_one_thread():
    """Seeded weights; one thread, as narrow nets gain nothing from more on a shared CI box."""
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("name", backbone_names())
def test_forward_shape_finite_and_backward(name: str) -> None:
    model = build_backbone(name, **NARROW).train()
    images = torch.rand(2, 3, 112, 112) * 2 - 1
    embeddings = model(images)
    assert embeddings.shape == (2, NARROW["embedding_size"])
    assert embeddings.dtype == torch.float32
    assert torch.isfinite(embeddings).all()
    embeddings.square().sum().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert grads and all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


@pytest.mark.parametrize("name", backbone_names())
def test_channels_last_matches_contiguous(name: str) -> None:
    model = build_backbone(name, **NARROW).eval()
    images = torch.rand(2, 3, 112, 112) * 2 - 1
    with torch.no_grad():
        reference = model(images)
        model = model.to(memory_format=torch.channels_last)
        fast = model(images.contiguous(memory_format=torch.channels_last))
    # Deep narrow nets with the N(0, 0.1) init reach large activations: compare relatively.
    torch.testing.assert_close(fast, reference, rtol=2e-3, atol=1e-3)


@pytest.mark.parametrize("name", backbone_names())
def test_bf16_autocast_gives_float32_finite_embedding(name: str) -> None:
    model = build_backbone(name, **NARROW).eval()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        embeddings = model(torch.rand(2, 3, 112, 112) * 2 - 1)
    assert embeddings.dtype == torch.float32 and torch.isfinite(embeddings).all()


def test_unknown_backbone_suggests_close_names() -> None:
    with pytest.raises(CatalogError, match="ir50"):
        build_backbone("ir05")


def test_registry_has_the_families() -> None:
    assert {"ir18", "ir34", "ir50", "ir100", "irse50", "mobilefacenet"} <= set(BACKBONES.names())


# --- arcface_torch compatibility -------------------------------------------------------------
# Names and shapes of insightface recognition/arcface_torch/backbones/iresnet.py, written out
# here from reading that file (not from our module): stem conv1/bn1/prelu (64 ch); four stages
# of IBasicBlock (planes 64, 128, 256, 512), each block bn1(in), conv1(in->p 3x3), bn2(p),
# prelu(p), conv2(p->p 3x3, stride), bn3(p); every stage's first block has downsample.0
# (1x1 conv in->p) and downsample.1 (BN p); head bn2(512), fc(512*7*7 -> 512), features BN1d.
ARCFACE_DEPTHS = {"ir18": (2, 2, 2, 2), "ir34": (3, 4, 6, 3), "ir50": (3, 4, 14, 3)}
ARCFACE_DEPTHS["ir100"] = (3, 13, 30, 3)


def _bn(prefix: str, channels: int) -> dict[str, tuple[int, ...]]:
    shapes = {f"{prefix}.{k}": (channels,) for k in ("weight", "bias", "running_mean")}
    shapes[f"{prefix}.running_var"] = (channels,)
    shapes[f"{prefix}.num_batches_tracked"] = ()
    return shapes


def arcface_torch_shapes(depths: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
    """The state-dict names and shapes arcface_torch's iresnet has for these stage depths."""
    shapes: dict[str, tuple[int, ...]] = {"conv1.weight": (64, 3, 3, 3), "prelu.weight": (64,)}
    shapes.update(_bn("bn1", 64))
    inplanes = 64
    for stage, (planes, depth) in enumerate(zip((64, 128, 256, 512), depths, strict=True), start=1):
        for block in range(depth):
            p = f"layer{stage}.{block}"
            shapes.update(_bn(f"{p}.bn1", inplanes))
            shapes[f"{p}.conv1.weight"] = (planes, inplanes, 3, 3)
            shapes.update(_bn(f"{p}.bn2", planes))
            shapes[f"{p}.prelu.weight"] = (planes,)
            shapes[f"{p}.conv2.weight"] = (planes, planes, 3, 3)
            shapes.update(_bn(f"{p}.bn3", planes))
            if block == 0:
                shapes[f"{p}.downsample.0.weight"] = (planes, inplanes, 1, 1)
                shapes.update(_bn(f"{p}.downsample.1", planes))
            inplanes = planes
    shapes.update(_bn("bn2", 512))
    shapes["fc.weight"] = (512, 512 * 7 * 7)
    shapes["fc.bias"] = (512,)
    shapes.update(_bn("features", 512))
    return shapes


@pytest.mark.parametrize("name", list(ARCFACE_DEPTHS))
def test_state_dict_names_and_shapes_match_arcface_torch(name: str) -> None:
    model = build_backbone(name)
    ours = {key: tuple(value.shape) for key, value in model.state_dict().items()}
    assert ours == arcface_torch_shapes(ARCFACE_DEPTHS[name])
    assert model.features.weight.requires_grad is False  # frozen, as in arcface_torch


def test_arcface_torch_shaped_weights_load_strictly_and_are_used() -> None:
    shapes = arcface_torch_shapes(ARCFACE_DEPTHS["ir18"])
    generator = torch.Generator().manual_seed(1)
    state = {
        key: (
            torch.tensor(7)
            if key.endswith("num_batches_tracked")
            else torch.rand(shape, generator=generator) * 0.1 + 0.5
        )
        for key, shape in shapes.items()
    }
    model = build_backbone("ir18")
    model.load_state_dict(state, strict=True)
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, state[key], rtol=0, atol=0)


def test_full_width_ir50_embeds_512() -> None:
    model = build_backbone("ir50").eval()
    with torch.no_grad():
        embeddings = model(torch.zeros(1, 3, 112, 112))
    assert embeddings.shape == (1, 512) and torch.isfinite(embeddings).all()


def test_irse50_adds_squeeze_excitation_only() -> None:
    plain = set(build_backbone("ir50", **NARROW).state_dict())
    with_se = set(build_backbone("irse50", **NARROW).state_dict())
    assert plain < with_se
    assert all(".se." in key for key in with_se - plain)
