"""Verification .bin files (restricted unpickler) and image decoding against the fixtures."""

from __future__ import annotations

import codecs
import hashlib
import importlib
import io
import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
from helpers import SHARED_FIXTURES
from PIL import Image

from bench.core.errors import DatasetError, FormatError
from bench.formats import (
    check_pair_count,
    decode_image,
    encode_jpeg,
    encode_png,
    load_bin,
    load_bin_encoded,
    write_bin,
)
from bench.formats.image import _simplejpeg

FIXTURES = SHARED_FIXTURES
BIN_FILES = ("bin_py3.bin", "bin_py2.bin", "bin_ndarray.bin")


def fixture(*parts: str) -> Path:
    """A fixture path; fails loudly (never skips) when the shared fixtures are absent."""
    if not FIXTURES.is_dir():
        pytest.fail(
            f"insightface fixtures not found at {FIXTURES}: check out shared/ next to the repo"
        )
    return FIXTURES.joinpath(*parts)


@pytest.fixture(scope="module")
def bin_manifest() -> dict:
    return json.loads(fixture("bin_manifest.json").read_text())


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("name", BIN_FILES)
def test_bin_files_load_encoded_as_manifest(name, bin_manifest):
    path = fixture(name)
    assert sha256(path.read_bytes()) == bin_manifest["files"][name]["sha256"]
    images, issame = load_bin_encoded(path)
    assert issame.dtype == bool and issame.tolist() == bin_manifest["issame"]
    assert len(images) == bin_manifest["num_images"] == 2 * bin_manifest["P"]
    for image, info in zip(images, bin_manifest["images"], strict=True):
        assert isinstance(image, bytes)
        assert len(image) == info["jpeg_len"] and sha256(image) == info["jpeg_sha256"]


@pytest.mark.parametrize("name", BIN_FILES)
def test_bin_files_decode_to_mxnet_pixels(name, bin_manifest):
    images, issame = load_bin(fixture(name))
    assert len(issame) == bin_manifest["P"]
    for image, info in zip(images, bin_manifest["images"], strict=True):
        assert image.shape == tuple(info["decoded_shape"]) == (112, 112, 3)
        assert sha256(image.tobytes()) == info["decoded_rgb_sha256_mx_imdecode"]
        assert np.allclose(
            image.reshape(-1, 3).mean(axis=0), info["decoded_rgb_channel_mean"], atol=1e-5
        )


def test_grayscale_jpeg_becomes_three_equal_channels(bin_manifest):
    special = bin_manifest["special"]["index"]
    encoded, _ = load_bin_encoded(fixture("bin_py3.bin"))
    for backend in ("pil", "auto"):
        image = decode_image(encoded[special], backend=backend)
        assert image.shape == (112, 112, 3)
        assert np.array_equal(image[..., 0], image[..., 1])
        assert np.array_equal(image[..., 1], image[..., 2])


def test_simplejpeg_and_pillow_agree_on_every_fixture_jpeg():
    """Both decoders give the MXNet pixels; `auto` may use either, so both are pinned here."""
    if _simplejpeg() is None:
        pytest.fail("simplejpeg is part of the dev environment (`pip install simplejpeg`)")
    encoded, _ = load_bin_encoded(fixture("bin_py3.bin"))
    for index, buf in enumerate(encoded):
        pil = decode_image(buf, backend="pil")
        fast = decode_image(buf, backend="simplejpeg")
        assert np.array_equal(pil, fast), index


def test_python2_pickle_needs_bytes_encoding():
    """The fixture really is a py2 str pickle: plain pickle.load fails, ours reads it."""
    with open(fixture("bin_py2.bin"), "rb") as handle, pytest.raises(UnicodeDecodeError):
        pickle.load(handle)
    assert (
        load_bin_encoded(fixture("bin_py2.bin"))[0] == load_bin_encoded(fixture("bin_py3.bin"))[0]
    )


class _Exploit:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


