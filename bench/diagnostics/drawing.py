"""Every picture the diagnostics draw: the overview histograms of one diagnostics result, and
the contact sheets (captioned rows of thumbnails: colliding identities, leakage matches; the
plain grid of the demo preview). One row-drawing helper serves every captioned sheet."""

from __future__ import annotations

from collections.abc import Callable
from io import BytesIO
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from bench.core import io
from bench.core.errors import EvalError


def _histogram(axis, entry: dict, label: str, colour: str) -> None:
    if not entry.get("count"):
        return
    edges = np.asarray(entry["histogram"]["edges"])
    counts = np.asarray(entry["histogram"]["counts"], np.float64)
    axis.stairs(counts / max(counts.sum(), 1.0), edges, label=label, color=colour, fill=False)


def _panels(result: dict) -> list[tuple[str, list[tuple[dict, str]], list[tuple[float, str]]]]:
    """(title, [(summary, label)], [(vertical line, label)]) of each overview panel."""
    intra, inter = result["intra_class"], result["inter_class"]
    leaks = {**result.get("leakage", {}), **result.get("against", {})}
    return [
        (
            "intra-class cosine",
            [
                (intra["centre_similarity"], "image to own centre"),
                (intra["pair_similarity"], "same-identity pairs"),
            ],
            [],
        ),
        (
            "inter-class: nearest other centre",
            [
                (inter["nearest_other_centre"], "nearest other centre"),
                (inter["split_half_centre_similarity"], "split-half same identity"),
            ],
            [(inter["collision_threshold"], "collision threshold")],
        ),
        (
            "leakage: best training-centre match",
            [(leak["best_match"], name) for name, leak in leaks.items()]
            + [  # the null (clean-set) distribution the threshold is a quantile of
                (leak["calibration"]["null_similarity"], f"{name} null")
                for name, leak in leaks.items()
                if "null_similarity" in leak.get("calibration", {})
            ],
            [(leak["threshold"], f"{name} threshold") for name, leak in leaks.items()],
        ),
        ("images per identity", [(result["images_per_identity"], "identities")], []),
        ("brightness (mean luma)", [(result["image_stats"]["brightness"], "images")], []),
        (
            "sharpness (log10 1+Laplacian var.)",
            [(result["image_stats"]["sharpness"], "images")],
            [],
        ),
    ]


def draw_overview(result: dict, path: Path) -> Path:
    """Six histogram panels of one diagnostics result, as a PNG (matplotlib, no pyplot state)."""
    from matplotlib.figure import Figure

    colours = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown"]
    figure = Figure(figsize=(13, 7), layout="constrained")
    axes = figure.subplots(2, 3).ravel()
    for axis, (title, series, lines) in zip(axes, _panels(result), strict=True):
        for index, (entry, label) in enumerate(series):
            _histogram(axis, entry, label, colours[index % len(colours)])
        for index, (value, label) in enumerate(lines):
            axis.axvline(value, color=colours[index % len(colours)], linestyle="--", label=label)
        axis.set_title(title, fontsize=10)
        axis.set_ylabel("share")
        if series or lines:
            axis.legend(fontsize=7)
    figure.suptitle(f"{result['dataset']}: dataset diagnostics")
    buffer = BytesIO()  # drawn into memory, then written atomically (a kill keeps the old one)
    figure.savefig(buffer, format="png", dpi=90)
    return io.atomic_write_bytes(path, buffer.getvalue())


def draw_rows(
    rows: list[tuple[str, list[np.ndarray], list[np.ndarray]]], path: Path, tile: int = 112
) -> Path:
    """PNG of captioned rows: left images, a wider gap, right images (contact sheets)."""
    gap, caption = 8, 14
    left = max(len(row[1]) for row in rows)
    right = max(len(row[2]) for row in rows)
    width = tile * (left + right) + gap * (left + right + 3)  # a wider gap between the groups
    height = len(rows) * (tile + caption + gap) + gap
    sheet = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for index, (text, left_images, right_images) in enumerate(rows):
        top = gap + index * (tile + caption + gap)
        draw.text((gap, top), text, fill=(0, 0, 0))
        for column, image in enumerate(left_images):
            sheet.paste(Image.fromarray(image), (gap + column * (tile + gap), top + caption))
        start = gap + left * (tile + gap) + 3 * gap
        for column, image in enumerate(right_images):
            sheet.paste(Image.fromarray(image), (start + column * (tile + gap), top + caption))
    buffer = BytesIO()
    sheet.save(buffer, format="PNG")
    return io.atomic_write_bytes(path, buffer.getvalue())


def leakage_sheet(
    worst: list[dict],
    query_image: Callable[[int], np.ndarray],
    identity_images: Callable[[int], list[np.ndarray]],
    path: Path,
    query_name: str,
    thumbnails: int = 4,
) -> Path:
    """PNG: one row per worst match, the query image, a gap, then thumbnails of the matched
    training identity, captioned with the similarity."""
    if not worst:
        raise EvalError(f"{path}: no matches to draw")
    rows = [
        (
            f"{query_name} image {match['query']}  vs  training identity {match['identity']}"
            f"  cos {match['similarity']:.3f}",
            [query_image(match["query"])],
            identity_images(match["identity"])[:thumbnails],
        )
        for match in worst
    ]
    return draw_rows(rows, path)


def collision_sheet(
    identity_images: Callable[[int], list[np.ndarray]], inter: dict, path: Path, rows: int
) -> Path:
    """Thumbnails of the strongest colliding identity pairs, side by side (a contact sheet)."""
    rows = [
        (
            f"identity {pair['a']}  vs  identity {pair['b']}  centre cos {pair['similarity']:.3f}",
            identity_images(pair["a"]),
            identity_images(pair["b"]),
        )
        for pair in inter["strongest_pairs"][:rows]
    ]
    return draw_rows(rows, path)


def grid_sheet(rows: list[list[np.ndarray]], gap: int = 2) -> np.ndarray:
    """A grid of equally sized images (rows x columns) on a white background."""
    height, width = rows[0][0].shape[:2]
    columns = max(len(row) for row in rows)
    sheet = np.full(
        (len(rows) * (height + gap) + gap, columns * (width + gap) + gap, 3), 255, np.uint8
    )
    for r, row in enumerate(rows):
        for c, tile in enumerate(row):
            top, left = gap + r * (height + gap), gap + c * (width + gap)
            sheet[top : top + height, left : left + width] = tile
    return sheet
