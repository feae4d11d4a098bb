"""`make report`: result JSONs -> reports/leaderboard.md, leaderboard.html, plots, CSV, LaTeX.

The report is always rebuilt from the JSONs. A JSON that does not validate is named in a visible
warning at the top of both pages and left out; it never stops the build."""

from __future__ import annotations

import base64
import datetime as dt
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import jinja2

from bench.catalog import STANDARD_TARGETS, Catalog
from bench.core.errors import BenchError, ResultError
from bench.core.io import atomic_write_text, ensure_directory
from bench.report import audit, exports, ijb, plots, stats
from bench.report.tables import Row, Score, Suite, build_suites, load_results

log = logging.getLogger(__name__)
TEMPLATES = Path(__file__).resolve().parent / "templates"
CONTENT_HASH_SHOWN = 12  # characters of a training set's content_sha256 in provenance


@dataclass
class BuildSummary:
    """What a report build wrote and what it warned about."""

    out_dir: Path
    written: list[Path] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # results left out, tests not possible
    notes: list[str] = field(default_factory=list)  # missing logs, curves, cards
    results_used: int = 0


def build_reports(
    results_dir: Path,
    out_dir: Path,
    catalog: Catalog,
    diagnostics_dir: Path | None = None,
) -> BuildSummary:
    """Rebuild every report file under out_dir from results_dir/**/*.json."""
    results_dir, out_dir = Path(results_dir), Path(out_dir)
    if not results_dir.is_dir():
        raise ResultError(f"results directory {results_dir} not found; run `make bench` first")
    ensure_directory(out_dir)  # an unwritable --out fails before any work
    summary = BuildSummary(out_dir=out_dir)
    runs, summary.warnings = load_results(results_dir)
    summary.results_used = len(runs)
    suites = build_suites(runs, catalog, summary.warnings)
    figures = _draw(suites, catalog, out_dir, [results_dir.parent, results_dir], summary)
    cards = _cards(diagnostics_dir, out_dir, summary)
    summary.written += [
        exports.write_csv(suites, out_dir / "leaderboard.csv"),
        exports.write_latex(suites, catalog, out_dir / "leaderboard.tex"),
    ]
    context = _context(suites, catalog, figures, cards, summary, results_dir)
    ijb_rows = ijb.collect(results_dir, runs)
    ijb_plot = ijb.roc_plot(ijb_rows, out_dir / "plots")
    if ijb_plot is not None:
        summary.written += [ijb_plot.png, ijb_plot.svg]
    context["ijb"] = ijb.view(ijb_rows, _figure_view(ijb_plot, out_dir) if ijb_plot else None)
    for template, name, escape in (
        ("leaderboard.md.j2", "leaderboard.md", False),
        ("leaderboard.html.j2", "leaderboard.html", True),
    ):
        path = atomic_write_text(out_dir / name, render(template, context, autoescape=escape))
        summary.written.append(path)
    for warning in summary.warnings:
        log.warning("%s", warning)
    return summary


def render(template: str, context: dict, autoescape: bool) -> str:
    """Render a template of bench/report/templates with strict undefined variables."""
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=autoescape,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["md"] = lambda text: str(text).replace("|", "\\|").replace("\n", " ")
    return environment.get_template(template).render(**context)


def _draw(
    suites: list[Suite],
    catalog: Catalog,
    out_dir: Path,
    log_dirs: list[Path],
    summary: BuildSummary,
) -> dict:
    """All figures: per suite accuracy bars + ROC, per row training curves."""
    plot_dir = out_dir / "plots"
    figures: dict = {}
    for index, suite in enumerate(suites, start=1):
        bars = plots.accuracy_bars(suite, catalog, plot_dir, f"suite{index}-accuracy")
        roc, notes = plots.roc_curves(suite, catalog, plot_dir, f"suite{index}-roc")
        summary.notes += notes
        figures[(index, "suite")] = [bars, roc]
        for row in suite.rows:
            # The suite is part of the name: a row of two suites has other seeds or sets in each.
            stem = f"suite{index}-train-{row.dataset}-{row.recipe}-{row.recipe_hash}"
            stem = stem.replace("/", "_")
            curve, notes = plots.training_curves(row, plot_dir, stem, log_dirs)
            summary.notes += notes
            figures[(index, row.dataset, row.recipe_hash)] = curve
    drawn = {path for figure in _all_plots(figures) for path in (figure.png, figure.svg)}
    summary.written += sorted(drawn)
    # Figures of rows that no longer exist would linger and mislead: plots/ is ours to clean.
    for stale in sorted((set(plot_dir.glob("*.png")) | set(plot_dir.glob("*.svg"))) - drawn):
        log.info("removing stale figure %s", stale)
        stale.unlink()
    return figures


def _all_plots(figures: dict) -> list[plots.Plot]:
    found = []
    for value in figures.values():
        found += value if isinstance(value, list) else [value] if value is not None else []
    return found


