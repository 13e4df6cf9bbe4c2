"""PPO (Schulman et al., 2017) for LLMs, as in Ouyang et al. 2022 / OpenRLHF: a critic (separate
value model, the policy's backbone with a scalar head), token-level GAE(gamma, lambda) with the task
reward on the last real token, optional per-token KL penalty to a frozen reference in the reward,
PPO-clip policy loss and clipped value loss, on the same trainer as every other algorithm.
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
    masked_mean,
    split_groups,
)
from rapidbench.registry import register_algorithm
from rapidbench.rollouts import Rollouts


@dataclass
class PPOOptions(AlgoOptions):
    clip_eps: float = 0.2
    value_clip: float = 0.2
    gamma: float = 1.0
    lam: float = 0.95
    kl_coef: float = 0.0  # per-token KL penalty in the reward; > 0 loads a reference model
    whiten_advantages: bool = True
    ppo_epochs: int = 1
    num_minibatches: int = 1
    critic_lr: float = 1e-5
    aggregation: Aggregation = "token-sum"


def token_rewards(rewards: torch.Tensor, mask: torch.Tensor, kl: torch.Tensor | None, kl_coef: float) -> torch.Tensor:
    """Reward on each sequence's last real token, minus kl_coef * KL per token. rewards [N], mask [N, T] -> [N, T]."""
    last = mask.sum(1).long().clamp(min=1) - 1  # [N] index of the last real token
    r = torch.zeros_like(mask)  # [N, T]
    r[torch.arange(len(rewards)), last] = rewards
    if kl is not None and kl_coef:
        r = r - kl_coef * kl * mask
    return r


def gae(rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float, lam: float):
    """Generalised advantage estimation over each sequence's real tokens (right padding).

    delta_t = r_t + gamma * V_{t+1} - V_t (V past the last real token is 0);
    A_t = delta_t + gamma * lam * A_{t+1}; returns R_t = A_t + V_t.
    rewards, values, mask: [N, T] -> (advantages [N, T], returns [N, T]), zero on padding.
    """
    N, T = rewards.shape
    adv = torch.zeros_like(rewards)  # [N, T]
    next_value = torch.zeros(N)  # [N]
    next_adv = torch.zeros(N)  # [N]
    for t in reversed(range(T)):
        m = mask[:, t]  # [N]
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        a = (delta + gamma * lam * next_adv) * m
        adv[:, t] = a
        next_value = values[:, t] * m  # padding positions pass zeros backwards
        next_adv = a
    return adv, (adv + values) * mask


def whiten(x: torch.Tensor, mask: torch.Tensor, eps: float = 1e-8, reduce_sum=lambda t: t) -> torch.Tensor:
    """(x - mean) / std over the real tokens of the whole batch. [N, T] -> [N, T].

    `reduce_sum` sums a tensor over data-parallel ranks, so each rank's shard is whitened with the
    global batch's mean and std, as one process would."""
    s = reduce_sum(torch.stack([(x * mask).sum(), mask.sum()]))  # [2]
    mean = s[0] / s[1]
    var = reduce_sum((((x - mean) ** 2) * mask).sum().reshape(1))[0] / s[1]
    return (x - mean) / (var.sqrt() + eps) * mask


def clipped_value_loss(values, old_values, returns, clip: float) -> torch.Tensor:
    """0.5 * max((V - R)^2, (clip(V, V_old +- clip) - R)^2) per token. [n, T] -> [n, T]."""
    v_clipped = old_values + (values - old_values).clamp(-clip, clip)
    return 0.5 * torch.maximum((values - returns) ** 2, (v_clipped - returns) ** 2)


@register_algorithm("ppo")
class PPO(Algorithm):
    """PPO with a critic model, token-level GAE, clipped value loss, optional KL penalty."""

    Options = PPOOptions

    def __init__(self, options: PPOOptions):
        super().__init__(options)
        self.needs = Needs(reference_model=options.kl_coef > 0, critic=True, critic_lr=options.critic_lr,
                           old_logprobs_upfront=options.kl_coef > 0)
        self.aggregation = options.aggregation

    @property
    def steps_per_generation(self) -> int:
        return self.options.ppo_epochs * self.options.num_minibatches

    @property
    def prompts_per_generation(self) -> int:
        return self.options.prompts_per_step * self.options.num_minibatches

    def minibatches(self, rollouts: Rollouts, generator: torch.Generator) -> list[torch.Tensor]:
        out = []
        for _ in range(self.options.ppo_epochs):
            out.extend(split_groups(rollouts.group, self.options.num_minibatches, generator))
        return out

    def advantages(self, rollouts: Rollouts) -> None:
        o, mask = self.options, rollouts.completion_mask
        kl = None
        if rollouts.ref_logps is not None:
            kl = rollouts.old_logps - rollouts.ref_logps  # [N, T] k1 estimate under the sampling policy
        r = token_rewards(rollouts.rewards, mask, kl, o.kl_coef)  # [N, T]
        adv, returns = gae(r, rollouts.values, mask, o.gamma, o.lam)  # [N, T] each
        rollouts.advantages = whiten(adv, mask, reduce_sum=self.reduce_sum) if o.whiten_advantages else adv
        rollouts.returns = returns

    def loss(self, inp: LossInputs):
        o = self.options
        per_token, ratio, clipped = clipped_surrogate(inp.logps, inp.old_logps, inp.advantages, o.clip_eps, o.clip_eps)
        loss = aggregate(per_token, inp.mask, self.aggregation, inp.norm)
        return loss, {"ratio_mean": masked_mean(ratio.detach(), inp.mask), "clip_frac": masked_mean(clipped, inp.mask)}

    def value_loss(self, inp: LossInputs):
        per_token = clipped_value_loss(inp.values, inp.old_values, inp.returns, self.options.value_clip)  # [n, T]
        loss = aggregate(per_token, inp.mask, self.aggregation, inp.norm)
        return loss, {"value_loss": masked_mean(per_token.detach(), inp.mask),
                      "value_mean": masked_mean(inp.values.detach(), inp.mask)}
