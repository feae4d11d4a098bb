"""Demo registry entries -> data on disk: training image folders and verification .bin files.

A demo training set becomes `raw/<name>/<identity:05d>/<n:03d>.jpg` (then `bench prepare` makes
the canonical RecordIO, exactly as for real data); a demo evaluation set becomes `eval/<file>`, a
real insightface-style .bin. Everything is a pure function of the entry's seed: every image has its
own SeedSequence, so the bytes do not depend on the number of worker processes or their order.

Images are stored as JPEG (quality 95), like the real training and verification sets: Pillow's
bundled libjpeg gives identical bytes for identical pixels, and a JPEG is ~10x faster to write
and ~4x smaller than a PNG of these noisy images (the demo must be made in seconds).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import logging
import math
import multiprocessing
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from bench.catalog import Catalog, EvalSet, TrainingSet
from bench.core import io, paths
from bench.core.errors import CatalogError, DatasetError
from bench.demo.params import (
    TAG_PAIRS,
    check_knobs,
    face_params,
    identity_vector,
    image_rng,
    lookalike_vector,
    sample_nuisance,
)
from bench.demo.render import render_face
from bench.formats import decode_image, encode_jpeg, write_bin

log = logging.getLogger(__name__)

GENERATOR_VERSION = 1  # bump when a change to the renderer changes the pixels of a seed
JPEG_QUALITY = 95
PROTOCOLS = ("random", "pose", "lookalike")
SIDECAR = ".demo.json"  # hidden: the image-folder reader ignores names starting with "."

# One image to render: (identity, look-alike variant 0/1, image slot, yaw override or None).
Slot = tuple[int, int, int, float | None]


def describe(entry: TrainingSet | EvalSet) -> dict:
    """What the generated data is a function of (written beside it, compared on reuse)."""
    spec = entry.demo
    if spec is None:
        raise DatasetError(f"{entry.name!r} is not a demo entry (it has no `demo:` block)")
    record = {"generator": GENERATOR_VERSION, "name": entry.name, **dataclasses.asdict(spec)}
    if isinstance(entry, EvalSet):
        record["pairs"] = entry.pairs
    return record


# ---------------------------------------------------------------------------------------------
# Training sets


def _render_identity(job: tuple) -> list[bytes]:
    """Encoded images of one training identity (runs in a worker process)."""
    seed, identity, count, diversity, similarity = job
    face = face_params(identity_vector(seed, identity, similarity))
    images = []
    for image in range(count):
        rng = image_rng(seed, identity, image)
        pixels = render_face(face, sample_nuisance(rng, diversity), rng)
        images.append(encode_jpeg(pixels, quality=JPEG_QUALITY))
    return images


def make_training_set(
    entry: TrainingSet, raw_dir: str | os.PathLike, workers: int | None = None, force: bool = False
) -> Path:
    """Render demo training set `entry` into raw_dir/<identity:05d>/<n:03d>.jpg; returns raw_dir."""
    raw_dir = Path(raw_dir)
    record = describe(entry)
    spec = entry.demo
    knobs = check_knobs(spec.params, f"datasets.yaml: training.{entry.name}.demo.params")
    if spec.identities < 2 or spec.images_per_identity < 1:
        raise DatasetError(
            f"datasets.yaml: training.{entry.name}.demo: need >= 2 identities, >= 1 image each"
        )
    jobs = [(spec.seed, identity, spec.images_per_identity, knobs["diversity"],
             knobs["similarity"]) for identity in range(spec.identities)]  # fmt: skip

    def write(staging: Path) -> None:
        for identity, images in enumerate(_run(_render_identity, jobs, workers)):
            folder = staging / f"{identity:05d}"
            folder.mkdir()
            for index, data in enumerate(images):
                (folder / f"{index:03d}.jpg").write_bytes(data)
        (staging / SIDECAR).write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")

    _atomic_dir(raw_dir, write, force)
    log.info("%s: %d identities x %d images -> %s", entry.name, spec.identities,
             spec.images_per_identity, raw_dir)  # fmt: skip
    return raw_dir


# ---------------------------------------------------------------------------------------------
# Evaluation sets


def plan_pairs(entry: EvalSet) -> tuple[list[tuple[Slot, Slot]], list[bool]]:
    """The pairs of demo evaluation set `entry`: two image slots per pair, and issame."""
    spec = entry.demo
    where = f"datasets.yaml: evaluation.{entry.name}.demo"
    if spec.protocol not in PROTOCOLS:
        raise DatasetError(f"{where}.protocol: {spec.protocol!r} unknown; use one of {PROTOCOLS}")
    if spec.identities < 2 or entry.pairs < 2:
        raise DatasetError(f"{where}: need >= 2 identities and {entry.name}.pairs >= 2")
    knobs = check_knobs(spec.params, f"{where}.params")
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([spec.seed, TAG_PAIRS])))
    genuine = entry.pairs // 2
    issame = [True] * genuine + [False] * (entry.pairs - genuine)
    issame = [issame[i] for i in rng.permutation(entry.pairs)]
    pairs = []
    for index, same in enumerate(issame):
        first = int(rng.integers(spec.identities))
        second, variant = first, 0
        if not same and spec.protocol == "lookalike":
            variant = 1  # the impostor is the look-alike of the first identity
        elif not same:
            second = (first + 1 + int(rng.integers(spec.identities - 1))) % spec.identities
        yaws: tuple[float | None, float | None] = (None, None)
        if spec.protocol == "pose":  # a near-frontal image against a strongly turned one
            sign = 1.0 if rng.random() < 0.5 else -1.0
            turned = sign * knobs["pose_yaw"] * (0.85 + 0.3 * rng.random())
            yaws = (0.1 * knobs["pose_yaw"] * (2.0 * rng.random() - 1.0), turned)
        pairs.append(((first, 0, 2 * index, yaws[0]), (second, variant, 2 * index + 1, yaws[1])))
    return pairs, issame


def _render_slots(job: tuple) -> list[bytes]:
    """Encoded images of a run of evaluation slots (runs in a worker process)."""
    seed, identities, knobs, slots = job
    images = []
    for identity, variant, slot, yaw in slots:
        z = identity_vector(seed, identity, knobs["similarity"])
        if variant:
            z = lookalike_vector(z, seed, identity, knobs["lookalike_distance"])
        rng = image_rng(seed, identity + variant * identities, slot)
        nuisance = sample_nuisance(rng, knobs["diversity"])
        if yaw is not None:
            nuisance = dataclasses.replace(nuisance, yaw=math.radians(yaw))
        images.append(encode_jpeg(render_face(face_params(z), nuisance, rng), JPEG_QUALITY))
    return images


def make_eval_set(entry: EvalSet, eval_path: str | os.PathLike, workers: int | None = None) -> Path:
    """Render demo evaluation set `entry` into the verification .bin `eval_path` (atomically)."""
    eval_path = Path(eval_path)
    record = describe(entry)
    spec = entry.demo
    knobs = check_knobs(spec.params, f"datasets.yaml: evaluation.{entry.name}.demo.params")
    pairs, issame = plan_pairs(entry)
    slots = [slot for pair in pairs for slot in pair]
    chunk = 64
    jobs = [(spec.seed, spec.identities, knobs, slots[start : start + chunk])
            for start in range(0, len(slots), chunk)]  # fmt: skip
    encoded = [image for images in _run(_render_slots, jobs, workers) for image in images]
    eval_path.parent.mkdir(parents=True, exist_ok=True)
    write_bin(eval_path, encoded, issame)
    sidecar_path(eval_path).write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    log.info("%s: %d pairs (%s) -> %s", entry.name, entry.pairs, spec.protocol, eval_path)
    return eval_path


def sidecar_path(eval_path: Path) -> Path:
    """Where the description of a generated .bin is kept: a hidden file beside it."""
    return eval_path.with_name(f".{eval_path.name}{SIDECAR}")


# ---------------------------------------------------------------------------------------------
# Registry-level helpers


def demo_names(catalog: Catalog) -> list[str]:
    """Every demo entry of the registry: training sets first, then evaluation sets."""
    training = [name for name, entry in catalog.training.items() if entry.demo is not None]
    evaluation = [name for name, entry in catalog.evaluation.items() if entry.demo is not None]
    return training + evaluation


def lookup(name: str, catalog: Catalog) -> TrainingSet | EvalSet:
    """The demo entry called `name` (training or evaluation); errors name the registry file."""
    entry = catalog.training.get(name) or catalog.evaluation.get(name)
    if entry is None:
        catalog.training_set(name)  # raises CatalogError with close matches
    if entry.demo is None:
        raise DatasetError(
            f"{catalog.path}: {name!r} is not a demo entry; demo entries: "
            f"{', '.join(demo_names(catalog))}"
        )
    return entry


def check_disjoint_seeds(catalog: Catalog) -> None:
    """CatalogError unless every demo entry has its own seed (so no two share identities)."""
    seen: dict[int, str] = {}
    for name in demo_names(catalog):
        entry = lookup(name, catalog)
        if entry.demo.seed in seen:
            raise CatalogError(
                f"{catalog.path}: {name}.demo.seed {entry.demo.seed} is also the seed of "
                f"{seen[entry.demo.seed]}; give every demo entry its own seed so that evaluation "
                "identities never appear in training"
            )
        seen[entry.demo.seed] = name


def demo_path(entry: TrainingSet | EvalSet, root: Path) -> Path:
    """Where demo entry `entry` lives under data root `root`."""
    if isinstance(entry, TrainingSet):
        return paths.raw_dir(root, entry.name)
    return paths.eval_dir(root) / entry.file


def ensure_demo_data(
    name: str, root: str | os.PathLike, catalog: Catalog, workers: int | None = None,
    force: bool = False,
) -> Path:  # fmt: skip
    """Generate demo entry `name` under `root` unless it is already there; returns its path."""
    check_disjoint_seeds(catalog)
    entry = lookup(name, catalog)
    path = demo_path(entry, Path(root))
    sidecar = path / SIDECAR if isinstance(entry, TrainingSet) else sidecar_path(path)
    if path.exists() and not force:
        found = json.loads(sidecar.read_text()) if sidecar.exists() else None
        if found == describe(entry):
            log.info("%s: already generated at %s", name, path)
            return path
        again = f"bench synth {name} --force"
        if isinstance(entry, TrainingSet):
            again += f", then bench prepare {name} --force"
        raise DatasetError(
            f"{path}: exists but was not generated from the current registry entry {name!r} "
            f"(compare {sidecar}); regenerate it: {again}"
        )
    if isinstance(entry, TrainingSet):
        return make_training_set(entry, path, workers=workers, force=force)
    return make_eval_set(entry, path, workers=workers)


def preview_rows(entry: TrainingSet | EvalSet, rows: int, columns: int) -> list[list[np.ndarray]]:
    """Tiles of a contact sheet, rendered exactly as in the data set (before JPEG).

    Training set: one row per identity, its first `columns` images. Evaluation set: its first
    pairs side by side, each tile topped by a green (same) or red (different) bar."""
    knobs = check_knobs(entry.demo.params, f"datasets.yaml: {entry.name}.demo.params")
    seed = entry.demo.seed
    if isinstance(entry, TrainingSet):
        face_of = [face_params(identity_vector(seed, i, knobs["similarity"])) for i in range(rows)]
        return [[render_face(face_of[i], sample_nuisance(rng, knobs["diversity"]), rng)
                 for rng in (image_rng(seed, i, j) for j in range(columns))]
                for i in range(rows)]  # fmt: skip
    pairs, issame = plan_pairs(entry)
    per_row = max(columns // 2, 1)
    chosen = pairs[: rows * per_row]
    tiles = _render_slots((seed, entry.demo.identities, knobs, [s for p in chosen for s in p]))
    sheet = []
    for index, data in enumerate(tiles):
        tile = decode_image(data, f"{entry.name} slot {index}").copy()
        tile[:4] = (40, 170, 60) if issame[index // 2] else (200, 40, 40)
        if index % (2 * per_row) == 0:
            sheet.append([])
        sheet[-1].append(tile)
    return sheet


# ---------------------------------------------------------------------------------------------
# Plumbing


def _run(function: Callable, jobs: list, workers: int | None) -> list:
    """function(job) for every job, in order; in worker processes when that is worth it."""
    workers = io.default_workers() if workers is None else workers
    if workers <= 1 or len(jobs) < 2:
        return [function(job) for job in jobs]
    # spawn, not fork: the caller may already hold threads (torch), which fork does not copy.
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(
        min(workers, len(jobs)), mp_context=context
    ) as pool:
        return list(pool.map(function, jobs, chunksize=max(1, len(jobs) // (8 * workers))))


def _atomic_dir(target: Path, write: Callable[[Path], None], force: bool) -> None:
    """Build a directory with write(staging) and put it in place of `target` (bench.core.io)."""
    if target.exists() and not force:
        raise DatasetError(
            f"{target} already exists; pass force (bench synth --force) to replace it"
        )
    io.atomic_directory(target, write, staging_kind="generating")
