"""What a step costs, measured not assumed: predict seconds per optimizer step for any algorithm
schedule from a short calibration, and with it what RAPID's A buys in a given setting.

One optimizer step of a schedule with A steps per generation, B prompts per step, G completions
per prompt, prompts of P tokens, completions of L tokens on average and L_max at the longest, costs

    gen(A*B*G sequences) / A             one generation shared by A steps
  + grade(A*B*G) / A                     the task's grader, per completion
  + sync / A                             weights to the sampler, once per generation
  + pass((A-1)*B*G rows) / A             pi_old for the rows trained after the first step (bf16)
  + train(B*G rows)                      forward, backward and optimizer step

with each term fitted on this machine (costmodel.fit):
  gen(N)    = g0 + g1 * L_max + g2 * N * L + g3 * N * P
              a generation decodes until its longest completion (L_max steps), each step costing
              per live sequence; plus the prefill
  train(n)  = t0 + t1 * n * (P + L) + t2 * n * (L_max - L)
              tokens through forward and backward, plus the padding of length-sorted micro-batches,
              which grows with the spread of lengths
  pass(n)   = p1 * n * (P + L)                           forward only
  grade(N)  = r1 * N
  sync      = s0
The calibration (benchmarks/cost_model.py) fits them to short runs of the suite's own loop, whose
shapes change every step as a real run's do: timing one shape over and over measured kernels
warmer than any run sees (the first calibration over-predicted training by ~35% and under-
predicted generation, which waits for the longest completion, not the mean one).
RAPID can only save the per-generation terms (gen, sync): its gain is bounded by their share of a
GRPO step, which is what `share` reports. Sample efficiency (how much a step teaches) is not in
the model: predicted seconds per step times measured steps to target gives the time to target.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields, replace
from pathlib import Path

import numpy as np
import scipy.optimize


@dataclass(frozen=True)
class Calibration:
    g0: float
    g1: float
    g2: float
    g3: float
    t0: float
    t1: float
    t2: float
    p1: float
    r1: float
    s0: float
    machine: str = ""

    @classmethod
    def load(cls, path: Path) -> "Calibration":
        data = json.loads(Path(path).read_text())
        data = data.get("calibration", data)
        missing = [f.name for f in fields(cls) if f.name not in data and f.name != "machine"]
        if missing:
            raise ValueError(f"{path} lacks {', '.join(missing)}: it was made by an older cost model; "
                             "re-run `python benchmarks/cost_model.py` on this machine")
        return cls(**data)


@dataclass(frozen=True)
class Setting:
    A: int  # optimizer steps per generation (GRPO 1)
    B: int  # prompts per step
    G: int  # completions per prompt
    P: float  # prompt tokens
    L: float  # completion tokens, mean
    old_pass: bool = True  # pi_old from the trainer (bf16): rows after the first step need a pass
    L_max: float = 0.0  # the longest completion of a generation (0: every completion is L long)

    @property
    def longest(self) -> float:
        return max(self.L_max, self.L)


def step_parts(c: Calibration, s: Setting) -> dict[str, float]:
    """Seconds per optimizer step, by phase (each per-generation cost divided over A steps)."""
    n_gen, n = s.A * s.B * s.G, s.B * s.G
    gen = c.g0 + c.g1 * s.longest + c.g2 * n_gen * s.L + c.g3 * n_gen * s.P
    passed = (s.A - 1) * n * (s.P + s.L) * c.p1 if s.old_pass else 0.0
    return {"gen_s": gen / s.A, "grade_s": c.r1 * n_gen / s.A, "sync_s": c.s0 / s.A, "pass_s": passed / s.A,
            "train_s": c.t0 + c.t1 * n * (s.P + s.L) + c.t2 * n * (s.longest - s.L)}


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


def schedule(config: dict) -> tuple[int, int, int]:
    """(A, B, G) of a run: optimizer steps per generation, prompts per step, completions per prompt."""
    a = config.get("algo_args", {})
    A = a.get("steps_per_generation", 1) * a.get("num_iterations", 1) * a.get("ppo_epochs", 1)
    return A, a["prompts_per_step"], a["group_size"]


def observations(config: dict, metrics: list[dict], P: float) -> dict[str, list]:
    """A run's per-step metrics as cost-model observations (costmodel.fit's arguments). The first
    generation and its steps are left out: warming up is not a per-step cost."""
    A, B, G = schedule(config)
    obs = {"gen": [], "train": [], "grade": [], "sync": []}
    L = Lm = None
    for m in metrics:
        if m["gen_s"] > 0:
            N = A * B * G
            L, Lm = m["tokens"] / N, m["longest"]
            if m["generation"] == 0:
                continue
            obs["gen"].append((N, L, Lm, P, m["gen_s"]))
            obs["grade"].append((N, m["grade_s"]))
        if m["generation"] == 0:
            continue
        pass_rows = round((m["fwd_per_sample"] - 1) * m["samples"])  # rows of a no-grad pi_old pass booked here
        obs["train"].append((m["samples"], P, L, Lm, pass_rows, m["train_s"]))
        if m["sync_s"] > 0:
            obs["sync"].append(m["sync_s"])
    return obs


def _nonneg_lstsq(rows: list[list[float]], y: list[float]) -> list[float]:
    """Least squares with every coefficient >= 0 (a cost is never negative): scipy's NNLS, the
    optimum, not free least squares clipped at 0 (which leaves the other coefficients where the
    negative one had pulled them)."""
    coef, _ = scipy.optimize.nnls(np.array(rows, dtype=float), np.array(y, dtype=float))
    return [float(x) for x in coef]


def fit(gen: list[tuple[int, float, float, float, float]], train: list[tuple[int, float, float, float, int, float]],
        grade: list[tuple[int, float]], sync: list[float], machine: str = "") -> Calibration:
    """Fit the model to observed steps:
    gen [(N sequences, mean L, L_max, P, seconds)];
    train [(rows n, P, mean L, L_max, pi_old pass rows booked on this step, seconds)];
    grade [(completions, seconds)]; sync [seconds]."""
    g = _nonneg_lstsq([[1.0, Lm, N * L, N * P] for N, L, Lm, P, _ in gen], [t for *_, t in gen])
    t = _nonneg_lstsq([[1.0, n * (P + L), n * (Lm - L), k * (P + L)] for n, P, L, Lm, k, _ in train],
                      [s for *_, s in train])
    r = _nonneg_lstsq([[N] for N, _ in grade], [s for _, s in grade]) if grade else [0.0]
    return Calibration(*g, *t, r[0], float(np.median(sync)) if sync else 0.0, machine)
