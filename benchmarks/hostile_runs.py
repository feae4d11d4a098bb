"""Hostile and broken inputs through the CLI (issue 18: results, reports, runs, recipes, registry,
training input): counts tracebacks, silent wrong results and lost outputs.

    python benchmarks/hostile_runs.py                       # this checkout
    python benchmarks/hostile_runs.py --code /tmp/old18b    # another checkout (e.g. the old code)

Every case runs `python -m bench ...` in a subprocess with the chosen checkout first on the path,
on inputs generated into a temporary folder. Outcomes:
  ok         the expected clear message (exit 2, no traceback) or the expected clean result
  traceback  a Python traceback reached the user
  silent     the bad input was accepted: a wrong number ranked, a run trained on bad input or
             into a busy folder, a leftover stayed, a formula reached the CSV
  lost       a previous output was damaged or a prepared set disappeared
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np
from hostile_harness import CUT_WRITE, DATASET, FIXTURES, GOOD, HOLD_LOCK, REPO, Runner

# --- results and reports ------------------------------------------------------------------


def _bad_results() -> dict[str, bytes]:
    def edited(edit) -> bytes:
        data = json.loads(GOOD.read_text(encoding="utf-8"))
        data["run"]["dataset"] = "dcface_0.5m"
        edit(data)
        return json.dumps(data).encode("utf-8")

    def target(key, value):
        def edit(data):
            next(iter(data["targets"].values()))[key] = value
            accs = [body["acc"] for body in data["targets"].values()]
            data["mean_acc"] = sum(accs) / len(accs) if all(map(math.isfinite, accs)) else 0.5

        return edited(edit)

    return {
        "result acc inf": target("acc", math.inf),
        "result acc 500%": target("acc", 5.0),
        "result acc NaN": target("acc", math.nan),
        "result acc -0.5": target("acc", -0.5),
        "result std < 0": target("acc_std", -0.1),
        "result mean_acc inflated": edited(lambda d: d.update(mean_acc=0.999)),
        "result non-UTF-8": b'{"kind": "facebench-result", "\xff": 1}',
        "result [ x 100000": b"[" * 100_000,
        "result seed string": edited(lambda d: d["run"].update(seed="zero")),
        "result 5000-digit int": b'{"schema_version": ' + b"9" * 5000 + b"}",
    }


def report_cases(run: Runner) -> None:
    for case, data in _bad_results().items():
        folder = run.folder("report")
        (folder / "results").mkdir()
        shutil.copy(GOOD, folder / "results" / "good.json")
        (folder / "results" / "bad.json").write_bytes(data)
        done = run.bench("report", "--results", str(folder / "results"), "--out",
                         str(folder / "out"), "--catalog", run.catalog)  # fmt: skip
        table = folder / "out" / "leaderboard.csv"
        ranked = table.is_file() and "dcface_0.5m" in table.read_text(encoding="utf-8")
        named = "bad.json" in done.stdout + done.stderr
        run.record(case, done, silent=ranked or not named, lost=done.returncode != 0)
    folder = run.folder("report")
    data = json.loads(GOOD.read_text(encoding="utf-8"))
    data["run"]["recipe"] = "=1+1"
    (folder / "results").mkdir()
    (folder / "results" / "formula.json").write_text(json.dumps(data), encoding="utf-8")
    done = run.bench("report", "--results", str(folder / "results"), "--out", str(folder / "out"),
                     "--catalog", run.catalog)  # fmt: skip
    with open(folder / "out" / "leaderboard.csv", newline="", encoding="utf-8") as handle:
        cells = [cell for row in csv.reader(handle) for cell in row]
    run.record("CSV formula in a recipe name", done, silent="=1+1" in cells)


def report_write_cases(run: Runner) -> None:
    folder = run.folder("report-writes")
    results = folder / "results"
    for name in ("uiface_0.5m", "dcface_0.5m"):
        shutil.copytree(FIXTURES / "results" / name, results / name)
    report = ["report", "--results", str(results), "--out", str(folder / "out"), "--catalog",
              run.catalog]  # fmt: skip
    assert run.bench(*report).returncode == 0
    shutil.copytree(FIXTURES / "results" / "vec2face_hsface10k", results / "vec2face_hsface10k")
    for victim, how in (("leaderboard.html", "kill"), ("leaderboard.csv", "kill"),
                        ("suite1-accuracy.png", "kill"), ("leaderboard.md", "enospc")):  # fmt: skip
        before = {p: p.read_bytes() for p in (folder / "out").rglob("*") if p.is_file()}
        done = run.python("-c", CUT_WRITE, victim, how, *report)
        after = {p: p.read_bytes() for p in (folder / "out").rglob("*") if p.is_file()}
        damaged = [p for p in before if p.name == victim and after.get(p) != before[p]]
        silent = how == "enospc" and done.returncode != 2
        run.record(f"report {how} while writing {victim}", done, silent, lost=bool(damaged))
    done = run.bench("report", "--results", str(results), "--out", str(GOOD / "reports"),
                     "--catalog", run.catalog)  # fmt: skip
    run.record("report --out under a file", done, silent=done.returncode != 2)


# --- recipes, registry ----------------------------------------------------------------------


def _prepared(run: Runner, name: str, sizes: list[int] | None = None) -> Path:
    """A prepared set (via `bench prepare`) of 24 generated images in 4 identities."""
    from bench.formats import encode_png, write_canonical

    folder = run.folder(name)
    rng = np.random.default_rng(0)
    items = [(encode_png(rng.integers(0, 256, (s, s, 3), dtype=np.uint8)), i // 6)
             for i, s in enumerate(sizes or [112] * 24)]  # fmt: skip
    write_canonical(folder / "source", items, 4)
    done = run.bench("prepare", DATASET, "--from", str(folder / "source"), "--data-root",
                     str(folder / "data"), "--catalog", run.catalog)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return folder


def _train(run: Runner, folder: Path, recipe: str | bytes, *extra: str):
    path = folder / "recipe.yaml"
    path.write_bytes(recipe if isinstance(recipe, bytes) else recipe.encode("utf-8"))
    return run.bench("train", DATASET, "--recipe", str(path), "--catalog", run.catalog,
                     "--data-root", str(folder / "data"), "--runs-root", str(folder / "runs"),
                     "--device", "cpu", *extra)  # fmt: skip


def recipe_cases(run: Runner) -> None:
    folder = _prepared(run, "recipes")
    smoke = run.smoke
    without_momentum = "".join(line + "\n" for line in smoke.splitlines() if "momentum" not in line)
    cases = {
        "recipe missing a key": (without_momentum, ()),
        "recipe key given twice": (smoke + "epochs: 2\n", ()),
        "recipe not UTF-8": (smoke.replace("name: smoke", "name: caf\xe9").encode("latin-1"), ()),
        "seed=-1": (smoke, ("seed=-1",)),
    }
    for case, (recipe, extra) in cases.items():
        shutil.rmtree(folder / "runs", ignore_errors=True)
        done = _train(run, folder, recipe, *extra)
        run.record(case, done, silent=done.returncode == 0)


def registry_cases(run: Runner) -> None:
    import yaml

    def first(document, section):
        return next(iter(document[section].values()))

    def same_file(document):
        a, b = list(document["evaluation"].values())[:2]
        b["file"] = a["file"]

    def fraction(document):
        entry = next(e for e in document["training"].values() if e.get("published"))
        entry["published"][0]["scores"]["lfw"] = 0.998

    cases = {
        "registry identities -5": lambda d: first(d, "training").update(identities=-5),
        "registry fractional score": fraction,
        "registry two sets on one file": same_file,
    }
    folder = run.folder("registry")
    for case, edit in cases.items():
        document = yaml.safe_load(Path(run.catalog).read_text(encoding="utf-8"))
        edit(document)
        path = folder / "datasets.yaml"
        path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
        done = run.bench("datasets", "--catalog", str(path))
        run.record(case, done, silent=done.returncode == 0)


# --- training input, locks, leftovers -------------------------------------------------------


def data_cases(run: Runner) -> None:
    def flip_byte(prepared: Path) -> None:
        data = bytearray((prepared / "train.rec").read_bytes())
        data[len(data) // 2] ^= 1
        (prepared / "train.rec").write_bytes(bytes(data))

    def swap_idx(prepared: Path) -> None:
        lines = (prepared / "train.idx").read_text().splitlines(keepends=True)
        lines[1], lines[2] = lines[2], lines[1]
        (prepared / "train.idx").write_text("".join(lines))

    def edit_manifest(prepared: Path) -> None:
        manifest = json.loads((prepared / "manifest.json").read_text())
        manifest["images"] += 1
        (prepared / "manifest.json").write_text(json.dumps(manifest))

    cases = {
        "train on a changed .rec byte (--verify-data)": (flip_byte, ("--verify-data",)),
        "train on a reordered .idx": (swap_idx, ()),
        "train on an edited manifest": (edit_manifest, ()),
    }
    for case, (tamper, extra) in cases.items():
        folder = _prepared(run, "data")
        tamper(folder / "data" / "prepared" / DATASET)
        done = _train(run, folder, run.smoke, *(extra if run.verify_flag else ()))
        run.record(case, done, silent=done.returncode == 0)
    for case, sizes in (("train on 96x96 images", [96] * 24),
                        ("train on one 96x96 image", [112] * 23 + [96])):  # fmt: skip
        folder = _prepared(run, "sizes", sizes)
        done = _train(run, folder, run.smoke)
        run.record(case, done, silent=done.returncode == 0)


def _hold(path: Path) -> subprocess.Popen:
    path.parent.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(path)], stdout=subprocess.PIPE,
                              text=True)  # fmt: skip
    holder.stdout.readline()
    return holder


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def run_dir_cases(run: Runner) -> None:
    folder = _prepared(run, "locks")
    holder = _hold(folder / "runs" / DATASET / ".recipe-seed0.lock")
    try:
        done = _train(run, folder, run.smoke)
        run.record("second bench train of a busy run", done, silent=done.returncode == 0)
    finally:
        holder.kill()
        holder.wait()
    prepared = folder / "data" / "prepared"
    holder = _hold(prepared / f".{DATASET}.lock")
    prepare = ["prepare", DATASET, "--from", str(folder / "source"), "--data-root",
               str(folder / "data"), "--catalog", run.catalog, "--force"]  # fmt: skip
    try:
        done = run.bench(*prepare)
        run.record("second bench prepare of a busy set", done, silent=done.returncode == 0)
    finally:
        holder.kill()
        holder.wait()
    # A killed prepare's staging folders (old naming and pid naming) and a set left aside.
    stale = [
        prepared / f".{DATASET}.preparing-abc123",
        prepared / f".{DATASET}.preparing-{_dead_pid()}-x1",
    ]
    for path in stale:
        path.mkdir()
        (path / "train.rec").write_bytes(b"x" * 1000)
    done = run.bench(*prepare)
    run.record("staging folders of a killed prepare", done,
               silent=any(path.exists() for path in stale[1:]))  # fmt: skip
    os.rename(prepared / DATASET, prepared / f".{DATASET}.replaced-{_dead_pid()}")
    done = run.bench(*prepare[:-1])  # without --force: the set should simply be back
    aside = [path for path in prepared.iterdir() if ".replaced-" in path.name]
    run.record("set left aside between two renames", done, silent=bool(aside),
               lost=not (prepared / DATASET / "manifest.json").exists())  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--code", type=Path, default=REPO, help="checkout whose bench to run")
    args = parser.parse_args()
    code = args.code.resolve()
    with tempfile.TemporaryDirectory(prefix="hostile-") as work:
        run = Runner(code, Path(work))
        for group in (report_cases, report_write_cases, recipe_cases, registry_cases,
                      data_cases, run_dir_cases):  # fmt: skip
            print(f"{group.__name__} ({code}):", flush=True)
            group(run)
    counts = Counter(run.outcomes.values())
    print(f"\n{len(run.outcomes)} cases on {code}: " + ", ".join(
        f"{counts[k]} {k}" for k in ("ok", "traceback", "silent", "lost")))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
