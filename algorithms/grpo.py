"""GRPO (Shao et al., 2024, DeepSeekMath): group-mean (optionally std-scaled) advantages, PPO-clip.

On-policy by default: one optimizer step per generation; `num_iterations` > 1 re-uses the same
batch that many times (TRL's mu). `steps_per_generation` = A > 1 is "batched GRPO" (TRL's
steps_per_generation schedule): one generation of A x B prompts, then A off-policy PPO-clip steps on
disjoint mini-batches with the plain group-mean baseline, no importance weights. It is the control
that separates RAPID's schedule from its importance-weighted baseline. Optional KL to a frozen
reference (k3 estimator).
Validated: loss against hand-computed values in tests/test_algorithms.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from rapidbench.algorithms.base import (
    AlgoOptions,
    Aggregation,
    Algorithm,
    LossInputs,
    Needs,
    aggregate,
    clipped_surrogate,
    group_mean,
    group_std,
    kl_k3,
    masked_mean,
    split_groups,
)
from rapidbench.registry import register_algorithm
from rapidbench.rollouts import Rollouts


@dataclass
class GRPOOptions(AlgoOptions):
    clip_eps: float = 0.2
    scale_rewards: bool = True  # divide by the group std (the original GRPO)
    kl_coef: float = 0.0  # beta; > 0 loads a frozen reference model
    num_iterations: int = 1  # optimizer passes over each generation's batch
    steps_per_generation: int = 1  # A: disjoint mini-batches per generation (batched GRPO when > 1)
    aggregation: Aggregation = "seq-mean"


def grpo_advantages(rewards: torch.Tensor, group: torch.Tensor, scale: bool, eps: float = 1e-4) -> torch.Tensor:
    """r_i - mean_group(r), divided by (std_group(r) + eps) when `scale`. rewards, group: [N] -> [N]."""
    adv = rewards - group_mean(rewards, group)  # [N]
    if scale:
        adv = adv / (group_std(rewards, group) + eps)  # [N]
    return adv


def policy_loss(alg, inp: LossInputs, eps_low: float, eps_high: float, kl_coef: float):
    """Shared by GRPO and RAPID: clipped surrogate + optional k3 KL, aggregated per `alg.aggregation`."""
    per_token, ratio, clipped = clipped_surrogate(inp.logps, inp.old_logps, inp.advantages, eps_low, eps_high)  # [n, T]
    stats = {}
    if kl_coef > 0:
        kl = kl_k3(inp.logps, inp.ref_logps)  # [n, T]
        per_token = per_token + kl_coef * kl
        stats["kl"] = masked_mean(kl.detach(), inp.mask)
    loss = aggregate(per_token, inp.mask, alg.aggregation, inp.norm)  # scalar
    stats["ratio_mean"] = masked_mean(ratio.detach(), inp.mask)
    stats["clip_frac"] = masked_mean(clipped, inp.mask)
    return loss, stats


@register_algorithm("grpo")
class GRPO(Algorithm):
    """Group Relative Policy Optimization: group-normalised advantages, PPO-clip, on-policy."""

    Options = GRPOOptions

    def __init__(self, options: GRPOOptions):
        super().__init__(options)
        if options.num_iterations < 1 or options.steps_per_generation < 1:
            raise ValueError("algo_args.num_iterations and algo_args.steps_per_generation must be >= 1")
        self.needs = Needs(reference_model=options.kl_coef > 0)
        self.aggregation = options.aggregation

    @property
    def steps_per_generation(self) -> int:
        return self.options.steps_per_generation * self.options.num_iterations

    @property
    def prompts_per_generation(self) -> int:
        return self.options.prompts_per_step * self.options.steps_per_generation  # iterations re-use the batch

    def minibatches(self, rollouts: Rollouts, generator: torch.Generator) -> list[torch.Tensor]:
        chunks = split_groups(rollouts.group, self.options.steps_per_generation, generator)
        return [c for _ in range(self.options.num_iterations) for c in chunks]

    def advantages(self, rollouts: Rollouts) -> None:
        rollouts.advantages = grpo_advantages(rollouts.rewards, rollouts.group, self.options.scale_rewards)

    def loss(self, inp: LossInputs):
        o = self.options
        return policy_loss(self, inp, o.clip_eps, o.clip_eps, o.kl_coef)
