"""What a step costs, measured not assumed: predict seconds per optimizer step for any algorithm
schedule from a short calibration, and with it what RAPID's A buys in a given setting.

One optimizer step of a schedule with A steps per generation, B prompts per step, G completions
per prompt, prompts of P tokens and completions of L tokens (mean) costs

    gen(A*B*G sequences, L) / A          one generation shared by A steps
  + grade(A*B*G) / A                     the task's grader, per completion
  + sync / A                             weights to the sampler, once per generation
  + pass((A-1)/A * A*B*G rows) / A       pi_old for the rows trained after the first step (bf16)
  + train(B*G rows of P + L tokens)      forward, backward and optimizer step

with each term fitted on this machine (costmodel.fit):
  gen(N, L)   = g0 + g1 * L + g2 * N * L + g3 * N * P   decode steps of a batch of N, plus prefill
  train(n, T) = t0 + t1 * n * T                          tokens through forward and backward
  pass(n, T)  = p1 * n * T                               forward only
  grade(N)    = r1 * N
  sync        = s0
RAPID can only save the per-generation terms (gen, sync): its gain is bounded by their share of a
GRPO step, which is what `share` reports. Sample efficiency (how much a step teaches) is not in
the model: predicted seconds per step times measured steps to target gives the time to target.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Calibration:
    g0: float
    g1: float
    g2: float
    g3: float
    t0: float
    t1: float
    p1: float
    r1: float
    s0: float
    machine: str = ""

    @classmethod
    def load(cls, path: Path) -> "Calibration":
        data = json.loads(Path(path).read_text())
        return cls(**data.get("calibration", data))


@dataclass(frozen=True)
class Setting:
    A: int  # optimizer steps per generation (GRPO 1)
    B: int  # prompts per step
    G: int  # completions per prompt
    P: float  # prompt tokens
    L: float  # completion tokens, mean
    old_pass: bool = True  # pi_old from the trainer (bf16): rows after the first step need a pass


def step_parts(c: Calibration, s: Setting) -> dict[str, float]:
    """Seconds per optimizer step, by phase (each per-generation cost divided over A steps)."""
    n_gen = s.A * s.B * s.G
    gen = c.g0 + c.g1 * s.L + c.g2 * n_gen * s.L + c.g3 * n_gen * s.P
    passed = (s.A - 1) * s.B * s.G * (s.P + s.L) * c.p1 if s.old_pass else 0.0
    return {"gen_s": gen / s.A, "grade_s": c.r1 * n_gen / s.A, "sync_s": c.s0 / s.A, "pass_s": passed / s.A,
            "train_s": c.t0 + c.t1 * s.B * s.G * (s.P + s.L)}


def step_seconds(c: Calibration, s: Setting) -> float:
    return sum(step_parts(c, s).values())


def speedup(c: Calibration, s: Setting) -> float:
    """Seconds per step of the on-policy schedule (A = 1) over this one's."""
    return step_seconds(c, replace(s, A=1)) / step_seconds(c, s)


def share(c: Calibration, s: Setting) -> float:
    """The per-generation share (generation, grading, sync) of an on-policy step: RAPID's ceiling."""
    parts = step_parts(c, replace(s, A=1))
    return (parts["gen_s"] + parts["grade_s"] + parts["sync_s"]) / sum(parts.values())


def best_A(c: Calibration, s: Setting, candidates=(1, 2, 4, 8, 16)) -> int:
    """The A with the fewest seconds per step (per-step cost only: off-policy steps may teach less)."""
    return min(candidates, key=lambda a: step_seconds(c, replace(s, A=a)))


def _lstsq(rows: list[list[float]], y: list[float]) -> list[float]:
    coef, *_ = np.linalg.lstsq(np.array(rows, dtype=float), np.array(y, dtype=float), rcond=None)
    return [max(0.0, float(x)) for x in coef]  # a cost is never negative


def fit(gen: list[tuple[int, float, float, float]], train: list[tuple[int, float, float]],
        passes: list[tuple[int, float, float]], grade: list[tuple[int, float]], sync: list[float],
        machine: str = "") -> Calibration:
    """Least-squares fit of the model to measurements:
    gen [(N, L, P, seconds)], train [(rows, tokens per row, seconds)], passes [(rows, tokens, seconds)],
    grade [(completions, seconds)], sync [seconds]."""
    g = _lstsq([[1.0, L, N * L, N * P] for N, L, P, _ in gen], [t for *_, t in gen])
    t = _lstsq([[1.0, n * T] for n, T, _ in train], [s for *_, s in train])
    p = _lstsq([[n * T] for n, T, _ in passes], [s for *_, s in passes]) if passes else [t[1] / 3]
    r = _lstsq([[N] for N, _ in grade], [s for _, s in grade]) if grade else [0.0]
    return Calibration(*g, *t, p[0], r[0], float(np.median(sync)) if sync else 0.0, machine)
