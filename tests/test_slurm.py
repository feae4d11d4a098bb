"""`bench slurm` and the torchrun relaunch (`--nproc`): the sbatch script renders, is valid bash,
and (run with stand-ins for srun and scontrol) launches on each node the same torchrun command
line as `bench bench --nproc`, whose 2-process CPU run is tested end to end in
test_pipeline_dist.py; the arguments a relaunch forwards (bench bench, bench reproduce)."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from bench.cli import main as cli_main
from bench.commands.launch import torchrun_options


def _stand_ins(folder: Path) -> Path:
    """`scontrol show hostnames` -> two nodes; `srun OPTIONS CMD...` prints CMD, one word a line."""
    folder.mkdir()
    (folder / "scontrol").write_text("#!/bin/sh\nprintf 'node-a\\nnode-b\\n'\n")
    (folder / "srun").write_text(
        '#!/bin/sh\nwhile [ "${1#--}" != "$1" ]; do shift; done\nprintf "%s\\n" "$@"\n'
    )
    for tool in folder.iterdir():
        tool.chmod(0o755)
    return folder


def test_sbatch_script_renders_and_runs_torchrun_on_every_node(tmp_path: Path, capsys) -> None:
    runs = tmp_path / "runs"
    arguments = ["demo_diverse", "--nodes", "2", "--gpus-per-node", "2", "--partition", "gpu",
                 "--time", "2-00:00:00", "--account", "lab", "--runs-root", str(runs),
                 "--recipe", "smoke", "epochs=1"]  # fmt: skip
    assert cli_main(["slurm", *arguments]) == 0
    script = runs / "slurm" / "demo_diverse.sbatch"
    assert f"sbatch {script}" in capsys.readouterr().out
    text = script.read_text()
    for line in ("#SBATCH --nodes=2", "#SBATCH --ntasks-per-node=1", "#SBATCH --gpus-per-node=2",
                 "#SBATCH --partition=gpu", "#SBATCH --time=2-00:00:00", "#SBATCH --account=lab",
                 "#SBATCH --requeue", f"#SBATCH --output={runs}/slurm/logs/%x-%j.out"):  # fmt: skip
        assert line in text.splitlines(), line
    assert (runs / "slurm" / "logs").is_dir()
    subprocess.run(["bash", "-n", str(script)], check=True)

    tools = _stand_ins(tmp_path / "bin")
    env = {**os.environ, "PATH": f"{tools}:{os.environ['PATH']}",
           "SLURM_JOB_ID": "77", "SLURM_JOB_NODELIST": "node-[a-b]"}  # fmt: skip
    done = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    launched = done.stdout.splitlines()[1:]  # after the script's own echo line
    layout = argparse.Namespace(
        nproc=2, nnodes=2, rdzv_endpoint="node-a:29500", rdzv_id="bench-77",
        node_rank=0, master_addr=None, master_port=29500,
    )  # fmt: skip
    assert launched == [
        sys.executable, "-m", "torch.distributed.run", *torchrun_options(layout, "unused"),
        "-m", "bench", "bench", "demo_diverse", "epochs=1", "--recipe", "smoke",
        "--runs-root", str(runs),
    ]  # fmt: skip


def test_forwarded_arguments_keep_what_the_user_gave(tmp_path: Path) -> None:
    from bench.commands import bench
    from bench.commands.launch import forwarded_arguments

    parser = argparse.ArgumentParser()
    bench.configure(parser)
    args = parser.parse_intermixed_args(
        ["demo_diverse", "epochs=2", "--nproc", "4", "--device", "cpu", "lr_power=1",
         "--data-root", str(tmp_path), "--wait-timeout", "5"]
    )  # fmt: skip
    assert forwarded_arguments(args, "bench") == [
        "bench", "demo_diverse", "epochs=2", "lr_power=1", "--data-root", str(tmp_path),
        "--device", "cpu", "--wait-timeout", "5.0",
    ]  # fmt: skip


def test_reproduce_relaunches_under_torchrun_with_its_own_arguments() -> None:
    from bench.commands import reproduce
    from bench.commands.launch import needs_launch, torchrun_command

    parser = argparse.ArgumentParser()
    reproduce.configure(parser)
    args = parser.parse_intermixed_args(["dcface_paper", "--nproc", "8", "--seeds", "2"])
    assert needs_launch(args) or "LOCAL_RANK" in os.environ
    assert torchrun_command(args, "reproduce") == [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=8",
        "-m", "bench", "reproduce", "dcface_paper", "--seeds", "2",
    ]  # fmt: skip