def _cards(diagnostics_dir: Path | None, out_dir: Path, summary: BuildSummary) -> list[dict]:
    """Dataset cards from `bench diagnose` output, or a visible note saying why there are none."""
    if diagnostics_dir is None or not Path(diagnostics_dir).is_dir():
        return []
    try:
        from bench.report.cards import dataset_cards
    except ImportError as error:
        summary.notes.append(
            f"{diagnostics_dir}: dataset cards not included: bench.report.cards is not "
            f"available ({error})"
        )
        return []
    try:
        cards = dataset_cards(Path(diagnostics_dir), out_dir)
    except BenchError as error:
        summary.warnings.append(f"{diagnostics_dir}: dataset cards not included: {error}")
        return []
    for card in cards:
        card["data_uris"] = [_data_uri(Path(image)) for image in card.get("images", [])]
    return cards


def _data_uri(path: Path) -> str:
    kind = {".png": "image/png", ".svg": "image/svg+xml", ".jpg": "image/jpeg"}.get(path.suffix, "")
    return f"data:{kind};base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _built() -> str:
    """Build time (SOURCE_DATE_EPOCH, when set, makes it reproducible)."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    now = (
        dt.datetime.fromtimestamp(int(epoch), dt.timezone.utc)
        if epoch
        else dt.datetime.now(dt.timezone.utc)
    )
    return now.isoformat(timespec="seconds")


def _context(
    suites: list[Suite],
    catalog: Catalog,
    figures: dict,
    cards: list[dict],
    summary: BuildSummary,
    results_dir: Path,
) -> dict:
    audit_entries = audit.audit_published(catalog)
    flagged = {(entry.dataset, entry.source) for entry in audit_entries if entry.flagged}
    reproduction = _reproduction_view(catalog, suites, flagged)
    counter = iter(range(1, 1_000_000))
    suite_views = []
    for index, suite in enumerate(suites, start=1):
        rows = [
            _row_view(
                row,
                suite,
                flagged,
                next(counter),
                figures.get((index, row.dataset, row.recipe_hash)),
                summary.out_dir,
            )
            for row in suite.rows
        ]
        suite_views.append(
            {
                "id": f"suite{index}",
                "title": " · ".join(_display(catalog, t) for t in suite.targets),
                "targets": [_display(catalog, t) for t in suite.targets],
                "rows": rows,
                "figures": [_figure_view(f, summary.out_dir) for f in figures[(index, "suite")]],
            }
        )
    return {
        "built": _built(),
        "results_dir": _shown(results_dir),
        "results_used": summary.results_used,
        "warnings": summary.warnings,
        "notes": summary.notes,
        "suites": suite_views,
        "reproduction": reproduction,
        "reproduction_caveats": audit.caveat_views(reproduction, catalog),
        "audit": [_audit_view(entry) for entry in audit_entries],
        "audit_tolerance": audit.AUDIT_TOLERANCE,
        "cards": cards,
    }


def _shown(path: Path) -> str:
    """A path relative to the working directory where it lies below it (shorter, portable)."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return path.as_posix()


def _display(catalog: Catalog, target: str) -> str:
    entry = catalog.evaluation.get(target)
    return entry.display_name if entry else target


def _score(score: Score) -> str:
    return f"{score.value:.2f}" if not score.kind else f"{score.value:.2f} ± {score.spread:.2f}"


def _cell(score: Score) -> dict:
    spread = f"± {score.spread:.2f}" if score.kind else ""
    return {
        "text": _score(score),
        "value": f"{score.value:.2f}",
        "spread": spread,
        "sort": score.value,
    }