def test_malicious_pickle_is_refused_and_never_executes(tmp_path, monkeypatch):
    path = tmp_path / "evil.bin"
    path.write_bytes(pickle.dumps(([_Exploit(), b"x"], [True]), protocol=2))
    monkeypatch.chdir(tmp_path)
    calls = []  # if the unpickler ever resolved os.system, this spy would record the call
    monkeypatch.setattr(os, "system", lambda command: calls.append(command))
    with pytest.raises(
        FormatError, match=r"evil\.bin.*refusing to load global (posix|os|nt)\.system"
    ):
        load_bin_encoded(path)
    assert calls == [] and not (tmp_path / "pwned").exists()


@pytest.mark.parametrize(
    "payload",
    [
        b"cbuiltins\neval\n(S'1+1'\ntR.",
        b"cnumpy\nload\n(S'x.npy'\ntR.",  # a numpy global outside the allowed constructors
        b"c_codecs\ndecode\n(S'x'\nS'rot13'\ntR.",  # _codecs.encode is allowed, decode is not
    ],
)
def test_other_globals_refused(tmp_path, payload):
    path = tmp_path / "other.bin"
    path.write_bytes(payload)
    with pytest.raises(FormatError, match="refusing to load global"):
        load_bin_encoded(path)


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
@pytest.mark.parametrize("variant", ["bytes", "ndarray", "np_bool_issame", "ndarray_issame"])
def test_every_pickle_protocol_reads(tmp_path, protocol, variant):
    """What CPython 3 writes for harmless .bin contents at protocols 0-5 (codecs, frombuffer...)."""
    encoded, issame = load_bin_encoded(fixture("bin_py3.bin"))
    images = encoded
    if variant == "ndarray":
        images = [np.frombuffer(image, np.uint8).reshape(-1, 1).copy() for image in encoded]
    same = issame.tolist()
    if variant == "np_bool_issame":
        same = [np.bool_(value) for value in issame]
    elif variant == "ndarray_issame":
        same = np.array(issame)
    path = tmp_path / f"{variant}_{protocol}.bin"
    path.write_bytes(pickle.dumps((images, same), protocol=protocol))
    again, same_again = load_bin_encoded(path)
    assert again == encoded and same_again.tolist() == issame.tolist()


def test_empty_bytes_at_old_protocols_load_as_empty(tmp_path):
    path = tmp_path / "empty.bin"
    path.write_bytes(pickle.dumps(([b"", b"x"], [True]), protocol=2))  # b"" = builtins.bytes()
    assert load_bin_encoded(path)[0] == [b"", b"x"]


def _numpy_global(module: str, name: str):
    """numpy's own callable (numpy 2 moved numpy.core to numpy._core)."""
    try:
        return getattr(importlib.import_module(f"numpy._core.{module}"), name)
    except ImportError:  # numpy < 2
        return getattr(importlib.import_module(f"numpy.core.{module}"), name)


class _Reduce:
    """Pickles as an arbitrary call of an allowed global, as a hostile file could."""

    def __init__(self, function, *args):
        self.function, self.args = function, args

    def __reduce__(self):
        return (self.function, self.args)


@pytest.mark.parametrize(
    "hostile",
    [
        _Reduce(codecs.encode, "touch pwned", "rot13"),
        _Reduce(codecs.encode, b"x", "latin1"),
        _Reduce(bytes, 10**12),
        _Reduce(_numpy_global("numeric", "_frombuffer"), b"\0" * 8, np.dtype("O"), (1,), "C"),
        _Reduce(_numpy_global("multiarray", "scalar"), np.dtype("O"), "touch pwned"),
        _Reduce(_numpy_global("multiarray", "scalar"), np.dtype("bool"), 1),
    ],
    ids=[
        "codecs_rot13",
        "codecs_bytes",
        "bytes_size",
        "frombuffer_object",
        "scalar_object",
        "scalar_int",
    ],
)
@pytest.mark.parametrize("protocol", [2, 5])
def test_allowed_globals_refuse_other_arguments(tmp_path, hostile, protocol):
    """The wrappers behind the newly allowed globals accept only what harmless pickles pass."""
    path = tmp_path / "hostile.bin"
    path.write_bytes(pickle.dumps(([hostile, b"x"], [True]), protocol=protocol))
    with pytest.raises(FormatError, match=r"hostile\.bin: not a readable.*refused"):
        load_bin_encoded(path)
    assert not (tmp_path / "pwned").exists()


