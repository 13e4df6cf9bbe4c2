"""The algorithm contract and the pure tensor pieces the built-in algorithms share.

An algorithm decides: group size G, optimizer steps per generation A and how rollouts are split
into mini-batches, advantages, the per-token loss and its aggregation, and which extra models it
needs. It is pure tensor code: no I/O, no DeepSpeed, no vLLM. Shapes: N completions in a batch,
n in a micro-batch, T completion tokens, G completions per prompt.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, ClassVar, Literal

import torch

from rapidbench.rollouts import Rollouts

Aggregation = Literal["seq-mean", "token-sum"]


@dataclass
class AlgoOptions:
    """Options every algorithm has (`algo_args.*`)."""

    group_size: int = 4  # G: completions per prompt
    prompts_per_step: int = 4  # B: prompts (whole groups) per optimizer step


@dataclass(frozen=True)
class Needs:
    """What the trainer must provide; the core asks this object, never the algorithm's name."""

    reference_model: bool = False  # frozen copy of the initial policy (KL)
    critic: bool = False  # value model (PPO)
    step_logprobs: bool = False  # current-policy log-probs of each mini-batch before its step (RAPID)
    old_logprobs_upfront: bool = False  # advantages read pi_old of every row (PPO's KL penalty in the reward)
    critic_lr: float = 0.0  # critic learning rate (0 = the policy's)


@dataclass
class LossInputs:
    """One micro-batch, as the trainer hands it to `Algorithm.loss`."""

    logps: torch.Tensor  # [n, T] current policy, with grad
    old_logps: torch.Tensor  # [n, T] pi_old (behaviour policy of this generation)
    mask: torch.Tensor  # [n, T] 1 on real completion tokens
    advantages: torch.Tensor  # [n] per sequence, or [n, T] per token
    norm: float  # the whole mini-batch's normaliser (sequences or tokens): micro-batches sum to the batch loss
    ref_logps: torch.Tensor | None = None  # [n, T]
    values: torch.Tensor | None = None  # [n, T] critic, with grad
    old_values: torch.Tensor | None = None  # [n, T]
    returns: torch.Tensor | None = None  # [n, T]


class Algorithm:
    Options: ClassVar[type] = AlgoOptions
    needs: Needs = Needs()
    # Sums a tensor over data-parallel ranks, for statistics of the whole batch (PPO's whitening).
    # Identity in one process; the runner sets an all-reduce when there are several ranks.
    reduce_sum: Callable[[torch.Tensor], torch.Tensor] = staticmethod(lambda t: t)

    def __init__(self, options: AlgoOptions):
        if options.group_size < 1 or options.prompts_per_step < 1:
            raise ValueError("algo_args.group_size and algo_args.prompts_per_step must be >= 1")
        self.options = options

    # -- the schedule ---------------------------------------------------------------------------
    @property
    def group_size(self) -> int:
        return self.options.group_size

    @property
    def steps_per_generation(self) -> int:
        """A: optimizer steps taken on one generation's rollouts."""
        return 1

    @property
    def prompts_per_generation(self) -> int:
        return self.steps_per_generation * self.options.prompts_per_step

    def minibatches(self, rollouts: Rollouts, generator: torch.Generator) -> list[torch.Tensor]:
        """Row indices of each optimizer step's mini-batch (default: whole groups, shuffled, A chunks)."""
        return split_groups(rollouts.group, self.steps_per_generation, generator)

    # -- rollouts -------------------------------------------------------------------------------
    max_refill: int = 0  # extra sampling rounds allowed to replace groups `keep` drops

    def keep(self, rollouts: Rollouts) -> torch.Tensor:
        """[N] bool: rows (whole groups) worth training on; the runner refills the rest (DAPO)."""
        return torch.ones(rollouts.size, dtype=torch.bool)

    def shape_rewards(self, rollouts: Rollouts, max_new_tokens: int) -> None:
        """Adjust task rewards in place before advantages (DAPO's overlong shaping)."""

    # -- advantages -----------------------------------------------------------------------------
    def advantages(self, rollouts: Rollouts) -> None:
        """Once per generation, after grading (and old/ref log-probs, values). Sets rollouts.advantages."""

    def step_advantages(self, mb: Rollouts, current_logps: torch.Tensor | None) -> None:
        """Before each step, for algorithms with `needs.step_logprobs`: current_logps [n, T], or None
        when the current policy is pi_old itself (the first step after generation)."""

    # -- loss -----------------------------------------------------------------------------------
    aggregation: Aggregation = "seq-mean"

    def normaliser(self, mb: Rollouts) -> float:
        """Denominator of the mini-batch loss: sequences ('seq-mean') or real tokens ('token-sum')."""
        if self.aggregation == "seq-mean":
            return float(mb.size)
        return float(max(1.0, mb.completion_mask.sum().item()))

    def value_loss(self, inp: LossInputs) -> tuple[torch.Tensor, dict[str, float]]:
        """Critic loss for algorithms with `needs.critic` (inp.values has grad)."""
        raise NotImplementedError

    def loss(self, inp: LossInputs) -> tuple[torch.Tensor, dict[str, float]]:
        """This micro-batch's share of the mini-batch loss, and stats. Stats must include
        `ratio_mean` (mean pi_theta/pi_old over real tokens): the staleness canary reads it."""
        raise NotImplementedError

    def describe(self) -> str:
        return f"G={self.group_size} B={self.options.prompts_per_step} A={self.steps_per_generation}"


