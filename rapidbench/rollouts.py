"""The one batch type every layer passes along.

Layout: each row is a left-padded prompt of width P followed by a right-padded completion of width
T, so completion tokens sit at columns P..P+T-1 for every row and the logits that predict them at
P-1..P+T-2. N = number of completions (prompts x group size G).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import torch


@dataclass
class Completion:
    """One sampled completion, as a sampler returns it."""

    prompt_index: int  # which prompt of the generate() call it answers
    token_ids: list[int]
    text: str
    logprobs: list[float]  # behaviour log-prob of each sampled token (temperature applied)
    finish_reason: str  # "stop" | "length"


@dataclass
class Rollouts:
    input_ids: torch.Tensor  # [N, P+T] long
    attention_mask: torch.Tensor  # [N, P+T] long, 0 on padding
    completion_mask: torch.Tensor  # [N, T] float, 1 on real completion tokens (EOS included)
    behaviour_logps: torch.Tensor  # [N, T] float, sampler log-probs, 0 on padding
    group: torch.Tensor  # [N] long, prompt id: completions with equal id answer the same prompt
    rewards: torch.Tensor  # [N] float
    prompt_len: int  # P
    finished: torch.Tensor  # [N] bool, ended by EOS/stop (not by the length limit)
    # filled later by the trainer / algorithm:
    old_logps: torch.Tensor | None = None  # [N, T] pi_old, recomputed by the trainer once per generation
    ref_logps: torch.Tensor | None = None  # [N, T] frozen reference model
    values: torch.Tensor | None = None  # [N, T] critic values (PPO)
    advantages: torch.Tensor | None = None  # [N] per sequence or [N, T] per token
    returns: torch.Tensor | None = None  # [N, T] value targets (PPO)
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return self.input_ids.shape[0]

    @property
    def completion_ids(self) -> torch.Tensor:  # [N, T]
        return self.input_ids[:, self.prompt_len :]

    @property
    def num_tokens(self) -> int:
        """Real completion tokens (what the model generated)."""
        return int(self.completion_mask.sum().item())

    def select(self, idx: torch.Tensor) -> "Rollouts":
        """Rows `idx` of every tensor field; padding columns no row needs are trimmed."""
        out = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, torch.Tensor):
                out[f.name] = v.index_select(0, idx)
            elif f.name == "extras":
                out[f.name] = {
                    k: (x.index_select(0, idx) if isinstance(x, torch.Tensor) and x.shape[:1] == self.group.shape else x)
                    for k, x in v.items()
                }
            else:
                out[f.name] = v
        return Rollouts(**out).trim()

    def trim(self) -> "Rollouts":
        """Drop all-padding columns at the left of the prompt and the right of the completion."""
        P = self.prompt_len
        prompt_real = self.attention_mask[:, :P].sum(0) > 0  # [P]
        left = int(prompt_real.float().argmax().item()) if prompt_real.any() else P
        comp_real = self.completion_mask.sum(0) > 0  # [T]
        T = int(comp_real.nonzero().max().item()) + 1 if comp_real.any() else 1
        if left == 0 and T == self.completion_mask.shape[1]:
            return self
        out = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if f.name in ("input_ids", "attention_mask"):
                out[f.name] = v[:, left : P + T]
            elif isinstance(v, torch.Tensor) and v.dim() == 2 and v.shape[1] == self.completion_mask.shape[1]:
                out[f.name] = v[:, :T]
            else:
                out[f.name] = v
        out["prompt_len"] = P - left
        return Rollouts(**out)


def build_rollouts(
    prompt_ids: list[list[int]],
    completions: list[Completion],
    rewards: list[float],
    pad_id: int,
    group_offset: int = 0,
) -> Rollouts:
    """Pad prompts left and completions right into one Rollouts batch."""
    N = len(completions)
    P = max(len(prompt_ids[c.prompt_index]) for c in completions)
    T = max(1, max(len(c.token_ids) for c in completions))
    input_ids = torch.full((N, P + T), pad_id, dtype=torch.long)
    attention = torch.zeros((N, P + T), dtype=torch.long)
    cmask = torch.zeros((N, T), dtype=torch.float32)
    blogp = torch.zeros((N, T), dtype=torch.float32)
    for i, c in enumerate(completions):
        p = prompt_ids[c.prompt_index]
        input_ids[i, P - len(p) : P] = torch.tensor(p, dtype=torch.long)
        attention[i, P - len(p) : P] = 1
        n = len(c.token_ids)
        if n:
            input_ids[i, P : P + n] = torch.tensor(c.token_ids, dtype=torch.long)
            attention[i, P : P + n] = 1
            cmask[i, :n] = 1.0
            blogp[i, :n] = torch.tensor(c.logprobs, dtype=torch.float32)
    return Rollouts(
        input_ids=input_ids,
        attention_mask=attention,
        completion_mask=cmask,
        behaviour_logps=blogp,
        group=torch.tensor([c.prompt_index + group_offset for c in completions], dtype=torch.long),
        rewards=torch.tensor(rewards, dtype=torch.float32),
        prompt_len=P,
        finished=torch.tensor([c.finish_reason == "stop" for c in completions], dtype=torch.bool),
    )


def concat(batches: list[Rollouts]) -> Rollouts:
    """Stack batches with different P/T by re-padding (used when DAPO refills groups)."""
    if len(batches) == 1:
        return batches[0]
    P = max(b.prompt_len for b in batches)
    T = max(b.completion_mask.shape[1] for b in batches)
    out: dict[str, Any] = {"prompt_len": P, "extras": {}}
    for f in dataclasses.fields(Rollouts):
        if f.name in ("prompt_len", "extras"):
            continue
        vals = [getattr(b, f.name) for b in batches]
        if any(v is None for v in vals):
            out[f.name] = None
            continue
        padded = []
        for b, v in zip(batches, vals):
            if f.name in ("input_ids", "attention_mask"):
                left = P - b.prompt_len
                right = T - b.completion_mask.shape[1]
                # masked positions: the token id there is never attended to, 0 is as good as pad
                v = torch.nn.functional.pad(v, (left, right), value=0)
            elif v.dim() == 2:
                v = torch.nn.functional.pad(v, (0, T - v.shape[1]), value=0)
            padded.append(v)
        out[f.name] = torch.cat(padded, 0)
    return Rollouts(**out)
