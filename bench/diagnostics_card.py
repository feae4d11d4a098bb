"""Dataset cards for the report: one per `diagnostics/<dataset>.json`, with its histograms.

`dataset_cards(diag_dir, out_dir)` redraws every card's overview figure from the JSON (so a card
is always rebuilt from data, like the leaderboard) and copies the collision and leakage contact
sheets, into `<out_dir>/cards/`; the markdown links those files relative to `out_dir`, the HTML
carries no images (the report embeds the returned `images` itself). `headline(result)` is the
table of key figures shared by the card and `bench diagnose`'s printout."""

from __future__ import annotations

import html
import json
import logging
import shutil
from pathlib import Path

import numpy as np

from bench.errors import ResultError

log = logging.getLogger(__name__)
CARDS_DIR = "cards"


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
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=90)
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


def _table(result: dict) -> list[tuple[str, str]]:
    try:
        return headline(result)
    except (KeyError, TypeError) as error:
        raise ResultError(
            f"diagnostics of {result.get('dataset')!r}: missing field {error}; rerun "
            "`bench diagnose`"
        ) from error


def _markdown(name: str, rows: list[tuple[str, str]], links: list[str], model: str) -> str:
    lines = [
        f"### {name}",
        "",
        f"Model used for the embeddings: `{model}`",
        "",
        "| measure | value |",
        "|---|---|",
    ]
    lines += [f"| {key} | {value} |" for key, value in rows]
    lines.append("")
    lines += [f"![{name} diagnostics]({link})" for link in links]
    return "\n".join(lines)


def _html(name: str, rows: list[tuple[str, str]], model: str) -> str:
    cells = "".join(
        f"<tr><td>{html.escape(key)}</td><td>{html.escape(value)}</td></tr>" for key, value in rows
    )
    return (
        f"<h3>{html.escape(name)}</h3><p>Model used for the embeddings: "
        f"<code>{html.escape(model)}</code></p><table><thead><tr><th>measure</th><th>value</th>"
        f"</tr></thead><tbody>{cells}</tbody></table>"
    )


def _card(path: Path, out_dir: Path) -> dict:
    result = read_diagnostics(path)
    name = str(result.get("dataset") or path.stem)
    rows = _table(result)
    cards_dir = out_dir / CARDS_DIR
    images = [draw_overview(result, cards_dir / f"{name}-overview.png")]
    sections = [
        result.get("inter_class", {}),
        *result.get("leakage", {}).values(),
        *result.get("against", {}).values(),
    ]
    for section in sections:
        if "contact_sheet" in section:
            source = path.parent / section["contact_sheet"]
            if not source.is_file():
                raise ResultError(f"{path}: contact sheet {source} is missing; rerun diagnose")
            images.append(Path(shutil.copyfile(source, cards_dir / source.name)))
    model = (result.get("model") or {}).get("path") or "callable"
    links = [f"{CARDS_DIR}/{image.name}" for image in images]
    return {
        "name": name,
        "markdown": _markdown(name, rows, links, model),
        "html": _html(name, rows, model),
        "images": [str(image) for image in images],
    }


def dataset_cards(diag_dir: Path, out_dir: Path) -> list[dict]:
    """One card per diagnostics JSON in diag_dir (sorted by name): name, markdown, html, images."""
    diag_dir, out_dir = Path(diag_dir), Path(out_dir)
    if not diag_dir.is_dir():
        raise ResultError(f"diagnostics directory {diag_dir} not found; run `bench diagnose`")
    cards = [_card(path, out_dir) for path in sorted(diag_dir.glob("*.json"))]
    log.info("%d dataset card(s) from %s", len(cards), diag_dir)
    return cards
