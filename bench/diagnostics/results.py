"""The diagnostics JSON (`<out>/<dataset>.json`, kind facebench-diagnostics, schema 1): write it,
read it back checked, and its headline figures (for `bench diagnose` and the dataset cards)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from bench.core import io
from bench.core.errors import ResultError
from bench.diagnostics.drawing import draw_overview

log = logging.getLogger(__name__)


def write_diagnostics(result: dict, out_dir: Path) -> Path:
    """Draw the overview plot beside the JSON, then write the JSON atomically."""
    out_dir.mkdir(parents=True, exist_ok=True)
    name = result["dataset"]
    result["plots"] = {"overview": draw_overview(result, out_dir / f"{name}-overview.png").name}
    path = out_dir / f"{name}.json"
    io.atomic_write_text(path, json.dumps(result, indent=1))
    log.info("diagnostics: %s", path)
    return path


def read_diagnostics(path: Path) -> dict:
    """A diagnostics JSON, checked for kind and schema version."""
    try:
        result = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise ResultError(f"{path}: not a readable diagnostics JSON ({error})") from error
    if not isinstance(result, dict) or result.get("kind") != "facebench-diagnostics":
        raise ResultError(
            f"{path}: not a facebench diagnostics file (kind != facebench-diagnostics)"
        )
    if result.get("schema_version") != 1:
        raise ResultError(
            f"{path}: diagnostics schema_version {result.get('schema_version')!r} unsupported "
            "(expected 1); rerun `bench diagnose`"
        )
    return result


def headline(result: dict) -> list[tuple[str, str]]:
    """The few numbers worth printing (and putting at the top of a card)."""
    intra = result["intra_class"]["centre_similarity"]
    inter = result["inter_class"]
    rows = [
        (
            "identities / images sampled",
            f"{result['sample']['identities']} / {result['sample']['images']}",
        ),
        ("intra-class cos to centre (mean, q05)", f"{intra['mean']:.3f}, {intra['q05']:.3f}"),
        (
            "nearest other centre (mean, q95)",
            f"{inter['nearest_other_centre']['mean']:.3f}, {inter['nearest_other_centre']['q95']:.3f}",
        ),
        (
            "identity pairs above collision threshold",
            f"{inter['collision_pairs']} (threshold {inter['collision_threshold']:.3f})",
        ),
        (
            "near-duplicate images (embedding / exact)",
            f"{result['near_duplicates']['embedding']['rate']:.2%} / "
            f"{result['near_duplicates']['exact']['rate']:.2%}",
        ),
    ]
    for target, leak in {**result["leakage"], **result["against"]}.items():
        rows.append(
            (
                f"leakage vs {target}: images flagged",
                f"{leak['flagged']} / {leak['queries']}, {leak['expected_if_clean']:.1f} expected "
                f"if clean (threshold {leak['threshold']:.3f}, p {leak['p_value']:.2g})",
            )
        )
    return rows
