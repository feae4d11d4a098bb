"""`bench slurm NAME --nodes 2 --gpus-per-node 8`: write an sbatch script that runs `bench bench
NAME` on a SLURM allocation (srun, one torchrun per node, c10d rendezvous on the first node)
and print how to submit it. The script is requeue-safe because `bench bench` resumes."""

from __future__ import annotations

import argparse
import shlex
import string
import sys
from pathlib import Path

from bench.commands import bench
from bench.commands.common import positive_int
from bench.commands.launch import forwarded_arguments
from bench.core import io, paths

TEMPLATE = Path(__file__).with_name("slurm.sbatch")
# Options of this command, not of the `bench bench` it runs.
SLURM_DESTS = frozenset(
    {"nodes", "gpus_per_node", "cpus_per_task", "partition", "time", "account", "port",
     "script", "logs"}
)  # fmt: skip


class _Template(string.Template):
    delimiter = "@"  # the script is bash: $ stays bash's


def configure(parser: argparse.ArgumentParser) -> None:
    bench.add_arguments(parser)
    group = parser.add_argument_group("SLURM")
    group.add_argument("--nodes", type=positive_int, default=1, help="nodes (default 1)")
    group.add_argument(
        "--gpus-per-node", type=positive_int, default=8, help="GPUs (processes) per node (8)"
    )
    group.add_argument(
        "--cpus-per-task", type=positive_int, default=32, help="CPUs per node's task (32)"
    )
    group.add_argument("--partition", help="#SBATCH --partition")
    group.add_argument("--time", help="#SBATCH --time, e.g. 2-00:00:00")
    group.add_argument("--account", help="#SBATCH --account")
    group.add_argument(
        "--port", type=positive_int, default=29500, help="rendezvous port on the first node"
    )
    group.add_argument("--script", help="where to write it (default RUNS_ROOT/slurm/NAME.sbatch)")
    group.add_argument("--logs", help="job log folder (default RUNS_ROOT/slurm/logs)")
    parser.set_defaults(launch_parser=parser)


def render(args: argparse.Namespace, script: Path, logs: Path) -> str:
    """The sbatch script's text for the parsed `args`."""
    optional = [("partition", args.partition), ("time", args.time), ("account", args.account)]
    arguments = forwarded_arguments(args, "bench", exclude=SLURM_DESTS)
    return _Template(TEMPLATE.read_text(encoding="utf-8")).substitute(
        name=args.name,
        script=shlex.quote(str(script)),
        nodes=args.nodes,
        gpus=args.gpus_per_node,
        cpus=args.cpus_per_task,
        logs=shlex.quote(str(logs)),
        options="\n".join(f"#SBATCH --{key}={value}" for key, value in optional if value),
        workdir=shlex.quote(str(Path.cwd())),
        port=args.port,
        python=shlex.quote(sys.executable),
        arguments=" ".join(shlex.quote(word) for word in arguments),
    )


def main(args: argparse.Namespace) -> int:
    folder = paths.runs_root(args.runs_root).resolve() / "slurm"
    script = Path(args.script) if args.script else folder / f"{args.name}.sbatch"
    logs = Path(args.logs).resolve() if args.logs else folder / "logs"
    logs.mkdir(parents=True, exist_ok=True)  # SLURM opens --output there before the script runs
    io.atomic_write_text(script, render(args, script.resolve(), logs))
    script.chmod(0o755)
    print(f"wrote {script}\nsubmit it with:  sbatch {shlex.quote(str(script))}")
    print(f"logs: {logs}/bench-{args.name}-<job id>.out; resubmitting resumes the run")
    return 0
