"""IJB evaluation: package + per-image features + flags -> the result JSON (`bench ijb`)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from bench.core.errors import DatasetError, EvalError
from bench.eval.ijb.identify import identification_metrics, mean_over_galleries, search_scores
from bench.eval.ijb.package import IJBPackage, Subjects
from bench.eval.ijb.templates import ScoringFlags, Templates, image_features, pool_templates
from bench.eval.ijb.verify import (
    pair_scores,
    roc_curve,
    tar_at_far,
    template_index,
    verification_metrics,
)

log = logging.getLogger(__name__)
KIND = "facebench-ijb-result"
SCHEMA_VERSION = 1
ROC_FARS = tuple(float(f) for f in np.logspace(-6, 0, 61))  # the curve kept for plots


@dataclass(frozen=True)
class Scored:
    """The 1:1 and 1:N metrics of one package scored with one set of flags."""

    verification: dict
    identification: dict
    seconds: float


def score(package: IJBPackage, features: np.ndarray, flags: ScoringFlags) -> Scored:
    """Pool templates once, then 1:1 verification and 1:N identification on both galleries."""
    started = time.perf_counter()
    pooled = pool_templates(
        image_features(features, package.detector_scores, flags), package.templates, package.medias
    )
    verification = verify_pairs(package, pooled)
    identification = identify(package, pooled)
    seconds = time.perf_counter() - started
    log.info("%s scored (%s) in %.1fs", package.target.name, flags.name, seconds)
    return Scored(verification, identification, seconds)


def verify_pairs(package: IJBPackage, pooled: Templates) -> dict:
    """TAR@FAR, AUC and a sampled ROC over the package's 1:1 pairs."""
    where = str(package.pairs_path)
    first = template_index(pooled.ids, package.pairs[:, 0], where)
    second = template_index(pooled.ids, package.pairs[:, 1], where)
    scores = pair_scores(pooled.features, first, second)
    labels = package.pairs[:, 2]
    curve = roc_curve(labels, scores)
    metrics = verification_metrics(curve)
    metrics["roc"] = {"far": list(ROC_FARS), "tar": [tar_at_far(curve, f) for f in ROC_FARS]}
    metrics["pairs"] = int(len(labels))
    metrics["genuine_pairs"] = int(labels.sum())
    return metrics


def _subject_templates(subjects: Subjects, pooled: Templates) -> tuple[np.ndarray, np.ndarray]:
    """Template feature rows and subject ids of a 1:N file: one per distinct template, sorted,
    with the subject of its first row (the reference's np.unique(..., return_index=True))."""
    rows = template_index(pooled.ids, subjects.templates, str(subjects.path), first_line=2)
    _ids, first_rows = np.unique(subjects.templates, return_index=True)
    return rows[first_rows], subjects.subjects[first_rows]


def identify(package: IJBPackage, pooled: Templates) -> dict:
    """Per gallery: top-1/5/10 and TPIR@FPIR; then the reference's mean over the galleries."""
    probe_rows, probe_subjects = _subject_templates(package.probes, pooled)
    probe_features = pooled.features[probe_rows]
    galleries = {}
    for name, gallery in package.galleries.items():
        rows, subjects = _subject_templates(gallery, pooled)
        try:
            search = search_scores(probe_features, probe_subjects, pooled.features[rows], subjects)
            galleries[name] = identification_metrics(search)
        except EvalError as error:
            raise EvalError(f"{gallery.path} with {package.probes.path}: {error}") from None
    mean = mean_over_galleries(galleries, len(probe_subjects))
    for metrics in galleries.values():
        metrics.pop("hits")
    return {"galleries": galleries, "mean": mean, "probes": int(len(probe_subjects))}


def build_result(
    package: IJBPackage,
    flags: ScoringFlags,
    scored: Scored,
    features: dict,
    model: dict | None,
    provenance: dict,
) -> dict:
    """The `bench ijb` result JSON (fractions, flags spelled out)."""
    return {
        "kind": KIND,
        "schema_version": SCHEMA_VERSION,
        "target": package.target.name,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "flags": {**flags.to_dict(), "name": flags.name},
        "model": model,
        "features": features,
        "package": {
            "root": str(package.root),
            "images": len(package.image_names),
            "templates": int(len(np.unique(package.templates))),
        },
        "verification": scored.verification,
        "identification": scored.identification,
        "scoring_seconds": round(scored.seconds, 3),
        **provenance,
    }


def split_targets(names: list[str], catalog) -> tuple[list[str], list[str]]:
    """`bench eval --targets` names -> (.bin sets, IJB packages), each in the given order."""
    ijb = [name for name in names if catalog.eval_set(name).kind == "ijb"]
    return [name for name in names if name not in ijb], ijb


def read_packages(names: list[str], eval_root: Path, catalog) -> dict[str, IJBPackage]:
    """The IJB packages of `names` from the eval folder (read before any model is loaded)."""
    from bench.eval.ijb.package import read_package

    return {name: _read_registered(name, eval_root, catalog, read_package) for name in names}


def _read_registered(name: str, eval_root: Path, catalog, read_package) -> IJBPackage:
    try:
        return read_package(eval_root, name)
    except DatasetError as error:
        raise DatasetError(f"{error}. How to get it: {catalog.eval_set(name).obtain}") from None


def evaluate_packages(
    embedder, packages: dict[str, IJBPackage], cache_dir: Path, batch_size: int, workers: int
) -> dict[str, dict]:
    """Per IJB target, the default-flag scoring of `embedder` (features cached in cache_dir)."""
    from bench.eval.ijb.features import cached_features

    entries = {}
    flags = ScoringFlags()
    for name, package in packages.items():
        features, path = cached_features(package, embedder, cache_dir, batch_size, workers)
        scored = score(package, features, flags)
        entries[name] = {
            "flags": {**flags.to_dict(), "name": flags.name},
            "verification": scored.verification,
            "identification": scored.identification,
            "features": {"from": "model", "cache": str(path)},
        }
    return entries