def test_corrupt_and_malformed_bins(tmp_path):
    truncated = tmp_path / "cut.bin"
    truncated.write_bytes(fixture("bin_py3.bin").read_bytes()[:5000])
    with pytest.raises(FormatError, match=r"cut\.bin: not a readable verification pickle"):
        load_bin_encoded(truncated)
    odd = tmp_path / "odd.bin"
    odd.write_bytes(pickle.dumps(([b"a", b"b", b"c"], [True])))
    with pytest.raises(FormatError, match="3 images for 1 pairs"):
        load_bin_encoded(odd)
    wrong = tmp_path / "wrong.bin"
    wrong.write_bytes(pickle.dumps(([b"a", b"b"], ["yes"])))
    with pytest.raises(FormatError, match=r"issame\[0\]"):
        load_bin_encoded(wrong)


def test_write_bin_round_trip(tmp_path):
    encoded, issame = load_bin_encoded(fixture("bin_ndarray.bin"))
    path = tmp_path / "copy.bin"
    write_bin(path, encoded, issame.tolist())
    again, same_again = load_bin_encoded(path)
    assert again == encoded and same_again.tolist() == issame.tolist()
    with open(path, "rb") as handle:
        assert handle.read(2) == b"\x80\x04"  # protocol 4
    assert [p.name for p in tmp_path.iterdir()] == ["copy.bin"]  # no temporary left behind
    with pytest.raises(ValueError, match="2 per pair"):
        write_bin(tmp_path / "bad.bin", encoded[:3], issame[:2])


def test_check_pair_count(tmp_path):
    check_pair_count(tmp_path / "lfw.bin", 6000, 6000)
    with pytest.raises(DatasetError, match=r"lfw\.bin: holds 20 pairs, the registry expects 6000"):
        check_pair_count(tmp_path / "lfw.bin", 20, 6000)


def test_decode_errors_name_the_source():
    with pytest.raises(FormatError, match="my.rec key 5: undecodable"):
        decode_image(b"\xff\xd8\xff\xe0garbage", source="my.rec key 5")
    with pytest.raises(FormatError, match="empty image"):
        decode_image(b"", source="x")


def test_sixteen_bit_grayscale_png_keeps_its_top_8_bits():
    """Like OpenCV's IMREAD_COLOR (value >> 8), instead of Pillow's convert('RGB') clipping."""
    ramp = (np.arange(112 * 112).reshape(112, 112) * 5).astype(np.uint16)  # 0 .. 62715
    out = io.BytesIO()
    Image.fromarray(ramp).save(out, format="PNG")
    assert Image.open(io.BytesIO(out.getvalue())).mode.startswith("I")
    for backend in ("auto", "pil"):
        image = decode_image(out.getvalue(), "ramp16.png", backend=backend)
        assert image.shape == (112, 112, 3) and image.dtype == np.uint8
        assert np.array_equal(image, np.repeat((ramp >> 8).astype(np.uint8)[..., None], 3, axis=2))
    with pytest.raises(FormatError, match="cut16.png: undecodable image"):
        decode_image(out.getvalue()[: len(out.getvalue()) // 2], "cut16.png")


def test_encoders_round_trip():
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (112, 96, 3), dtype=np.uint8)
    assert np.array_equal(decode_image(encode_png(image)), image)
    smooth = np.repeat(np.linspace(0, 255, 96, dtype=np.uint8)[None, :, None], 112, axis=0)
    smooth = np.repeat(smooth, 3, axis=2)
    decoded = decode_image(encode_jpeg(smooth, quality=95))
    assert decoded.shape == smooth.shape
    assert np.abs(decoded.astype(int) - smooth).max() <= 8
    with pytest.raises(ValueError, match="uint8 HxWx3"):
        encode_png(image[..., 0])