def _count(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def _row_view(
    row: Row, suite: Suite, flagged: set, number: int, curve: plots.Plot | None, root: Path
) -> dict:
    test = row.versus_next
    if test is not None:
        relation = "≈" if test.tied else ">"
        versus = f"{relation} ({_p_value(test)}, {test.method})"
    else:
        versus = "n/a" if row.versus_next_note else ""
    return {
        "name": row.display_name,
        "dataset": row.dataset,
        "recipe": row.recipe_label,
        "identities": _count(row.identities),
        "identities_sort": row.identities or 0,
        "images": _count(row.images),
        "images_sort": row.images or 0,
        "seeds": ", ".join(str(seed) for seed in row.seeds),
        "cells": [_cell(row.scores[t]) for t in suite.targets],
        "mean": _cell(row.mean),
        "versus": versus,
        "versus_short": versus.split(",")[0] + (")" if test is not None else ""),
        "versus_method": "" if test is None else test.method,
        "versus_note": row.versus_next_note,
        "tied": bool(test and test.tied),
        "footnote": f"p{number}",
        "provenance_text": _provenance_text(row),
        "published": [_published_view(item, row, suite, flagged) for item in row.published],
        "curve": None if curve is None else _figure_view(curve, root),
    }


def _provenance_text(row: Row) -> str:
    """One footnote: every seed's file, recipe hash, git sha, date and hardware."""
    text = f"Provenance of {row.dataset} / {row.recipe_label}: "
    text += "; ".join(_provenance(run) for run in row.runs)
    return text + (f" ({row.versus_next_note})" if row.versus_next_note else "")


def _p_value(test) -> str:
    # A bootstrap p-value of 0 only means "below the resampling resolution".
    if test.method == "bootstrap" and test.p_value < 1.0 / stats.BOOTSTRAP_RESAMPLES:
        return f"p<{1.0 / stats.BOOTSTRAP_RESAMPLES:.1g}"
    return f"p={test.p_value:.2g}"


def _provenance(run) -> str:
    origin = run.data.get("provenance") or {}
    # The prepared set's content hash (results written before it existed have none): rows on
    # different bytes of "the same" set show different hashes.
    content = (origin.get("data") or {}).get("content_sha256")
    data = f"data {str(content)[:CONTENT_HASH_SHOWN]}, " if content else ""
    return (
        f"{run.name}: seed {run.seed}, recipe {run.recipe} (hash {run.recipe_hash or '-'}), "
        f"{data}git {str(origin.get('git_sha', '-'))[:10]}, {origin.get('created', '-')}, "
        f"{origin.get('hardware', '-')}"
    )


def _published_view(item, row: Row, suite: Suite, flagged: set) -> dict:
    cells = []
    for target in suite.targets:
        value = item.scores.get(target)
        gap = "" if value is None else f"{row.scores[target].value - value:+.2f}"
        text = "-" if value is None else f"{value:.2f} ({gap})"
        cells.append({"text": text, "value": "-" if value is None else f"{value:.2f}", "gap": gap})
    # Both means over the source's own sets; "-" where our row lacks one of them.
    theirs, ours = audit.own_mean(item), audit.ours_over(item, row)
    gap = "-" if ours is None or theirs is None else f"{ours - theirs:+.2f}"
    mean = "-" if theirs is None else f"{theirs:.2f} ({gap})"
    return {
        "source": item.source,
        "recipe": item.recipe,
        "cells": cells,
        "mean": mean,
        "flagged": (row.dataset, item.source) in flagged,
    }


def _figure_view(figure: plots.Plot, root: Path) -> dict:
    return {
        "title": figure.title,
        "png": figure.png.relative_to(root).as_posix(),
        "svg": figure.svg.relative_to(root).as_posix(),
        "data_uri": _data_uri(figure.png),
    }


def _reproduction_view(catalog: Catalog, suites: list[Suite], flagged: set) -> list[dict]:
    views = []
    for entry in audit.reproduction_table(catalog, suites):
        ours = entry.ours
        cells = []
        for target in STANDARD_TARGETS:
            theirs = entry.published.get(target)
            text = "-" if theirs is None else f"{theirs:.2f}"
            if ours is not None:
                mine = ours.scores.get(target)
                text += " / -" if mine is None else f" / {audit.seed_score(mine)}"
                text += f" ({entry.gaps[target]:+.2f})" if target in entry.gaps else ""
            cells.append(text)
        views.append(
            {
                "name": entry.display_name,
                "dataset": entry.dataset,
                "source": entry.source,
                "source_id": entry.source_id,
                "recipe": entry.recipe,
                "cells": cells,
                "published_mean": _published_mean_text(entry),
                "ours": _ours_text(entry),
                "gap": "-" if entry.mean_gap is None else f"{entry.mean_gap:+.2f}",
                "verdict": audit.verdict_text(entry, catalog),
                "caveats": list(entry.caveats),
                "flagged": (entry.dataset, entry.source) in flagged,
            }
        )
    return views


def _published_mean_text(entry: audit.ReproductionEntry) -> str:
    if entry.published_mean is None:
        return "-"
    text = f"{entry.published_mean:.2f}"
    # A mean over other sets than the five columns must say so, or it reads as a five-set mean.
    if entry.published and set(entry.published) != set(STANDARD_TARGETS):
        text += f" ({len(entry.published)} sets)"
    return text


def _ours_text(entry: audit.ReproductionEntry) -> str:
    if entry.ours is None:
        return "not measured"
    mean = "-" if entry.ours_mean is None else f"{entry.ours_mean:.2f}"
    return f"{mean} ({entry.ours.recipe_label})"


def _audit_view(entry: audit.AuditEntry) -> dict:
    return {
        "dataset": entry.dataset,
        "source": entry.source,
        "printed": "-" if entry.printed_mean is None else f"{entry.printed_mean:.2f}",
        "recomputed": "-" if entry.recomputed_mean is None else f"{entry.recomputed_mean:.3f}",
        "status": entry.status,
        "detail": entry.detail,
        "flagged": entry.flagged,
    }
