"""Result JSONs -> leaderboard rows: loading with visible warnings, grouping by target suite,
seed aggregation, paired tests between adjacent rows, published numbers beside our rows."""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bench.catalog import Catalog, PublishedResult
from bench.core.errors import BenchError, ResultError
from bench.eval.results import decode_issame, decode_scores, read_result
from bench.report import stats
from bench.report.ijb import is_ijb_result

log = logging.getLogger(__name__)
SHORT_HASH = 6  # characters of a recipe hash shown to tell rows apart


@dataclass(frozen=True)
class RunResult:
    """One loaded, validated result JSON."""

    path: Path
    name: str  # path relative to the results directory (stable across machines)
    data: dict

    @property
    def run(self) -> dict:
        return self.data.get("run") or {}

    @property
    def dataset(self) -> str:
        # A model evaluated without a training run is listed under its file name.
        return self.run.get("dataset") or f"model:{Path(self.data['model']['path']).name}"

    @property
    def recipe(self) -> str:
        return self.run.get("recipe") or "-"

    @property
    def recipe_hash(self) -> str:
        return self.run.get("recipe_hash") or str(self.data["model"].get("sha256", ""))[:12]

    @property
    def seed(self) -> int | None:
        return self.run.get("seed")


@dataclass(frozen=True)
class Score:
    """A value in percent with its spread: fold std (one seed) or 95% CI half-width (seeds)."""

    value: float
    spread: float
    kind: str  # "std", "ci95" or "" (no spread)


@dataclass
class Row:
    """One (training set, recipe) row: its runs (one per seed) aggregated."""

    dataset: str
    recipe: str
    recipe_hash: str
    display_name: str
    identities: int | None
    images: int | None
    runs: list[RunResult]
    scores: dict[str, Score]
    mean: Score
    published: tuple[PublishedResult, ...] = ()
    versus_next: stats.PairedTest | None = None
    versus_next_note: str = ""
    # The recipe as tables and legends show it: with a short hash where one suite has two rows of
    # this dataset and recipe, which would otherwise read the same (see _label_recipes).
    recipe_label: str = ""

    @property
    def seeds(self) -> list[int | None]:
        return [run.seed for run in self.runs]


@dataclass
class Suite:
    """One leaderboard table: the rows evaluated on one set of targets, best mean first."""

    targets: tuple[str, ...]
    rows: list[Row] = field(default_factory=list)


def load_results(results_dir: Path) -> tuple[list[RunResult], list[str]]:
    """Every results/**/*.json that validates, and one warning per file left out."""
    runs: list[RunResult] = []
    warnings: list[str] = []
    for path in sorted(Path(results_dir).rglob("*.json")):
        name = path.relative_to(results_dir).as_posix()
        if is_ijb_result(path):
            continue  # a `bench ijb` result: a row of the IJB table (bench.report.ijb)
        try:
            data = read_result(path)
            _check_targets(data, name)
        except BenchError as error:
            warnings.append(f"{name}: left out of the report: {error}")
            continue
        except (TypeError, KeyError, AttributeError, ValueError) as error:
            # A shape the schema check did not foresee: one bad file never costs the others.
            warnings.append(f"{name}: left out of the report: malformed result ({error!r})")
            continue
        runs.append(RunResult(path=path, name=name, data=data))
    return runs, warnings


def _check_targets(data: dict, name: str) -> None:
    """What the report itself needs beyond the schema: at least one target with acc/acc_std."""
    targets = data.get("targets")
    if not isinstance(targets, dict) or not targets:
        raise ResultError(f"{name}: no evaluation targets; re-run `bench eval`")
    for target, body in targets.items():
        for key in ("acc", "acc_std"):
            if not isinstance(body.get(key), (int, float)):
                raise ResultError(f"{name}: targets.{target}.{key} missing or not a number")


def decode_pairs(target: dict) -> tuple[np.ndarray, np.ndarray]:
    """Per-pair distances (float32) and same/different labels stored in one target entry."""
    pairs = int(target["pairs"])
    return decode_scores(target["scores_b64"]), decode_issame(target["issame_b64"], pairs)


def build_suites(runs: list[RunResult], catalog: Catalog, warnings: list[str]) -> list[Suite]:
    """Group runs into rows and rows into suites; sort; run the paired tests."""
    order = {name: index for index, name in enumerate(catalog.evaluation)}
    groups: dict[tuple, list[RunResult]] = defaultdict(list)
    for run in runs:
        targets = tuple(sorted(run.data["targets"], key=lambda t: (order.get(t, len(order)), t)))
        groups[(targets, run.dataset, run.recipe, run.recipe_hash)].append(run)
    suites: dict[tuple[str, ...], Suite] = {}
    for (targets, *_), members in sorted(groups.items()):
        members = _unique_seeds(members, warnings)
        row = _aggregate(members, targets, catalog, warnings)
        suites.setdefault(targets, Suite(targets=targets)).rows.append(row)
    ordered = sorted(suites.values(), key=lambda s: (-len(s.rows), s.targets))
    for suite in ordered:
        suite.rows.sort(key=lambda row: (-row.mean.value, row.dataset, row.recipe))
        _label_recipes(suite)
        _compare_adjacent(suite, warnings)
    return ordered


