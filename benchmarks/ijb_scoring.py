"""Time the IJB scoring (pooling, 1:1, 1:N) of an IJB-C-sized case on random features.

IJB-C's shape: 469,375 images in 23,124 templates; 1:1 = 15,658,489 pairs between the 3,531
gallery templates (G1 1,772 + G2 1,759) and 19,593 probe templates, 19,557 of them genuine; 1:N =
19,593 mixed probes against each gallery. Features are random (subject centre + noise), so the
numbers are meaningless; only the time and memory are measured. No model, no images:

    .venv/bin/python benchmarks/ijb_scoring.py            # D = 512, needs ~5 GB of memory
    .venv/bin/python benchmarks/ijb_scoring.py --dim 128  # a smaller machine
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
IMAGES, TEMPLATES, GALLERY = (469_375, 23_124, (1_772, 1_759))
PROBES, PAIRS = 19_593, 15_658_489


def build_case(dim: int, seed: int):
    """An IJBPackage-shaped case and its (N, 2D) float32 features."""
    from bench.eval.ijb.package import TARGETS, IJBPackage, Subjects

    rng = np.random.default_rng(seed)
    gallery_total = sum(GALLERY)
    # Templates 1..G are the gallery (one per subject), the rest probes of those subjects.
    subject = np.r_[
        np.arange(gallery_total), rng.integers(0, gallery_total, TEMPLATES - gallery_total)
    ]
    templates = np.sort(rng.integers(1, TEMPLATES + 1, IMAGES))
    templates[:TEMPLATES] = np.arange(1, TEMPLATES + 1)  # every template has an image
    medias = templates * 16 + rng.integers(0, 6, IMAGES)  # ~6 media per template, some videos
    centres = rng.standard_normal((gallery_total, dim), dtype=np.float32)
    features = np.empty((IMAGES, 2 * dim), dtype=np.float32)
    for start in range(0, IMAGES, 50_000):
        own = centres[subject[templates[start : start + 50_000] - 1]]
        for half in (slice(0, dim), slice(dim, 2 * dim)):
            features[start : start + 50_000, half] = own + rng.standard_normal(
                own.shape, dtype=np.float32
            )
    gallery_ids = np.arange(1, gallery_total + 1)
    probe_ids = np.arange(gallery_total + 1, gallery_total + 1 + PROBES)
    pairs = _pairs(rng, gallery_ids, probe_ids, subject)
    split = GALLERY[0]
    galleries = {
        name: Subjects(Path(name), ids, subject[ids - 1])
        for name, ids in (("G1", gallery_ids[:split]), ("G2", gallery_ids[split:]))
    }
    package = IJBPackage(
        root=Path("(random)"),
        target=TARGETS["ijbc"],
        image_dir=Path("."),
        image_names=[""] * IMAGES,
        templates=templates,
        medias=medias,
        landmarks=np.zeros((0, 5, 2), np.float32),
        detector_scores=rng.uniform(0.5, 1.0, IMAGES).astype(np.float32),
        pairs_path=Path("pairs"),
        pairs=pairs,
        galleries=galleries,
        probes=Subjects(Path("probes"), probe_ids, subject[probe_ids - 1]),
    )
    return package, features


def _pairs(rng, gallery_ids, probe_ids, subject) -> np.ndarray:
    """Every probe with its mate, plus random gallery x probe pairs up to PAIRS."""
    mates = np.stack([subject[probe_ids - 1] + 1, probe_ids], axis=1)
    keep = (PAIRS - len(mates)) / (len(gallery_ids) * len(probe_ids))
    chunks = [mates]
    for start in range(0, len(gallery_ids), 256):
        block = gallery_ids[start : start + 256]
        chosen = np.argwhere(rng.random((len(block), len(probe_ids))) < keep)
        chunks.append(np.stack([block[chosen[:, 0]], probe_ids[chosen[:, 1]]], axis=1))
    pairs = np.concatenate(chunks)
    labels = subject[pairs[:, 0] - 1] == subject[pairs[:, 1] - 1]
    return np.concatenate([pairs, labels[:, np.newaxis].astype(np.int64)], axis=1)


def _clock() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def _since(clock: tuple[float, float]) -> tuple[float, float]:
    return time.perf_counter() - clock[0], time.process_time() - clock[1]


def run() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--dim", type=int, default=512, help="embedding size D (features are N x 2D)"
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from bench.eval.ijb.run import identify, verify_pairs
    from bench.eval.ijb.templates import ScoringFlags, image_features, pool_templates

    started = time.perf_counter()
    package, features = build_case(args.dim, args.seed)
    print(
        f"case: {IMAGES:,} images, {TEMPLATES:,} templates, {len(package.pairs):,} pairs "
        f"({int(package.pairs[:, 2].sum()):,} genuine), D={args.dim}; built in "
        f"{time.perf_counter() - started:.1f}s"
    )
    timings = {}
    clock = _clock()
    image = image_features(features, package.detector_scores, ScoringFlags())
    pooled = pool_templates(image, package.templates, package.medias)
    del image
    timings["image features + template pooling"] = _since(clock)
    clock = _clock()
    verification = verify_pairs(package, pooled)
    timings["1:1 scores + ROC + TAR@FAR"] = _since(clock)
    clock = _clock()
    identification = identify(package, pooled)
    timings["1:N (both galleries)"] = _since(clock)
    print(f"{'stage':<36} {'wall':>7}   {'CPU (all threads)':>17}")
    for name, (wall, cpu) in timings.items():
        print(f"{name:<36} {wall:7.1f} s {cpu:7.1f} s")
    wall, cpu = (sum(t[i] for t in timings.values()) for i in (0, 1))
    print(f"{'total scoring':<36} {wall:7.1f} s {cpu:7.1f} s")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"peak resident memory {peak:.1f} GiB (case included)")
    print(
        "TAR@FAR=1e-4",
        verification["tar_at_far"]["0.0001"],
        "rank-1",
        identification["mean"]["top1"],
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(run())
