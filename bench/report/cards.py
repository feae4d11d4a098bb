"""Dataset cards for the report: one per `diagnostics/<dataset>.json`, with its histograms.

`dataset_cards(diag_dir, out_dir)` redraws every card's overview figure from the JSON (so a card
is always rebuilt from data, like the leaderboard) and copies the collision and leakage contact
sheets, into `<out_dir>/cards/`; the markdown links those files relative to `out_dir`, the HTML
carries no images (the report embeds the returned `images` itself)."""

from __future__ import annotations

import html
import logging
from pathlib import Path

from bench.core.errors import ResultError
from bench.core.io import atomic_write_bytes
from bench.diagnostics.drawing import draw_overview
from bench.diagnostics.results import headline, read_diagnostics

log = logging.getLogger(__name__)
CARDS_DIR = "cards"


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
            images.append(atomic_write_bytes(cards_dir / source.name, source.read_bytes()))
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
