"""DAPO (Yu et al., 2025, arXiv 2503.14476): clip-higher, token-level loss, dynamic sampling,
overlong reward shaping. On-policy like GRPO; advantages are group-normalised.

- clip-higher: eps_low = 0.2, eps_high = 0.28 (asymmetric clip keeps exploration alive)
- token-level aggregation: sum over all real tokens / tokens in the mini-batch
- dynamic sampling: groups whose task rewards are all equal carry no signal; they are dropped and
  the runner samples more prompts to refill (up to `max_refill` extra rounds, then it keeps some
  dropped groups so batch shapes stay fixed, and says how many in `groups_short`)
- overlong shaping: R += min(0, ((L_max - L_cache) - L) / L_cache) for L in (L_max - L_cache, L_max],
  and -1 past it, with L_cache = overlong_buffer_frac * L_max
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from rapidbench.algorithms.base import AlgoOptions, Aggregation, Algorithm, LossInputs, group_std
from rapidbench.algorithms.grpo import grpo_advantages, policy_loss
from rapidbench.registry import register_algorithm
from rapidbench.rollouts import Rollouts


@dataclass
class DAPOOptions(AlgoOptions):
    eps_low: float = 0.2
    eps_high: float = 0.28
    aggregation: Aggregation = "token-sum"
    dynamic_sampling: bool = True
    max_refill: int = 3
    overlong_buffer_frac: float = 0.25  # L_cache / L_max; 0 disables shaping
    overlong_penalty: float = 1.0


def overlong_penalty(lengths: torch.Tensor, max_len: int, buffer: int, penalty: float = 1.0) -> torch.Tensor:
    """DAPO's soft overlong punishment per completion. lengths: [N] real tokens -> [N] (<= 0)."""
    if buffer <= 0:
        return torch.zeros_like(lengths, dtype=torch.float32)
    expected = max_len - buffer
    over = (lengths.float() - expected).clamp(min=0)  # [N]
    return -(over / buffer).clamp(max=1.0) * penalty


def informative_groups(rewards: torch.Tensor, group: torch.Tensor) -> torch.Tensor:
    """[N] bool: True for rows whose group's rewards are not all equal."""
    return group_std(rewards, group) > 0


@register_algorithm("dapo")
class DAPO(Algorithm):
    """DAPO: clip-higher, token-level loss, dynamic sampling, overlong shaping (on-policy)."""

    Options = DAPOOptions

    def __init__(self, options: DAPOOptions):
        super().__init__(options)
        self.aggregation = options.aggregation
        self.max_refill = options.max_refill if options.dynamic_sampling else 0

    def keep(self, rollouts: Rollouts) -> torch.Tensor:
        if not self.options.dynamic_sampling:
            return super().keep(rollouts)
        return informative_groups(rollouts.rewards, rollouts.group)

    def shape_rewards(self, rollouts: Rollouts, max_new_tokens: int) -> None:
        buffer = int(self.options.overlong_buffer_frac * max_new_tokens)
        lengths = rollouts.completion_mask.sum(1)  # [N]
        rollouts.rewards = rollouts.rewards + overlong_penalty(lengths, max_new_tokens, buffer, self.options.overlong_penalty)

    def advantages(self, rollouts: Rollouts) -> None:
        rollouts.advantages = grpo_advantages(rollouts.rewards, rollouts.group, scale=True)

    def loss(self, inp: LossInputs):
        return policy_loss(self, inp, self.options.eps_low, self.options.eps_high, 0.0)

