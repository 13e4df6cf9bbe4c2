"""`count`: write out a run of numbers ("Count from 17 to 52."); passes on an exact run, partial credit below.

The long-completion task for the embedded model: the answer itself is long (30-40 numbers, ~130
tokens and more), so RL cannot shorten a completion without losing reward, unlike a short answer
after requested working, which the model learned to drop within minutes (pilot
results/runs/arith/amd-avx512bf16-2c/pilot-long-360s: 134 -> 25 tokens). The
135M model counts well enough to start with mixed groups and makes errors RL can remove (echoing
the question, starting at 1, running past the end until cut off, skipped or repeated numbers). Held-out
problems use (start, step, length) triples never seen in training. Measured before training
(benchmarks/task_probe.py, results/bench/amd-avx512bf16-2c/task_probe-count*.json): 7% of samples
exact and 28% of 8-sample groups mixed, so an exact-only reward leaves most steps without signal;
the partial credit (at most 0.5) gives nearly every group a spread while only an exact run passes.
"""

from __future__ import annotations

import hashlib
import random
import re
from dataclasses import dataclass, field

from rapidbench.registry import register_task
from rapidbench.tasks.base import Grade, Problem, Task, TaskOptions

_TEMPLATES = {
    1: ["Count from {a} to {b}.", "List the numbers from {a} to {b}."],
    -1: ["Count down from {a} to {b}.", "List the numbers from {a} down to {b}."],
}
_STEPPED = {1: "Count by {s}s from {a} to {b}.", -1: "Count down by {s}s from {a} to {b}."}
_INTEGER = re.compile(r"-?\d+")  # no thousands separators: numbers stay below 1000, commas separate


@dataclass
class CountOptions(TaskOptions):
    lengths: list[int] = field(default_factory=lambda: [30, 40])  # numbers per answer, inclusive range
    steps: list[int] = field(default_factory=lambda: [1])  # by 2s: 0 of 256 samples right before training
    down: bool = False  # also count down
    start_max: int = 50  # runs stay below 90: two-digit numbers, ~4 tokens each with the separator
    train_size: int = 2000
    test_size: int = 200
    test_fraction: float = 0.3
    suffix: str = " Write only the numbers, separated by commas."


def _held_out(start: int, step: int, length: int, fraction: float) -> bool:
    h = int(hashlib.sha256(f"{start}:{step}:{length}".encode()).hexdigest()[:8], 16)  # stable across processes
    return (h % 10_000) < fraction * 10_000


@register_task("count")
class Count(Task):
    """Write out a run of numbers (offline; passes on exactly the run, in order; partial credit below 0.5)."""

    Options = CountOptions

    def __init__(self, options: CountOptions, seed: int = 0):
        super().__init__(options, seed)
        if len(options.lengths) not in (1, 2) or not 2 <= options.lengths[0] <= options.lengths[-1]:
            raise ValueError(f"count: lengths {options.lengths} must be [n] or [min, max] with 2 <= min <= max")
        if not options.steps or min(options.steps) < 1:
            raise ValueError(f"count: steps {options.steps} must be positive integers, e.g. [1, 2]")
        if options.start_max < 1:
            raise ValueError(f"count: start_max={options.start_max} must be >= 1")
        self._lengths = (options.lengths[0], options.lengths[-1])
        # The data seed is fixed, not the run seed: every run and algorithm sees the same problems.
        self._train = self._generate("train", options.train_size, data_seed=1234)
        self._test = self._generate("test", options.test_size, data_seed=4321)

    def _generate(self, split: str, n: int, data_seed: int) -> list[Problem]:
        rng = random.Random(data_seed)
        out: list[Problem] = []
        directions = [1, -1] if self.options.down else [1]
        while len(out) < n:
            step, length, sign = rng.choice(self.options.steps), rng.randint(*self._lengths), rng.choice(directions)
            start = rng.randint(1, self.options.start_max)
            if sign < 0:
                start += step * (length - 1)  # counting down ends at >= 1
            if _held_out(start, sign * step, length, self.options.test_fraction) != (split == "test"):
                continue
            numbers = [start + sign * step * i for i in range(length)]
            template = rng.choice(_TEMPLATES[sign]) if step == 1 else _STEPPED[sign]
            text = template.format(a=numbers[0], b=numbers[-1], s=step)
            out.append(Problem(id=f"{split}-{len(out)}", prompt=text + self.options.suffix, answer=numbers,
                               meta={"start": start, "step": sign * step, "length": length}))
        return out

    def train_problems(self) -> list[Problem]:
        return self._train

    def test_problems(self) -> list[Problem]:
        return self._test

    def grade(self, problem: Problem, completion: str) -> Grade:
        got = [int(x) for x in _INTEGER.findall(completion)]
        want = list(problem.answer)
        if not got:
            return Grade(0.0, False, "no_answer", "no number in the completion")
        # Before the run, an introduction may name its ends and step ("Counting by 2s from 12 to 72:
        # 12, 14, ...") and nothing else; the run is read from the start that matches most of it.
        intro = {want[0], want[-1], abs(problem.meta["step"])}
        starts = [i for i, g in enumerate(got) if g == want[0] and set(got[:i]) <= intro] or [0]
        run = max((got[i:] for i in starts), key=lambda r: _common_prefix(r, want))
        if run == want:
            return Grade(1.0, True, "pass", f"all {len(want)} numbers")
        # Partial credit, at most half: the share of the run right from its start, over the longer of
        # the two runs, so stopping early and running on past the end both cost. Only an exact run passes.
        right = _common_prefix(run, want)
        return Grade(0.5 * right / max(len(run), len(want)), False, "fail",
                     f"{right} of {len(want)} numbers right from the start, {len(run)} written")


def _common_prefix(a: list[int], b: list[int]) -> int:
    return next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
