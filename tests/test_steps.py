"""Equal work: where pi_old comes from, counted in policy forward passes per generation.

Nobody pays for a pass it does not need: an on-policy algorithm's only step takes pi_old from its
own training forward; RAPID's later mini-batches get one no-grad pass before the first update, and
its per-step importance weights come from the training forward whenever whole groups fit in a
micro-batch (a separate pass only when a group straddles micro-batches).
"""

from __future__ import annotations

import pytest
import torch

from rapidbench.algorithms.dapo import DAPO, DAPOOptions
from rapidbench.algorithms.grpo import GRPO, GRPOOptions
from rapidbench.algorithms.pg import PG, PGOptions
from rapidbench.algorithms.ppo import PPO, PPOOptions
from rapidbench.algorithms.rapid import RAPID, RAPIDOptions
from rapidbench.config import TrainConfig
from rapidbench.steps import optimizer_steps, rows_needing_old_pass
from rapidbench.trainer import DeepSpeedTrainer, groups_within, micro_batches
from test_trainer import toy_rollouts


def count_forwards(trainer):
    """Wrap the policy's decoder: record (rows, with grad) of every forward."""
    calls = []
    module = trainer.engine.module.get_decoder()
    real = module.forward

    def forward(*a, **kw):
        calls.append((kw["input_ids"].shape[0], torch.is_grad_enabled()))
        return real(*a, **kw)

    module.forward = forward
    return calls


def run_generation(model, algo, micro, old_source, prompts):
    torch.manual_seed(0)
    cfg = TrainConfig(dtype="float32", lr=1e-5, micro_batch_size=micro, grad_clip=0.0)
    mini = algo.options.prompts_per_step * algo.group_size
    trainer = DeepSpeedTrainer(model, cfg, mini_batch=mini, temperature=0.7, needs=algo.needs, total_steps=10,
                               group_size=algo.group_size)
    ro = toy_rollouts(G=algo.group_size, P=prompts)
    calls = count_forwards(trainer)
    batches = algo.minibatches(ro, torch.Generator().manual_seed(0))
    stats = [s for _, s in optimizer_steps(trainer, algo, ro, batches, old_source)]
    return calls, stats, ro, trainer


ON_POLICY = {
    "grpo": lambda: GRPO(GRPOOptions(group_size=2, prompts_per_step=4)),
    "pg": lambda: PG(PGOptions(group_size=2, prompts_per_step=4)),
    "dapo": lambda: DAPO(DAPOOptions(group_size=2, prompts_per_step=4)),
    "ppo": lambda: PPO(PPOOptions(group_size=2, prompts_per_step=4)),
    "rapid-A1": lambda: RAPID(RAPIDOptions(group_size=2, prompts_per_step=4, steps_per_generation=1)),
}


@pytest.mark.parametrize("name", sorted(ON_POLICY))
def test_on_policy_algorithms_run_no_extra_forward(tiny_model, dist, name):
    """8 rows, micro-batches of 4: the policy forwards exactly its two training micro-batches, and
    pi_old (from the trainer) is those forwards' own, so the ratio is exactly 1."""
    calls, stats, ro, trainer = run_generation(tiny_model, ON_POLICY[name](), micro=4, old_source="trainer", prompts=4)
    assert calls == [(4, True), (4, True)]
    assert trainer.policy_rows == 8
    assert stats[0]["ratio_mean"] == 1.0
    assert ro.old_logps.abs().sum() > 0  # filled from the training forward for later use


def test_rapid_pays_one_pass_over_its_later_mini_batches_only(tiny_model, dist):
    """A = 2, 16 rows, mini-batches of 8, micro-batches of 4 (two whole groups each): a no-grad pass
    over the second mini-batch's 8 rows before the first update, then two training forwards per
    step; the second (off-policy) step's weights come from its training forward."""
    algo = RAPID(RAPIDOptions(group_size=2, prompts_per_step=4, steps_per_generation=2))
    calls, stats, ro, _ = run_generation(tiny_model, algo, micro=4, old_source="trainer", prompts=8)
    assert calls == [(4, False), (4, False), (4, True), (4, True), (4, True), (4, True)]
    assert stats[0]["iw_mean"] == 1.0 and stats[0]["ratio_mean"] == 1.0
    assert stats[1]["iw_mean"] != 1.0  # the second step is off-policy: real weights, from its own forward


