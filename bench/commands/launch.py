"""Several processes for one command: `--nproc N` (and `--nnodes`, ...) relaunch it under torchrun.

torch's own launcher (`python -m torch.distributed.run`) starts the processes and sets RANK,
WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT; when one process fails it stops the others and reports
the first failure. Three ways to meet: one node (`--standalone`: a free local port), several
nodes with a fixed master (`--master-addr/--master-port`, `--node-rank`), or a c10d rendezvous
endpoint (`--rdzv-endpoint host:port`, what SLURM jobs use: no node rank needed). Defaults come
from the environment variables of the same names (NNODES, NODE_RANK, MASTER_ADDR, MASTER_PORT,
RDZV_ENDPOINT), so `make bench NPROC=8` and cluster wrappers pass them through.
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys

from bench.commands.common import positive_int

log = logging.getLogger(__name__)

# Options that concern the launch, not the command: never forwarded to the processes.
LAUNCH_DESTS = frozenset(
    {"nproc", "nnodes", "node_rank", "master_addr", "master_port", "rdzv_endpoint", "rdzv_id"}
)
TORCHRUN = [sys.executable, "-m", "torch.distributed.run"]


def add_launch_options(parser: argparse.ArgumentParser) -> None:
    """--nproc, --nnodes, --node-rank, --master-addr, --master-port, --rdzv-endpoint, --rdzv-id."""
    env = os.environ.get
    group = parser.add_argument_group("several processes (torchrun; README 'Scaling')")
    group.add_argument(
        "--nproc", type=positive_int, default=1,
        help="processes (GPUs) per node; > 1 relaunches this command under torchrun",
    )  # fmt: skip
    group.add_argument(
        "--nnodes", type=positive_int, default=int(env("NNODES", "1")),
        help="nodes taking part (default $NNODES or 1)",
    )  # fmt: skip
    group.add_argument(
        "--node-rank", type=int, default=int(env("NODE_RANK", "0")),
        help="this node's rank with --master-addr (default $NODE_RANK or 0)",
    )  # fmt: skip
    group.add_argument(
        "--master-addr", default=env("MASTER_ADDR"), help="node 0's address (default $MASTER_ADDR)"
    )
    group.add_argument(
        "--master-port", type=positive_int, default=int(env("MASTER_PORT", "29500")),
        help="node 0's port with --master-addr (default $MASTER_PORT or 29500)",
    )  # fmt: skip
    group.add_argument(
        "--rdzv-endpoint", default=env("RDZV_ENDPOINT"),
        help="c10d rendezvous host:port instead of --master-addr/--node-rank ($RDZV_ENDPOINT)",
    )  # fmt: skip
    group.add_argument("--rdzv-id", default=None, help="rendezvous id (default: the command)")
    parser.set_defaults(launch_parser=parser)


def needs_launch(args: argparse.Namespace) -> bool:
    """True when more processes are asked for and this process was not started by torchrun."""
    started_by_torchrun = "TORCHELASTIC_RUN_ID" in os.environ or "LOCAL_RANK" in os.environ
    return (args.nproc > 1 or args.nnodes > 1) and not started_by_torchrun


def torchrun_options(args: argparse.Namespace, run_id: str) -> list[str]:
    """torchrun's own options for the process layout in `args`."""
    options = [f"--nproc-per-node={args.nproc}"]
    if args.rdzv_endpoint:
        return options + [
            f"--nnodes={args.nnodes}", "--rdzv-backend=c10d",
            f"--rdzv-endpoint={args.rdzv_endpoint}", f"--rdzv-id={args.rdzv_id or run_id}",
        ]  # fmt: skip
    if args.nnodes == 1 and not args.master_addr:
        return ["--standalone", *options]  # one node: torchrun picks a free port itself
    if not args.master_addr:
        raise SystemExit(
            f"--nnodes {args.nnodes} needs --master-addr (node 0's address; or $MASTER_ADDR) "
            "or --rdzv-endpoint host:port"
        )
    return options + [
        f"--nnodes={args.nnodes}", f"--node-rank={args.node_rank}",
        f"--master-addr={args.master_addr}", f"--master-port={args.master_port}",
    ]  # fmt: skip


def forwarded_arguments(
    args: argparse.Namespace, command: str, exclude: frozenset[str] = frozenset()
) -> list[str]:
    """`bench COMMAND ...` as the processes run it: the parsed arguments minus the launch ones
    (and those in `exclude`)."""
    words = [command]
    for action in args.launch_parser._actions:
        if action.dest in LAUNCH_DESTS | exclude or action.dest == "help":
            continue
        value = getattr(args, action.dest, None)
        flag = action.option_strings[0] if action.option_strings else None
        if flag is None:  # positional (one value, or nargs="*")
            words += [str(v) for v in value] if isinstance(value, list) else [str(value)]
        elif isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
            words += [flag] if value != action.default else []
        elif isinstance(action, argparse._AppendAction):
            words += [word for item in value or () for word in (flag, str(item))]
        elif type(action) is argparse._StoreAction and action.nargs is None:
            words += [flag, str(value)] if value is not None and value != action.default else []
        else:  # a new kind of option: forwarding it needs a rule here, never a silent drop
            raise TypeError(f"cannot forward option {flag} ({type(action).__name__}) to torchrun")
    return words


def torchrun_command(args: argparse.Namespace, command: str) -> list[str]:
    """The full command line: torchrun, its layout options, `-m bench COMMAND ...`."""
    run_id = f"bench-{command}"
    return [
        *TORCHRUN,
        *torchrun_options(args, run_id),
        "-m",
        "bench",
        *forwarded_arguments(args, command),
    ]


def relaunch(args: argparse.Namespace, command: str) -> int:
    """Run `bench COMMAND` under torchrun with the layout in `args`; its exit status."""
    line = torchrun_command(args, command)
    log.info("launching %d process(es) per node: %s", args.nproc, " ".join(line))
    status = subprocess.run(line, check=False).returncode
    if status != 0:
        # torchrun stopped every process; its "Root Cause (first observed failure)" is above.
        log.error(
            "bench %s: a process failed (exit status %d), so torchrun stopped all of them; the "
            "first failure is reported above. Rerun the same command to resume from the last "
            "checkpoint",
            command,
            status,
        )
    return status
