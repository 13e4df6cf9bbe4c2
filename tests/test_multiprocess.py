"""Data parallel on CPU: 2 processes (torchrun, gloo) see the same global batch as 1 process."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ARGS = ["--model", "tiny-random", "--algo", "rapid", "--sampler", "hf", "--no-progress", "--max-steps", "4",
        "generation.max_new_tokens=8", "eval.num_problems=4", "eval.n_samples=2", "eval.k=[1,2]",
        "algo_args.group_size=2", "algo_args.prompts_per_step=4", "algo_args.steps_per_generation=2"]


def rows(p: Path) -> list[dict]:
    return [json.loads(x) for x in p.read_text().splitlines()]


@pytest.mark.skipif(shutil.which("torchrun") is None and not (Path(sys.executable).parent / "torchrun").exists(),
                    reason="torchrun not installed")
def test_two_processes_same_samples_and_steps_as_one(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    r1 = subprocess.run([sys.executable, str(ROOT / "launchers" / "run.py"), "--output", str(one), *ARGS],
                        capture_output=True, text=True, timeout=600)
    assert r1.returncode == 0, r1.stderr[-2000:]
    torchrun = str(Path(sys.executable).parent / "torchrun")
    with socket.socket() as sock:  # a free port: torchrun's --master_port 0 leaves the ranks waiting
        sock.bind(("127.0.0.1", 0))
        port = str(sock.getsockname()[1])
    r2 = subprocess.run([torchrun, "--nproc_per_node", "2", "--master_port", port, str(ROOT / "launchers" / "run.py"),
                         "--output", str(two), *ARGS], capture_output=True, text=True, timeout=600)
    assert r2.returncode == 0, r2.stderr[-3000:]
    m1, m2 = rows(one / "metrics.jsonl"), rows(two / "metrics.jsonl")  # rank 0 writes for both ranks
    assert [r["step"] for r in m1] == [r["step"] for r in m2] == [1, 2, 3, 4]
    assert [r["samples"] for r in m1] == [r["samples"] for r in m2] == [8, 8, 8, 8]  # 4 prompts x G 2 per step
    assert [r["generation"] for r in m2] == [0, 0, 1, 1]
    assert json.loads((two / "summary.json").read_text())["world_size"] == 2
    e2 = rows(two / "eval.jsonl")
    assert [e["n_problems"] for e in e2] == [4, 4]  # evaluation is sharded and reduced, not duplicated