def test_rapid_straddling_groups_take_a_separate_pass(tiny_model, dist):
    """G = 4 with micro-batches of 2: a group spans two micro-batches, so the second step's weights
    need one no-grad pass over its mini-batch (8 rows) before its training forwards."""
    algo = RAPID(RAPIDOptions(group_size=4, prompts_per_step=2, steps_per_generation=2))
    calls, _, _, _ = run_generation(tiny_model, algo, micro=2, old_source="trainer", prompts=4)
    passes = [c for c in calls if not c[1]]
    assert sum(r for r, _ in passes) == 8 + 8  # pi_old of mini-batch 2, then step 2's current log-probs
    assert sum(r for r, g in calls if g) == 16  # training forwards: every row once


def test_sampler_old_logprobs_need_no_pass_at_all(tiny_model, dist):
    algo = RAPID(RAPIDOptions(group_size=2, prompts_per_step=4, steps_per_generation=2))
    calls, _, ro, _ = run_generation(tiny_model, algo, micro=4, old_source="sampler", prompts=8)
    assert all(g for _, g in calls) and len(calls) == 4
    assert ro.old_logps is ro.behaviour_logps


def test_rows_needing_old_pass():
    a2 = RAPID(RAPIDOptions(group_size=2, prompts_per_step=2, steps_per_generation=2))
    batches = [torch.tensor([2, 3, 6, 7]), torch.tensor([0, 1, 4, 5])]
    assert rows_needing_old_pass(a2, batches, 8).tolist() == [0, 1, 4, 5]
    grpo_mu2 = GRPO(GRPOOptions(group_size=2, prompts_per_step=2, num_iterations=2))
    assert rows_needing_old_pass(grpo_mu2, [torch.arange(4), torch.arange(4)], 4).tolist() == []
    ppo_kl = PPO(PPOOptions(group_size=2, prompts_per_step=2, kl_coef=0.1))
    assert rows_needing_old_pass(ppo_kl, [torch.arange(4)], 4).tolist() == [0, 1, 2, 3]


def test_groups_within():
    g = torch.tensor([0, 0, 1, 1, 2, 2])
    assert groups_within(g, [torch.arange(0, 4), torch.arange(4, 6)])
    assert not groups_within(g, [torch.arange(0, 3), torch.arange(3, 6)])


def test_micro_batches_hold_whole_groups(tiny_model, dist):
    cfg = TrainConfig(dtype="float32", micro_batch_size=7)
    needs = RAPID(RAPIDOptions()).needs
    t = DeepSpeedTrainer(tiny_model, cfg, mini_batch=16, temperature=0.7, needs=needs, total_steps=1, group_size=4)
    assert t.micro_batch == 4 and t.grad_accum == 4


def test_micro_batches_sort_by_length_and_keep_groups():
    ro = toy_rollouts(G=2, P=6, seed=3)
    lengths = ro.attention_mask.sum(1)
    rows = micro_batches(ro, 4, keep_groups=False)
    assert sorted(torch.cat(rows).tolist()) == list(range(ro.size))
    assert [lengths[r].max() <= lengths[q].min() for r, q in zip(rows, rows[1:])] == [True] * (len(rows) - 1)
    grouped = micro_batches(ro, 4, keep_groups=True)
    assert sorted(torch.cat(grouped).tolist()) == list(range(ro.size)) and groups_within(ro.group, grouped)
    longest = [max(lengths[r].tolist()) for r in grouped]
    assert longest == sorted(longest)
