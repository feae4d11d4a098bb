"""Published numbers: reproduction (theirs vs ours) and an audit of the printed averages.

Audit rule: a printed average is flagged when it differs from the mean of its five printed cells
by more than AUDIT_TOLERANCE = 0.005 points, half a unit of the last printed digit (sources print
two decimals, so a correctly rounded average lies within 0.005 of the exact one). The cells are
rounded too, which can move a five-cell mean by up to 0.005 more, so a borderline flag is possible
in principle: the detail line prints both numbers so a reader can judge."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from bench.catalog import STANDARD_TARGETS, Catalog, PublishedResult
from bench.report import stats
from bench.report.tables import Row, Score, Suite

AUDIT_TOLERANCE = 0.005
_FLOAT_SLACK = 1e-9  # binary floating point: 92.30 - 92.296 must not flag by representation error


@dataclass(frozen=True)
class AuditEntry:
    """One published source's printed average checked against its cells."""

    dataset: str
    source: str
    printed_mean: float | None
    recomputed_mean: float | None
    status: str  # "ok", "mismatch", "not auditable"
    detail: str

    @property
    def flagged(self) -> bool:
        return self.status == "mismatch"


def published_mean(item: PublishedResult) -> float | None:
    """Mean of the five standard cells, or None when any cell is missing."""
    if not all(target in item.scores for target in STANDARD_TARGETS):
        return None
    return sum(item.scores[target] for target in STANDARD_TARGETS) / len(STANDARD_TARGETS)


def compared_targets(item: PublishedResult) -> tuple[str, ...]:
    """The sets a published mean averages: its own cells, or the five standard sets when only a
    printed average is recorded (that is what the sources average over)."""
    return tuple(item.scores) if item.scores else STANDARD_TARGETS


def own_mean(item: PublishedResult) -> float | None:
    """The source's mean over its own cells, or its printed average when no cell is recorded."""
    if item.scores:
        return sum(item.scores.values()) / len(item.scores)
    return item.printed_mean


def ours_over(item: PublishedResult, row: Row) -> float | None:
    """Our row's mean over exactly the sets of the source's mean; None when our row lacks one.

    Our row's own mean averages the suite's sets, which may be more, fewer or other ones than the
    source's: a gap between the two would mix a difference of sets into a difference of models."""
    targets = compared_targets(item)
    if not set(targets) <= set(row.scores):
        return None
    return sum(row.scores[target].value for target in targets) / len(targets)


def audit_published(catalog: Catalog) -> list[AuditEntry]:
    """Check every published source of every training set in the registry."""
    entries = []
    for dataset, training_set in catalog.training.items():
        for item in training_set.published:
            entries.append(_audit_one(dataset, item))
    return entries


def _audit_one(dataset: str, item: PublishedResult) -> AuditEntry:
    recomputed = published_mean(item)
    if item.printed_mean is None:
        status, detail = "not auditable", "no average printed"
    elif recomputed is None:
        cells = len([t for t in STANDARD_TARGETS if t in item.scores])
        status, detail = "not auditable", f"{cells} of 5 cells recorded"
    elif abs(item.printed_mean - recomputed) > AUDIT_TOLERANCE + _FLOAT_SLACK:
        status = "mismatch"
        detail = (
            f"printed {item.printed_mean:.2f} but the mean of its five cells is "
            f"{recomputed:.3f} (off by {item.printed_mean - recomputed:+.3f})"
        )
    else:
        status, detail = "ok", f"within {AUDIT_TOLERANCE} of the cells' mean"
    return AuditEntry(dataset, item.source, item.printed_mean, recomputed, status, detail)


@dataclass(frozen=True)
class ReproductionEntry:
    """Published numbers of one source next to one of our rows (or none measured)."""

    dataset: str
    display_name: str
    source: str
    recipe: str
    published: dict[str, float]
    published_mean: float | None  # own_mean: its cells' mean, else the printed one
    ours: Row | None
    ours_mean: float | None  # ours_over: our mean over exactly the published mean's sets
    gaps: dict[str, float]  # ours - published, per target, percent points
    mean_gap: float | None
    # 95% CI half-width of ours_mean over our seeds (None with one seed: no seed spread)
    mean_spread: float | None = None
    verdict: str = ""  # "within", "outside" or "n/a" (see verdict())
    outside: tuple[str, ...] = ()  # targets (and "mean") whose gap exceeds our seed spread
    source_id: str = ""
    caveats: tuple[str, ...] = ()  # the source's, from the registry (e.g. Accuracy-Highest)


