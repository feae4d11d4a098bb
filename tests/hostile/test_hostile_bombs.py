"""Resource bombs: a small file that asks for gigabytes is refused from its header or its structure,
fast and before anything large is allocated."""

from __future__ import annotations

import logging
import time

import pytest
import yaml
from hostile_inputs import (
    bin_with_images,
    eval_argv,
    jpeg_bomb,
    make_world,
    onnx_model,
    png_bomb,
    yaml_alias_bomb,
)
from PIL import ImageFile

from bench import cli
from bench.catalog import load_catalog
from bench.core.errors import CatalogError, ConfigError, FormatError
from bench.formats import decode_image, encode_png
from bench.train.recipe import load_config

FAST_S = 1.0  # generous for a loaded CI machine; a decode of 8000x8000 alone takes longer


@pytest.fixture(scope="module")
def bombs():
    return {"png": png_bomb(8000), "jpeg": jpeg_bomb(8000)}


@pytest.fixture
def no_pixel_decoding(monkeypatch):
    """Any attempt to decode pixels fails the test: the size must be refused from the header."""

    def refuse(*args, **kwargs):
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", refuse)
    simplejpeg = pytest.importorskip("simplejpeg")
    monkeypatch.setattr(simplejpeg, "decode_jpeg", refuse)


@pytest.mark.parametrize("kind", ["png", "jpeg"])
@pytest.mark.parametrize("backend", ["auto", "pil"])
def test_oversized_image_is_refused_from_its_header(bombs, no_pixel_decoding, kind, backend):
    assert len(bombs[kind]) < 300_000  # a small file ...
    started = time.perf_counter()
    with pytest.raises(FormatError, match="declares 8000x8000 pixels"):  # ... asking for 192 MB
        decode_image(bombs[kind], "bomb", backend)
    assert time.perf_counter() - started < FAST_S


def test_image_within_the_callers_limit_still_decodes():
    import numpy as np

    image = np.full((300, 200, 3), 7, np.uint8)
    assert decode_image(encode_png(image), "ok", max_side=300).shape == (300, 200, 3)
    with pytest.raises(FormatError, match="declares 200x300"):
        decode_image(encode_png(image), "small limit", max_side=256)


def test_bomb_inside_a_bin_is_one_clear_error(bombs, tmp_path, caplog):
    world = make_world(tmp_path)
    bin_with_images(world["bin"], [bombs["png"], bombs["jpeg"]])
    model = onnx_model(tmp_path / "mean.onnx")
    with caplog.at_level(logging.ERROR, logger="bench"):
        started = time.perf_counter()
        code = cli.main(eval_argv(world, model))
    assert code == 2
    message = " ".join(record.getMessage() for record in caplog.records)
    assert str(world["bin"]) in message and "declares 8000x8000" in message
    assert time.perf_counter() - started < 10 * FAST_S  # includes building the command


def registry_bomb() -> str:
    """A datasets.yaml whose eval set's display_name holds 9**6 nested copies of 'lol'."""
    entry = f"{{display_name: {yaml_alias_bomb(levels=7)}, pairs: 1, file: x.bin, obtain: x}}"
    return f"schema_version: 1\ntraining: {{}}\nevaluation:\n  lfw: {entry}\n"


def test_yaml_alias_bomb_in_the_registry_is_refused(tmp_path):
    path = tmp_path / "datasets.yaml"
    path.write_text(registry_bomb())
    started = time.perf_counter()
    with pytest.raises(CatalogError, match=r"aliases .* expand"):
        load_catalog(path)
    assert time.perf_counter() - started < FAST_S


def test_yaml_alias_bomb_in_a_recipe_is_refused(tmp_path):
    path = tmp_path / "bomb.yaml"
    path.write_text(f"base: ir50_arcface\nverify_targets: {yaml_alias_bomb(levels=7)}\n")
    started = time.perf_counter()
    with pytest.raises(ConfigError, match=r"aliases .* expand"):
        load_config(path)
    assert time.perf_counter() - started < FAST_S


def test_recursive_yaml_alias_is_refused(tmp_path):
    path = tmp_path / "datasets.yaml"
    path.write_text("schema_version: 1\ntraining: {}\nevaluation: &e {lfw: *e}\n")
    with pytest.raises(CatalogError, match="recursive"):
        load_catalog(path)


def test_registry_parses_with_the_c_loader_when_present():
    from bench.core.yaml_safe import SAFE_LOADER

    if not hasattr(yaml, "CSafeLoader"):
        pytest.skip("this PyYAML was built without libyaml")
    assert issubclass(SAFE_LOADER, yaml.CSafeLoader)
    assert "lfw" in load_catalog().evaluation  # the real registry, duplicate-key check included
