"""Exact at any world size: 2 CPU processes (torchrun, gloo) and 1 process train on the same global
mini-batch and get the same gradient, loss and grad norm, for every algorithm and both aggregations.

Each rank trains on its shard (whole groups, as the runner gives it) with micro-batches of 2, so
accumulation and the data-parallel average are both in play; the gradient is read at the
accumulation boundary, after DeepSpeed's all-reduce, before the optimizer step.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

HERE = Path(__file__).resolve().parent
SCRIPT = textwrap.dedent("""
    import sys, torch
    sys.path.insert(0, sys.argv[1])
    from rapidbench import distributed
    distributed.setup_distributed()
    from test_trainer import toy_rollouts, make_trainer, grads_of_steps
    from rapidbench.algorithms.dapo import DAPO, DAPOOptions
    from rapidbench.algorithms.grpo import GRPO, GRPOOptions
    from rapidbench.algorithms.pg import PG, PGOptions
    from rapidbench.algorithms.ppo import PPO, PPOOptions
    from rapidbench.algorithms.rapid import RAPID, RAPIDOptions
    from rapidbench.models import resolve_model

    ALGOS = {
        "grpo": lambda: GRPO(GRPOOptions(group_size=2, prompts_per_step=4)),
        "grpo-token-sum": lambda: GRPO(GRPOOptions(group_size=2, prompts_per_step=4, aggregation="token-sum")),
        "rapid": lambda: RAPID(RAPIDOptions(group_size=2, prompts_per_step=4, steps_per_generation=1)),
        "rapid-token-sum": lambda: RAPID(RAPIDOptions(group_size=2, prompts_per_step=4, steps_per_generation=1,
                                                      aggregation="token-sum")),
        "pg": lambda: PG(PGOptions(group_size=2, prompts_per_step=4)),
        "dapo": lambda: DAPO(DAPOOptions(group_size=2, prompts_per_step=4)),
        "ppo": lambda: PPO(PPOOptions(group_size=2, prompts_per_step=4)),
    }
    W, r = distributed.world_size(), distributed.rank()
    model = resolve_model("tiny-random")
    out = {}
    for name, make in ALGOS.items():
        algo = make()
        algo.reduce_sum = distributed.all_reduce_tensor_sum
        trainer = make_trainer(model, micro=2, mini=8, needs=algo.needs)
        full = toy_rollouts(G=2, P=4)
        mine = torch.nonzero(full.group % W == r).flatten()  # this rank's prompts, whole groups
        grads, stats = grads_of_steps(trainer, algo, steps=2, rollouts=full.select(mine))
        out[name] = {"grads": grads, "stats": [{k: s[k] for k in ("loss", "grad_norm")} for s in stats]}
    if r == 0:
        torch.save(out, sys.argv[2])
    distributed.teardown_distributed()
""")


def run(tmp_path: Path, world: int) -> dict:
    out = tmp_path / f"w{world}.pt"
    if world == 1:
        cmd = [sys.executable, "-c", SCRIPT, str(HERE), str(out)]
    else:
        script = tmp_path / "dp.py"
        script.write_text(SCRIPT)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = str(s.getsockname()[1])
        cmd = [str(Path(sys.executable).parent / "torchrun"), "--nproc_per_node", str(world), "--master_port", port,
               str(script), str(HERE), str(out)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    return torch.load(out)


def test_two_processes_train_exactly_as_one(tmp_path):
    one, two = run(tmp_path, 1), run(tmp_path, 2)
    assert sorted(one) == sorted(two)
    for name in one:
        for a, b in zip(one[name]["stats"], two[name]["stats"]):
            assert a["loss"] == pytest.approx(b["loss"], rel=1e-5, abs=1e-6), name  # advantages cancel: loss ~ 0
            assert a["grad_norm"] == pytest.approx(b["grad_norm"], rel=1e-5), name
        assert len(one[name]["grads"]) == len(two[name]["grads"]) == (4 if name == "ppo" else 2)
        for g1, g2 in zip(one[name]["grads"], two[name]["grads"]):
            rel = ((g1 - g2).norm() / g1.norm()).item()
            print(f"{name}: |g| {g1.norm():.4e} vs {g2.norm():.4e}, relative difference {rel:.1e}")
            assert g1.norm() > 0 and rel < 1e-5, name
