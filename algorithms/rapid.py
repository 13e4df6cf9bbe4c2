"""RAPID (arXiv 2510.03515, Algorithm 1): large-batch inference, then A small off-policy steps.

Inference phase: with pi_old frozen, sample A*B prompts x G completions. Training phase: A
optimizer steps, each on B whole groups. At each step, with the current theta:
    w_i = clamp(exp(sum_t log pi_theta(y_t) - sum_t log pi_old(y_t)), 0, eta)   (real tokens only, detached)
    b   = (1/G) sum_j w_j r_j                                                    (within the group)
    A_i = r_i - b                                                                (std scaling optional)
    loss_t = -min(rho_t A_i, clip(rho_t, 1-eps, 1+eps) A_i),  rho_t = pi_theta(y_t) / pi_old(y_t)
Differences from the released code, each a bug there: groups are formed before shuffling (never
split or mixed), w sums real tokens only (not padding), and `scale_rewards=True` really scales.
With A = 1 and theta = pi_old, w = 1 and this is GRPO without std scaling (tested).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from rapidbench.algorithms.base import AlgoOptions, Aggregation, Algorithm, LossInputs, Needs, group_mean, group_std
from rapidbench.algorithms.grpo import policy_loss
from rapidbench.registry import register_algorithm
from rapidbench.rollouts import Rollouts


@dataclass
class RAPIDOptions(AlgoOptions):
    steps_per_generation: int = 4  # A
    clip_eps: float = 0.2  # epsilon
    eta: float = 2.0  # importance-weight cap
    scale_rewards: bool = False
    kl_coef: float = 0.0  # beta; > 0 loads a frozen reference model
    aggregation: Aggregation = "seq-mean"  # paper: seq-mean for MBPP/MiniF2F, token-sum for MATH


def importance_weights(logps: torch.Tensor, old_logps: torch.Tensor, mask: torch.Tensor, eta: float) -> torch.Tensor:
    """w_i = clamp(exp(sum_t mask*(logp - old)), 0, eta), detached. logps, old_logps, mask: [N, T] -> [N]."""
    log_w = ((logps - old_logps) * mask).sum(1).detach()  # [N], padding contributes nothing
    return torch.exp(log_w.clamp(max=math.log(eta)))  # [N]; clamp in log space: no overflow


def rapid_advantages(
    rewards: torch.Tensor, weights: torch.Tensor, group: torch.Tensor, scale: bool, eps: float = 1e-4
) -> torch.Tensor:
    """A_i = r_i - (1/G) sum_j w_j r_j within the group. rewards, weights, group: [N] -> [N]."""
    adv = rewards - group_mean(weights * rewards, group)  # [N]
    if scale:
        adv = adv / (group_std(rewards, group) + eps)  # [N]
    return adv


@register_algorithm("rapid")
class RAPID(Algorithm):
    """RAPID: A off-policy steps per large generation, importance-weighted group baseline (arXiv 2510.03515)."""

    Options = RAPIDOptions

    def __init__(self, options: RAPIDOptions):
        super().__init__(options)
        if options.steps_per_generation < 1:
            raise ValueError("algo_args.steps_per_generation must be >= 1")
        self.needs = Needs(reference_model=options.kl_coef > 0, step_logprobs=True)
        self.aggregation = options.aggregation

    @property
    def steps_per_generation(self) -> int:
        return self.options.steps_per_generation

    def step_advantages(self, mb: Rollouts, current_logps: torch.Tensor | None) -> None:
        if current_logps is None:  # theta == pi_old: every weight is exactly 1
            w = torch.ones(mb.size)  # [n]
        else:
            w = importance_weights(current_logps, mb.old_logps, mb.completion_mask, self.options.eta)  # [n]
        mb.advantages = rapid_advantages(mb.rewards, w, mb.group, self.options.scale_rewards)
        # What explains an off-policy step (means, so averaging over micro-batches keeps them exact):
        # the weights' mean, the share at the cap and below 1/2, and the baseline's mass (1/G) sum_j w_j,
        # which, away from 1, moves every advantage of a group alike (partial credit: r > 0 for most)
        mb.extras.update(iw_mean=float(w.mean()), iw_capped=float((w >= self.options.eta * (1 - 1e-6)).float().mean()),
                         iw_low=float((w < 0.5).float().mean()), iw_mass=float(group_mean(w, mb.group).mean()))

    def loss(self, inp: LossInputs):
        o = self.options
        return policy_loss(self, inp, o.clip_eps, o.clip_eps, o.kl_coef)

    def describe(self) -> str:
        return super().describe() + f" eta={self.options.eta}"
