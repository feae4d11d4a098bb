"""The first run as a new user has it: `make demo` in a fresh clone, every stage timed.

    python benchmarks/first_run.py                 # clone HEAD into a temp dir, time make demo
    python benchmarks/first_run.py --write-docs    # ... and put the table in docs/PERFORMANCE.md

The clone uses this checkout's .venv (run `make setup` first; setup is timed separately in the
docs). Each `bench` command of the demo runs through this script's `--time` mode, which records
its wall time, so the table shows every stage, and the two demo sets' lanes run side by side as
`make demo` runs them. The conclusions are printed too: each set's accuracy per protocol and the
leaderboard's paired test, so a speed-up that changed what the demo shows cannot pass unnoticed.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs" / "PERFORMANCE.md"
BEGIN, END = "<!-- first-run:begin -->", "<!-- first-run:end -->"


def timed(log: Path, command: list[str]) -> int:
    """Run `command`, append {command, start, seconds, rc} to `log`; return its exit code."""
    start = time.time()
    rc = subprocess.call(command)
    record = {"command": command, "start": start, "seconds": time.time() - start, "rc": rc}
    with open(log, "a", encoding="utf-8") as stream:
        stream.write(json.dumps(record) + "\n")
    return rc


def stage_name(command: list[str]) -> str:
    """'bench demo_diverse', 'diagnose demo_consistent', 'synth', 'report', 'ijb' ..."""
    words = command[command.index("bench") + 1 :] if "bench" in command else command
    subcommand = words[0] if words else "?"
    target = next((w for w in words[1:] if w.startswith("demo_")), "")
    return f"{subcommand} {target}".strip()


def run_demo(clone: Path, log: Path) -> float:
    """make demo in `clone`, every bench command timed; returns the total wall seconds."""
    python = REPO / ".venv" / "bin" / "python"
    timer = (
        f"{shlex.quote(str(python))} {shlex.quote(str(Path(__file__).resolve()))} --time {log} --"
    )
    bench = f"env PYTHONPATH={shlex.quote(str(clone))} {timer} {shlex.quote(str(python))} -m bench"
    start = time.time()
    subprocess.run(["make", "-C", str(clone), "demo", f"BENCH={bench}"], check=True)
    return time.time() - start


def conclusions(clone: Path) -> list[str]:
    """Per set: accuracy per protocol and mean; the leaderboard's paired-test cell."""
    lines = []
    for path in sorted((clone / "results").glob("demo_*/*.json")):
        result = json.loads(path.read_text())
        accs = ", ".join(f"{k} {100 * v['acc']:.2f}" for k, v in result["targets"].items())
        lines.append(f"{path.parent.name}: {accs}; mean {100 * result['mean_acc']:.2f}")
    board = (clone / "reports" / "leaderboard.md").read_text(encoding="utf-8")
    for row in board.splitlines():
        if "`demo_diverse`" in row and row.startswith("|"):
            versus = [cell.strip() for cell in row.split("|") if "p=" in cell]
            lines.append(f"demo_diverse vs the row below: {versus[0] if versus else 'n/a'}")
    return lines


def table(records: list[dict], total: float) -> str:
    rows = ["| stage | seconds |", "|---|---:|"]
    rows += [f"| {stage_name(r['command'])} | {r['seconds']:.1f} |" for r in records]
    rows.append(f"| **make demo, wall** (the two demo lanes run side by side) | **{total:.1f}** |")
    return "\n".join(rows)


def write_docs(text: str) -> None:
    docs = DOCS.read_text(encoding="utf-8")
    if BEGIN in docs:
        docs = re.sub(f"{re.escape(BEGIN)}.*?{re.escape(END)}", f"{BEGIN}\n{text}\n{END}",
                      docs, flags=re.S)  # fmt: skip
    else:
        docs += f"\n{BEGIN}\n{text}\n{END}\n"
    DOCS.write_text(docs, encoding="utf-8")


def main(argv: list[str]) -> int:
    if argv[:1] == ["--time"]:  # the per-command timer make demo calls
        return timed(Path(argv[1]), argv[3:])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write-docs", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the clone (its path is printed)")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="first-run-"))
    clone = work / "facebench"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
    log = work / "stages.jsonl"
    total = run_demo(clone, log)
    records = [json.loads(line) for line in log.read_text().splitlines()]
    head = subprocess.run(["git", "-C", str(clone), "rev-parse", "--short", "HEAD"],
                          capture_output=True, text=True).stdout.strip()  # fmt: skip
    text = "\n".join([
        f"`make demo` in a fresh clone of {head} (after `make setup`), "
        f"{time.strftime('%Y-%m-%d')}, `python benchmarks/first_run.py`:",
        "", table(records, total), "", "Conclusions of that run:", "",
        *(f"- {line}" for line in conclusions(clone)),
    ])  # fmt: skip
    print(text)
    if args.write_docs:
        write_docs(text)
    print(f"clone: {clone}" if args.keep else f"(clone in {clone}; remove it when done)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
