"""`bench reproduce SOURCE`: train every training set of one published table, several seeds.

For each training set whose published row names SOURCE (`source_id` in datasets.yaml) and that is
present here (prepared, raw, or a demo set that can be generated), run the benchmark pipeline
(bench.pipeline.run_benchmark) once per seed with the source's own recipe (`--recipe source`) or
each set's benchmark recipe (`--recipe fixed`). One result JSON per (set, recipe, seed), named as
`bench bench` names it, so finished cells are reused and an interrupted run resumes from its
checkpoint. Absent sets are listed with how to get them, never dropped silently. `bench report`
then puts ours (mean ± 95% CI over seeds) beside the published cells with a verdict."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path

from bench.catalog import Catalog, Source, TrainingSet
from bench.core import paths
from bench.core.errors import BenchError, ConfigError
from bench.pipeline import BenchOptions, run_benchmark

log = logging.getLogger(__name__)

RECIPE_MODES = ("source", "fixed")


@dataclass(frozen=True)
class Cell:
    """One (training set, recipe, seed) to run, and where its result JSON goes."""

    dataset: str
    recipe: str  # a recipe reference: configs/<recipe>.yaml (e.g. sources/dcface_paper)
    seed: int
    result: Path


@dataclass(frozen=True)
class Absent:
    """A training set of the table that is not here, and how to get it."""

    dataset: str
    how: str


@dataclass
class Plan:
    """What `reproduce` will do: the cells, the absent sets, the source's caveats."""

    source: Source
    recipe_mode: str
    cells: list[Cell] = field(default_factory=list)
    absent: list[Absent] = field(default_factory=list)

    def to_text(self, done: set[Path] | None = None) -> str:
        """The plan as `bench reproduce` prints it (done: cells whose result exists)."""
        done = done or set()
        lines = [f"reproduce {self.source.name}: {self.source.title} ({self.source.url})"]
        lines += [f"  caveat: {caveat}" for caveat in self.source.caveats]
        for cell in self.cells:
            state = "done" if cell.result in done else "to run"
            lines.append(f"  {cell.dataset} / {cell.recipe} / seed {cell.seed}: {state}")
        for absent in self.absent:
            lines.append(f"  ABSENT {absent.dataset}: {absent.how}")
        return "\n".join(lines)


def table_sets(catalog: Catalog, source: str) -> list[TrainingSet]:
    """The training sets with a published row in `source`'s table, in registry order, once each."""
    entries: dict[str, TrainingSet] = {}
    for entry, _ in catalog.published_by(source):
        entries.setdefault(entry.name, entry)
    return list(entries.values())


def recipe_for(entry: TrainingSet, source: Source, mode: str, catalog: Catalog) -> str:
    """The recipe reference a set is trained with: the source's, or the set's benchmark recipe."""
    if mode not in RECIPE_MODES:
        raise ConfigError(f"--recipe must be one of {', '.join(RECIPE_MODES)}, got {mode!r}")
    if mode == "fixed":
        return entry.recipe
    if not source.recipe:
        raise ConfigError(
            f"{catalog.path}: sources.{source.name} names no recipe (no config reproduces this "
            "table yet); run with --recipe fixed, or write configs/sources/"
            f"{source.name}.yaml and set sources.{source.name}.recipe"
        )
    recipe = Path(source.recipe)
    if recipe.suffix in (".yaml", ".yml") and not recipe.is_absolute():
        return str(catalog.path.parent / recipe)  # a registry's own recipe file sits beside it
    return source.recipe


def is_present(entry: TrainingSet, data_root: Path) -> bool:
    """Prepared, or raw data to prepare, or a demo set that can be generated."""
    prepared = paths.prepared_dir(data_root, entry.name) / "manifest.json"
    return (
        entry.demo is not None or prepared.exists() or paths.raw_dir(data_root, entry.name).exists()
    )


def how_to_get(entry: TrainingSet, data_root: Path) -> str:
    """Why a set is absent and what to do, from the registry."""
    release = entry.release
    where = paths.raw_dir(data_root, entry.name)
    if release is not None and not release.available:
        return f"no download is known ({entry.obtain.strip()})"
    return f"not at {where}: {entry.obtain.strip()}"


def plan(
    catalog: Catalog, source_name: str, options: BenchOptions, mode: str = "source", seeds: int = 3
) -> Plan:
    """The cells (present sets x seeds) and absent sets of one source's table."""
    from bench.train.recipe import load_config, recipe_path

    if seeds < 1:
        raise ConfigError(f"--seeds must be at least 1, got {seeds}")
    source = catalog.source(source_name)
    result = Plan(source=source, recipe_mode=mode)
    for entry in table_sets(catalog, source_name):
        recipe = recipe_for(entry, source, mode, catalog)
        if not is_present(entry, options.data_root):
            result.absent.append(Absent(entry.name, how_to_get(entry, options.data_root)))
            continue
        recipe_file = recipe_path(recipe)
        # The recipe's own seed first (a `bench bench` result is reused), then the next ones.
        first = load_config(recipe_file, list(options.overrides)).seed
        for seed in range(first, first + seeds):
            out = options.results_root / entry.name / f"{recipe_file.stem}-seed{seed}.json"
            result.cells.append(Cell(entry.name, recipe, seed, out))
    if not result.cells and not result.absent:
        raise ConfigError(f"{catalog.path}: no published row names source_id {source_name!r}")
    return result


def reproduce(
    catalog: Catalog, source_name: str, options: BenchOptions, mode: str = "source", seeds: int = 3
) -> Plan:
    """Run every missing cell of the plan (existing result JSONs are kept); returns the plan."""
    from bench.eval.results import read_result

    todo = plan(catalog, source_name, options, mode, seeds)
    done = set()
    for cell in todo.cells:
        try:
            read_result(cell.result)
        except BenchError:  # missing or unreadable: (re)run it; training resumes
            continue
        done.add(cell.result)
    print(todo.to_text(done))
    for cell in todo.cells:
        if cell.result in done:
            continue
        overrides = (*options.overrides, f"seed={cell.seed}")
        written = run_benchmark(
            cell.dataset, catalog, replace(options, recipe=cell.recipe, overrides=overrides)
        )
        log.info("%s / %s / seed %d -> %s", cell.dataset, cell.recipe, cell.seed, written)
    return todo
