"""PG: REINFORCE with the group-mean baseline (the RAPID paper's simplest baseline).

Per token: -A_i * rho_t with rho_t = pi_theta / pi_old and no clipping. On-policy (theta == pi_old)
its gradient is exactly -A_i * grad log pi_theta(y_t), the REINFORCE gradient; writing it with the
ratio keeps the value and the staleness canary meaningful.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from rapidbench.algorithms.base import AlgoOptions, Aggregation, Algorithm, LossInputs, aggregate, masked_mean
from rapidbench.algorithms.grpo import grpo_advantages
from rapidbench.registry import register_algorithm
from rapidbench.rollouts import Rollouts


@dataclass
class PGOptions(AlgoOptions):
    aggregation: Aggregation = "seq-mean"


@register_algorithm("pg")
class PG(Algorithm):
    """REINFORCE with the group-mean baseline; on-policy, no clipping."""

    Options = PGOptions

    def __init__(self, options: PGOptions):
        super().__init__(options)
        self.aggregation = options.aggregation

    def advantages(self, rollouts: Rollouts) -> None:
        rollouts.advantages = grpo_advantages(rollouts.rewards, rollouts.group, scale=False)  # [N]

    def loss(self, inp: LossInputs):
        ratio = torch.exp(inp.logps - inp.old_logps)  # [n, T]
        per_token = -ratio * inp.advantages.unsqueeze(1)  # [n, T]
        loss = aggregate(per_token, inp.mask, self.aggregation, inp.norm)
        return loss, {"ratio_mean": masked_mean(ratio.detach(), inp.mask)}