# -------------------------------------------------------------------------------------------------
# pure pieces
# -------------------------------------------------------------------------------------------------
def split_groups(group: torch.Tensor, num_chunks: int, generator: torch.Generator) -> list[torch.Tensor]:
    """Shuffle whole groups, then cut them into `num_chunks` mini-batches of equal group count.

    Grouping happens before shuffling, so a group is never split across mini-batches and a
    mini-batch never mixes a prompt's completions with another's under one baseline (RAPID's
    released code shuffled first, then grouped: a bug).
    """
    ids = torch.unique(group)  # [P] sorted prompt ids
    if len(ids) % num_chunks:
        raise ValueError(f"{len(ids)} prompts cannot be split into {num_chunks} equal mini-batches")
    order = ids[torch.randperm(len(ids), generator=generator)]
    per = len(ids) // num_chunks
    out = []
    for c in range(num_chunks):
        chosen = order[c * per : (c + 1) * per]
        rows = torch.cat([torch.nonzero(group == g, as_tuple=False).flatten() for g in chosen])
        out.append(rows)
    return out


def group_mean(values: torch.Tensor, group: torch.Tensor) -> torch.Tensor:
    """Mean of `values` [N] over each row's group, broadcast back: [N]."""
    ids, inv = torch.unique(group, return_inverse=True)
    sums = torch.zeros(len(ids), dtype=values.dtype).index_add_(0, inv, values)  # [P]
    counts = torch.zeros(len(ids), dtype=values.dtype).index_add_(0, inv, torch.ones_like(values))  # [P]
    return (sums / counts)[inv]  # [N]


def group_std(values: torch.Tensor, group: torch.Tensor) -> torch.Tensor:
    """Unbiased std of `values` [N] within each row's group (torch.std convention, as GRPO): [N]."""
    mean = group_mean(values, group)  # [N]
    ids, inv = torch.unique(group, return_inverse=True)
    sq = torch.zeros(len(ids), dtype=values.dtype).index_add_(0, inv, (values - mean) ** 2)  # [P]
    counts = torch.zeros(len(ids), dtype=values.dtype).index_add_(0, inv, torch.ones_like(values))  # [P]
    return (sq / (counts - 1).clamp(min=1)).sqrt()[inv]  # [N]


def clipped_surrogate(
    logps: torch.Tensor, old_logps: torch.Tensor, adv: torch.Tensor, eps_low: float, eps_high: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """PPO-clip per token: -min(rho A, clip(rho, 1-eps_low, 1+eps_high) A).

    logps, old_logps: [n, T]; adv: [n] or [n, T]. Returns (loss [n, T], ratio [n, T], clipped [n, T]).
    """
    if adv.dim() == 1:
        adv = adv.unsqueeze(1)  # [n, 1] broadcasts over tokens
    ratio = torch.exp(logps - old_logps)  # [n, T]
    unclipped = ratio * adv  # [n, T]
    clipped = ratio.clamp(1 - eps_low, 1 + eps_high) * adv  # [n, T]
    loss = -torch.minimum(unclipped, clipped)  # [n, T]
    return loss, ratio, (clipped < unclipped).float()


def kl_k3(logps: torch.Tensor, ref_logps: torch.Tensor) -> torch.Tensor:
    """Schulman's k3 estimator of KL(pi || ref) per token: exp(d) - d - 1, d = ref - logp. [n, T]."""
    d = ref_logps - logps  # [n, T]
    return torch.exp(d) - d - 1


def aggregate(per_token: torch.Tensor, mask: torch.Tensor, mode: Aggregation, norm: float) -> torch.Tensor:
    """Sum a micro-batch's share of the mini-batch loss.

    'seq-mean': mean over each sequence's real tokens, summed over sequences, / norm (= sequences
    in the mini-batch). 'token-sum': sum over all real tokens / norm (= real tokens in the
    mini-batch). Either way the micro-batch shares add up to the one-big-batch loss.
    per_token, mask: [n, T] -> scalar.
    """
    masked = per_token * mask  # [n, T]
    if mode == "seq-mean":
        return (masked.sum(1) / mask.sum(1).clamp(min=1)).sum() / norm
    if mode == "token-sum":
        return masked.sum() / norm
    raise ValueError(f"unknown aggregation '{mode}'; valid: seq-mean, token-sum")


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> float:
    return float((x * mask).sum() / mask.sum().clamp(min=1))
