"""Summarise a gpu_proof.sh output folder as markdown (the rows for docs/PERFORMANCE.md).

python benchmarks/proof_summary.py OUT > OUT/summary.md
Missing or failed sections are listed as such, never left out.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def _load(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def _device(out: Path) -> str:
    for line in (out / "environment.log").read_text(errors="replace").splitlines():
        if line.startswith("device "):
            return line.removeprefix("device ").split(" capability")[0]
    return "no CUDA device (CPU rehearsal)"


def _speed_rows(name: str, report: dict | None) -> list[tuple[str, str]]:
    if report is None:
        return [(name, "no result (see the section's log)")]
    step, data, e2e = report["train_step"], report["data_pipeline"], report["end_to_end"]
    settings = report["settings"]
    label = f"{name}: {settings['backbone']} batch {settings['batch_size']} {settings['amp']}"
    rows = [
        (f"{label}, train step alone", f"{step['images_per_s']:,.0f} img/s"),
        (
            f"{label}, loader ({data['workers']} workers)",
            f"{data['loader_images_per_s']:,.0f} img/s",
        ),
        (f"{label}, end-to-end", f"{e2e['images_per_s']:,.0f} img/s"),
        (
            f"{label}, peak memory",
            f"{e2e['peak_memory']['mb']:,.0f} MB ({e2e['peak_memory']['kind']})",
        ),
    ]
    if data.get("gpu_decode_images_per_s") is not None:
        rows.append((f"{label}, nvJPEG decode", f"{data['gpu_decode_images_per_s']:,.0f} img/s"))
    evaluation = report["evaluation"]
    if evaluation["sets"]:
        pairs = sum(entry["pairs"] for entry in evaluation["sets"].values())
        rows.append((f"{name}: evaluation, {len(evaluation['sets'])} sets, {pairs:,} pairs",
                     f"{evaluation['total_s']:.1f} s"))  # fmt: skip
    parity = report["parity"]
    rows.append((f"{name}: loss parity vs fp32", f"{'ok' if parity['ok'] else 'MISMATCH'} "
                 f"(max relative gap {parity['max_relative_gap']:.2e})"))  # fmt: skip
    return rows


def main(out: Path) -> int:
    sections = [json.loads(line) for line in (out / "sections.jsonl").read_text().splitlines()]
    rows = [(f"section {s['section']}", f"rc {s['rc']}, {s['seconds']} s") for s in sections]
    rows += _speed_rows("CPU decoder", _load(out / "speed_cpu_decoder.json"))
    rows += _speed_rows("nvJPEG", _load(out / "speed_nvjpeg.json"))
    train = _load(out / "train" / "proof_train.json")
    if train is None:
        rows.append(("bench train (THE recipe)", "no result (see train.log)"))
    else:
        rows.append((f"bench train (THE recipe, {train['steps']} steps), steady",
                     f"{train['images_per_s_steady']:,.0f} img/s"))  # fmt: skip
    print(f"# GPU proof on {_device(out)}\n")
    print("| measurement | value |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