def _label_recipes(suite: Suite) -> None:
    """Add `@<short hash>` to the recipe_label of rows that share dataset and recipe."""
    namesakes: dict[tuple[str, str], list[Row]] = defaultdict(list)
    for row in suite.rows:
        namesakes[(row.dataset, row.recipe)].append(row)
    for rows in namesakes.values():
        if len(rows) == 1:
            continue
        # Six characters, more only where two hashes share their first six.
        hashes = [row.recipe_hash for row in rows]
        width = SHORT_HASH
        while len({h[:width] for h in hashes}) < len(hashes) and width < max(map(len, hashes)):
            width += 1
        for row in rows:
            row.recipe_label = f"{row.recipe}@{row.recipe_hash[:width] or '-'}"


def _unique_seeds(members: list[RunResult], warnings: list[str]) -> list[RunResult]:
    """One run per seed; a duplicate (e.g. a re-evaluation) is named and the later file kept."""
    by_seed: dict[object, RunResult] = {}
    for run in sorted(members, key=lambda r: r.name):
        if run.seed in by_seed:
            warnings.append(
                f"{by_seed[run.seed].name} and {run.name}: same dataset, recipe and seed "
                f"{run.seed}; using {run.name}, delete the other file"
            )
        by_seed[run.seed] = run
    return [by_seed[seed] for seed in sorted(by_seed, key=lambda s: (s is None, s))]


def _aggregate(
    members: list[RunResult], targets: tuple[str, ...], catalog: Catalog, warnings: list[str]
) -> Row:
    """Seeds -> mean ± 95% CI (t); a single seed -> acc ± fold std, mean without spread."""
    first = members[0]
    scores: dict[str, Score] = {}
    for target in targets:
        values = [100.0 * run.data["targets"][target]["acc"] for run in members]
        if len(members) == 1:
            fold_std = 100.0 * first.data["targets"][target]["acc_std"]
            scores[target] = Score(values[0], fold_std, "std")
        else:
            scores[target] = Score(*stats.mean_ci(values), "ci95")
    means = [
        float(np.mean([100.0 * run.data["targets"][t]["acc"] for t in targets])) for run in members
    ]
    mean = Score(means[0], 0.0, "") if len(means) == 1 else Score(*stats.mean_ci(means), "ci95")
    entry = catalog.training.get(first.dataset)
    if entry is None and not first.dataset.startswith("model:"):
        warnings.append(f"{first.name}: training set {first.dataset!r} is not in {catalog.path}")
    return Row(
        dataset=first.dataset,
        recipe=first.recipe,
        recipe_hash=first.recipe_hash,
        display_name=entry.display_name if entry else first.dataset,
        identities=entry.identities if entry else None,
        images=entry.images if entry else None,
        runs=members,
        scores=scores,
        mean=mean,
        recipe_label=first.recipe,
        published=_relevant_published(entry.published if entry else (), targets),
    )


def _relevant_published(
    published: tuple[PublishedResult, ...], targets: tuple[str, ...]
) -> tuple[PublishedResult, ...]:
    """Published results that share at least one target with the suite."""
    return tuple(item for item in published if set(item.scores) & set(targets))


def _compare_adjacent(suite: Suite, warnings: list[str]) -> None:
    """Paired test of each row against the next one down (same pairs required)."""
    for upper, lower in zip(suite.rows, suite.rows[1:], strict=False):
        try:
            correct_upper, labels_upper = _correctness(upper, suite.targets)
            correct_lower, labels_lower = _correctness(lower, suite.targets)
            for target, left, right in zip(suite.targets, labels_upper, labels_lower, strict=True):
                if not np.array_equal(left, right):
                    raise ResultError(f"{target}: the two rows were evaluated on different pairs")
            upper.versus_next = stats.compare_rows(correct_upper, correct_lower)
        except (BenchError, KeyError, ValueError) as error:
            upper.versus_next_note = f"no paired test: {error}"
            warnings.append(f"{upper.dataset} vs {lower.dataset}: {upper.versus_next_note}")


def _correctness(row: Row, targets: tuple[str, ...]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per target, a (seeds, pairs) bool array of per-pair decisions being right, and the
    pair labels (identical across seeds, or the seeds were not evaluated on the same pairs)."""
    correct, labels = [], []
    for target in targets:
        per_seed, target_labels = [], None
        for run in row.runs:
            body = run.data["targets"][target]
            scores, issame = decode_pairs(body)
            if target_labels is not None and not np.array_equal(target_labels, issame):
                raise ResultError(f"{run.name}: {target} pairs differ between seeds")
            target_labels = issame
            per_seed.append(stats.pair_correct(scores, issame, body["fold_thresholds"]))
        correct.append(np.stack(per_seed))
        labels.append(target_labels)
    return correct, labels
