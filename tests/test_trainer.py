"""Trainer invariants on the tiny model: micro-batch accumulation equals one big batch (per algorithm)."""

from __future__ import annotations

import pytest
import torch

from rapidbench.algorithms.dapo import DAPO, DAPOOptions
from rapidbench.algorithms.grpo import GRPO, GRPOOptions
from rapidbench.algorithms.pg import PG, PGOptions
from rapidbench.algorithms.ppo import PPO, PPOOptions
from rapidbench.algorithms.rapid import RAPID, RAPIDOptions
from rapidbench.config import TrainConfig
from rapidbench.rollouts import Completion, build_rollouts
from rapidbench.trainer import DeepSpeedTrainer


def toy_rollouts(G=2, P=4, seed=0):
    """P prompts x G completions of varied lengths over real token ids, with mixed rewards."""
    g = torch.Generator().manual_seed(seed)
    prompts = [torch.randint(10, 5000, (int(torch.randint(3, 7, (1,), generator=g)),), generator=g).tolist()
               for _ in range(P)]
    comps, rewards = [], []
    for i in range(P):
        for j in range(G):
            n = int(torch.randint(2, 6, (1,), generator=g))
            toks = torch.randint(10, 5000, (n,), generator=g).tolist()
            comps.append(Completion(i, toks, "", (-torch.rand(n, generator=g) * 4).tolist(), "stop"))
            rewards.append(float((i + j) % 2))
    return build_rollouts(prompts, comps, rewards, pad_id=0)


def make_trainer(model, micro, zero=0, mini=8, needs=None):
    torch.manual_seed(0)  # the critic's fresh value head is drawn from the global RNG
    cfg = TrainConfig(dtype="float32", lr=1e-5, micro_batch_size=micro, zero_stage=zero, grad_clip=0.0)
    return DeepSpeedTrainer(model, cfg, mini_batch=mini, temperature=0.7, needs=needs or RAPID(RAPIDOptions()).needs,
                            total_steps=10)


def grads_of_steps(trainer, algo, steps=2, rollouts=None):
    """The accumulated gradient each optimizer step applies (read just before DeepSpeed steps)."""
    ro = rollouts if rollouts is not None else toy_rollouts()
    ro.old_logps = trainer.logprobs(ro)  # pi_old: the initial weights
    if algo.needs.critic:
        ro.values = trainer.values(ro)
    algo.advantages(ro)
    grads, stats = [], []
    real_step = trainer.engine.step

    def spy(engine, real):
        def step(*a, **kw):
            if engine.is_gradient_accumulation_boundary():
                grads.append(torch.cat([p.grad.detach().flatten().clone() for p in engine.module.parameters()]))
            return real(*a, **kw)
        return step

    trainer.engine.step = spy(trainer.engine, real_step)
    if trainer.critic is not None:
        trainer.critic.step = spy(trainer.critic, trainer.critic.step)
    for k in range(steps):
        stats.append(trainer.step(ro, algo, old_is_current=(k == 0)))
    return grads, stats


@pytest.mark.parametrize("make_algo", [
    lambda: GRPO(GRPOOptions(group_size=2, prompts_per_step=4)),
    lambda: GRPO(GRPOOptions(group_size=2, prompts_per_step=4, aggregation="token-sum")),
    lambda: RAPID(RAPIDOptions(group_size=2, prompts_per_step=4, steps_per_generation=1)),
    lambda: PG(PGOptions(group_size=2, prompts_per_step=4)),
    lambda: DAPO(DAPOOptions(group_size=2, prompts_per_step=4)),
    lambda: PPO(PPOOptions(group_size=2, prompts_per_step=4)),
], ids=["grpo", "grpo-token-sum", "rapid", "pg", "dapo", "ppo"])
def test_accumulation_equals_one_big_batch(tiny_model, dist, make_algo):
    """batch 8 x accum 1 vs batch 1 x accum 8: the same loss and the same gradient at each of two steps.

    Gradients, not weights after AdamW, are compared: Adam divides by sqrt(v), which turns fp32
    summation-order noise in near-zero gradients into lr-sized differences. For RAPID the second
    step is off-policy, so this also checks that the fused (one micro-batch) and separate-pass
    ways of getting the current log-probs for w agree."""
    algo = make_algo()
    g_big, s_big = grads_of_steps(make_trainer(tiny_model, micro=8, needs=algo.needs), make_algo())
    g_small, s_small = grads_of_steps(make_trainer(tiny_model, micro=1, needs=algo.needs), make_algo())
    engines = 2 if algo.needs.critic else 1  # policy (and critic) steps
    assert len(g_big) == len(g_small) == 2 * engines
    for a, b in zip(s_big, s_small):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-4, abs=1e-6)
    for gb, gs in zip(g_big, g_small):
        rel = ((gb - gs).norm() / gb.norm()).item()
        print(f"grad norm {gb.norm():.4e} vs {gs.norm():.4e} relative diff {rel:.2e} size {gb.numel()}")
        assert gb.norm() > 0 and rel < 1e-4
