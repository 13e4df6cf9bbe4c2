"""One generation's optimizer steps, and the rule for where pi_old comes from, in one place.

pi_old (the policy that sampled the generation) enters every ratio pi_theta / pi_old. Its source:

- `sampler`: the behaviour log-probs the sampler returned (fp32 runs, where sampler and trainer
  agree to ~1e-5): no pass at all.
- `trainer`: the trainer's own log-probs at the weights that sampled, so the first ratio is
  exactly 1. Nobody pays for a pass it does not need: the first mini-batch's rows take pi_old
  from that step's own training forward (detached), which runs before any update; only rows
  trained on later (RAPID's steps 2..A, PPO's further mini-batches) get one no-grad pass before
  the first update. An on-policy algorithm (GRPO, PG, DAPO: one step per generation) therefore
  runs no extra forward, and RAPID pays (A - 1) / A of one. Algorithms whose advantages read
  pi_old (`needs.old_logprobs_upfront`, PPO with a KL penalty) get it for every row up front.
"""

from __future__ import annotations

from typing import Iterator

import torch

from rapidbench.algorithms.base import Algorithm
from rapidbench.rollouts import Rollouts


def rows_needing_old_pass(algo: Algorithm, batches: list[torch.Tensor], n_rows: int) -> torch.Tensor:
    """Rows whose pi_old must come from a no-grad pass before the first update (source `trainer`)."""
    if algo.needs.old_logprobs_upfront:
        return torch.arange(n_rows)
    later = torch.zeros(n_rows, dtype=torch.bool)
    for idx in batches[1:]:
        later[idx] = True
    later[batches[0]] = False  # the first step's own forward gives these
    return torch.nonzero(later).flatten()


def optimizer_steps(trainer, algo: Algorithm, rollouts: Rollouts, batches: list[torch.Tensor],
                    old_source: str) -> Iterator[tuple[Rollouts, dict[str, float]]]:
    """pi_old, reference log-probs, values and advantages once, then one optimizer step per
    mini-batch: yields (mini-batch, stats). The work before the first step runs inside the first
    `next()`, so a caller timing each step books it on the first."""
    N, T = rollouts.completion_mask.shape
    own_first = old_source == "trainer" and not algo.needs.old_logprobs_upfront
    if old_source == "sampler":
        rollouts.old_logps = rollouts.behaviour_logps
    else:
        rollouts.old_logps = torch.zeros(N, T)  # [N, T]
        rows = rows_needing_old_pass(algo, batches, N)
        if len(rows):
            sub = rollouts.select(rows)
            rollouts.old_logps[rows, : sub.completion_mask.shape[1]] = trainer.logprobs(sub)
    if algo.needs.reference_model:
        rollouts.ref_logps = trainer.logprobs(rollouts, which="ref")
    if algo.needs.critic:
        rollouts.values = trainer.values(rollouts)
    algo.advantages(rollouts)
    for j, idx in enumerate(batches):
        mb = rollouts.select(idx)
        first_own = own_first and j == 0
        stats = trainer.step(mb, algo, old_is_current=first_own)
        if first_own:  # later steps that revisit these rows (GRPO's iterations) read the same pi_old
            rollouts.old_logps[idx, : mb.old_logps.shape[1]] = mb.old_logps
        yield mb, stats
