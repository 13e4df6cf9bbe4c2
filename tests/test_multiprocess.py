"""Data parallel on CPU: 2 processes (torchrun, gloo) see the same global batch as 1 process."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import requires_vllm

ROOT = Path(__file__).resolve().parent.parent
ARGS = ["--model", "tiny-random", "--algo", "rapid", "--no-progress", "--max-steps", "4",
        "generation.max_new_tokens=8", "eval.num_problems=4", "eval.n_samples=2", "eval.k=[1,2]",
        "algo_args.group_size=2", "algo_args.prompts_per_step=4", "algo_args.steps_per_generation=2"]


def rows(p: Path) -> list[dict]:
    return [json.loads(x) for x in p.read_text().splitlines()]


@pytest.mark.skipif(shutil.which("torchrun") is None and not (Path(sys.executable).parent / "torchrun").exists(),
                    reason="torchrun not installed")
@pytest.mark.parametrize("sampler", ["hf", pytest.param("vllm", marks=requires_vllm)])
def test_two_processes_same_samples_and_steps_as_one(tmp_path, sampler):
    """Also the path every multi-GPU run takes: one in-process vLLM engine per rank."""
    one, two = tmp_path / "one", tmp_path / "two"
    r1 = subprocess.run([sys.executable, str(ROOT / "launchers" / "run.py"), "--output", str(one), *ARGS,
                         "--sampler", sampler], capture_output=True, text=True, timeout=600)
    assert r1.returncode == 0, r1.stderr[-2000:]
    torchrun = str(Path(sys.executable).parent / "torchrun")
    with socket.socket() as sock:  # a free port: torchrun's --master_port 0 leaves the ranks waiting
        sock.bind(("127.0.0.1", 0))
        port = str(sock.getsockname()[1])
    r2 = subprocess.run([torchrun, "--nproc_per_node", "2", "--master_port", port, str(ROOT / "launchers" / "run.py"),
                         "--output", str(two), *ARGS, "--sampler", sampler], capture_output=True, text=True, timeout=600)
    assert r2.returncode == 0, r2.stderr[-3000:]
    m1, m2 = rows(one / "metrics.jsonl"), rows(two / "metrics.jsonl")  # rank 0 writes for both ranks
    assert [r["step"] for r in m1] == [r["step"] for r in m2] == [1, 2, 3, 4]
    assert [r["samples"] for r in m1] == [r["samples"] for r in m2] == [8, 8, 8, 8]  # 4 prompts x G 2 per step
    assert [r["generation"] for r in m2] == [0, 0, 1, 1]
    assert json.loads((two / "summary.json").read_text())["world_size"] == 2
    e2 = rows(two / "eval.jsonl")
    assert [e["n_problems"] for e in e2] == [4, 4]  # evaluation is sharded and reduced, not duplicated


@pytest.mark.skipif(shutil.which("torchrun") is None and not (Path(sys.executable).parent / "torchrun").exists(),
                    reason="torchrun not installed")
def test_ranks_with_skewed_clocks_stop_and_evaluate_together(tmp_path):
    """Rank 0's evaluations take 2 s longer (off its clock), while rank 1 waits for it in its next
    generation (on its clock): the clocks drift apart by 2 s per evaluation. A rank deciding by its
    own clock would then stop or evaluate while the other enters the next step's collectives (a
    hang or a collective mismatch). Rank 0 decides for both."""
    import os

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = str(sock.getsockname()[1])
    args = [a for a in ARGS if a not in ("--max-steps", "4")] + ["--sampler", "hf"]
    env = {**os.environ, "RAPIDBENCH_TEST_EVAL_SKEW": "0:2"}
    r = subprocess.run([str(Path(sys.executable).parent / "torchrun"), "--nproc_per_node", "2", "--master_port", port,
                        str(ROOT / "launchers" / "run.py"), "--output", str(tmp_path / "run"), *args, "--time-budget", "12",
                        "eval.every_seconds=4", "eval.every_steps=0"], capture_output=True, text=True, timeout=600, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    rows = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    evals = [json.loads(x) for x in (tmp_path / "run" / "eval.jsonl").read_text().splitlines()]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["steps"] == rows[-1]["step"] == len(rows) and summary["train_wall_s"] >= 12
    assert len(evals) >= 3  # at start, at least once on the way (every 4 s of a 12 s budget), at the end