def reproduction_table(catalog: Catalog, suites: list[Suite]) -> list[ReproductionEntry]:
    """For every published source in the registry: theirs, ours (each measured row that shares a
    set with the source), gap."""
    measured: dict[str, list[Row]] = {}
    for suite in suites:
        for row in suite.rows:
            measured.setdefault(row.dataset, []).append(row)
    entries = []
    for dataset, training_set in catalog.training.items():
        for item in training_set.published:
            # A row on only some of the source's sets is still a measurement: its shared cells
            # get a gap, the rest and the mean show "-".
            shared = [
                row
                for row in measured.get(dataset, [])
                if set(row.scores) & set(compared_targets(item))
            ]
            source = catalog.sources.get(item.source_id)
            caveats = source.caveats if source else ()
            for row in shared or [None]:
                entry = _reproduce(dataset, training_set.display_name, item, row)
                entries.append(_with_verdict(entry, item, caveats))
    return entries


def ours_spread_over(item: PublishedResult, row: Row) -> float | None:
    """95% CI half-width over seeds of our mean over the source's sets; None for one seed."""
    targets = compared_targets(item)
    if len(row.runs) < 2 or not set(targets) <= set(row.scores):
        return None
    means = [
        sum(100.0 * run.data["targets"][t]["acc"] for t in targets) / len(targets)
        for run in row.runs
    ]
    return stats.mean_ci(means)[1]


def _with_verdict(
    entry: ReproductionEntry, item: PublishedResult, caveats: tuple[str, ...]
) -> ReproductionEntry:
    """Verdict: is every published cell (and mean) within our seed spread (95% CI over seeds)?
    One seed has no seed spread (a fold std is not one): "n/a"."""
    spread = None if entry.ours is None else ours_spread_over(item, entry.ours)
    outside: list[str] = []
    if entry.ours is None or len(entry.ours.runs) < 2:
        verdict = "n/a"
    else:
        for target, gap in entry.gaps.items():
            if abs(gap) > entry.ours.scores[target].spread + _FLOAT_SLACK:
                outside.append(target)
        if entry.mean_gap is not None and spread is not None and abs(entry.mean_gap) > spread:
            outside.append("mean")
        verdict = "outside" if outside else "within"
    return replace(
        entry,
        mean_spread=spread,
        verdict=verdict,
        outside=tuple(outside),
        source_id=item.source_id,
        caveats=tuple(caveats),
    )


def _reproduce(
    dataset: str, display_name: str, item: PublishedResult, row: Row | None
) -> ReproductionEntry:
    theirs = own_mean(item)
    gaps: dict[str, float] = {}
    ours = mean_gap = None
    if row is not None:
        gaps = {t: row.scores[t].value - v for t, v in item.scores.items() if t in row.scores}
        ours = ours_over(item, row)
        mean_gap = None if ours is None or theirs is None else ours - theirs
    return ReproductionEntry(
        dataset=dataset,
        display_name=display_name,
        source=item.source,
        recipe=item.recipe,
        published=dict(item.scores),
        published_mean=theirs,
        ours=row,
        ours_mean=ours,
        gaps=gaps,
        mean_gap=mean_gap,
    )


def seed_score(score: Score) -> str:
    """Ours in a reproduction cell: mean ± 95% CI over seeds; one seed shows its value alone
    (its fold std is not a seed spread)."""
    if score.kind == "ci95":
        return f"{score.value:.2f} ± {score.spread:.2f}"
    return f"{score.value:.2f}"


def verdict_text(entry: ReproductionEntry, catalog: Catalog) -> str:
    """The Verdict column of the reproduction table; says so when our row was trained with
    another recipe than the source's own (a comparison, not a reproduction)."""
    if entry.ours is None:
        return "-"
    if entry.verdict == "n/a":
        text = "n/a (one seed: no seed spread)"
    elif entry.verdict == "within":
        text = "within our seed spread"
    else:
        names = [
            catalog.evaluation[t].display_name if t in catalog.evaluation else t
            for t in entry.outside
        ]
        text = f"outside our seed spread ({', '.join(names)})"
    source = catalog.sources.get(entry.source_id)
    if source is not None and source.recipe and Path(source.recipe).stem != entry.ours.recipe:
        text += f"; ours: recipe {entry.ours.recipe}, not the source's {source.recipe}"
    return text


def caveat_views(entries: list[dict], catalog: Catalog) -> list[dict]:
    """The caveats of every source in the reproduction table (views with a `source_id`), once
    each, in table order."""
    seen: dict[str, dict] = {}
    for view in entries:
        source = catalog.sources.get(view["source_id"])
        if source is not None and source.caveats and source.name not in seen:
            seen[source.name] = {"title": source.title, "caveats": list(source.caveats)}
    return list(seen.values())
