"""`count`: write out a run of numbers ("Count from 17 to 52."); passes on an exact run, partial credit below.

The long-completion task for the embedded model: the answer itself is long (30-40 numbers, ~140
tokens), so RL cannot shorten a completion without losing reward, unlike a short answer after
requested working, which the model learned to drop within minutes (pilot
results/runs/arith/amd-avx512bf16-2c/pilot-long-360s: 134 -> 25 tokens). The 135M model counts well
enough to start with mixed groups and makes errors RL can remove (echoing the question, starting at
1, running past the end until cut off, skipped or repeated numbers). Held-out problems are whole
ranges (lowest number, step, length) never trained on, in either direction.

The answer is the completion's last block of numbers with nothing but separators between them;
words before it are an introduction and ignored. Measured before training (benchmarks/
task_probe.py, results/bench/amd-avx512bf16-2c/task_probe-count*.json, an earlier grader that only
forgave the ends and step before the run): 7% of samples exact and 28% of 8-sample groups mixed, so
an exact-only reward leaves most steps without signal; the partial credit (at most 0.5, by the
longest common subsequence) gives nearly every group a spread while only an exact run passes. An
adversarial review (a helper, 2026-11-27) found the first grader's gaps, mended here: repeated
numbers before the run passed, one early mistake cost all later credit, '-' bullets read as
negative numbers, a 5000-digit literal crashed int(), options that left a split empty looped
forever, the test set repeated runs, and a run's reverse could sit in the other split.
The partial credit leaves a plateau (AMX long sweep, results/ANALYSIS.md): a policy that starts right
but counts on past the end to the token cap earns ~0.38 a sample and little for each number fewer;
most runs leave it within minutes, three of 50 did not in 640 s. The default stays as is while the sweeps
that fixed this task run; `run_on_credit=false` pays nothing for a run past its last number (a next
version, not yet swept; one seed of GRPO and RAPID with it never fell onto the plateau). A run cut at
the token cap before its end keeps the stopping-early credit: the grader sees text, not the finish
reason, and that case is not the plateau.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field

from rapidbench.registry import register_task
from rapidbench.tasks.base import Grade, Problem, Task, TaskOptions, held_out

_TEMPLATES = {
    1: ["Count from {a} to {b}.", "List the numbers from {a} to {b}."],
    -1: ["Count down from {a} to {b}.", "List the numbers from {a} down to {b}."],
}
_STEPPED = {1: "Count by {s}s from {a} to {b}.", -1: "Count down by {s}s from {a} to {b}."}
# The answer is the last block of numbers joined only by separators (no word between them): text
# before it is an introduction and is ignored, whatever it says ("Counting from 26 to 61: 26, ...").
# Only digits: runs never go below 1, so a '-' is a separator ("-26\n-27" bullets, "26-61"); at most
# 7 digits per number, so no completion makes int() refuse a huge literal.
_BLOCK = re.compile(r"\d{1,7}(?:[\s,;.\-]+\d{1,7})*")
_NUMBER = re.compile(r"\d{1,7}")
_LARGEST = 999  # numbers stay below 1000: a thousands separator would split one


@dataclass
class CountOptions(TaskOptions):
    lengths: list[int] = field(default_factory=lambda: [30, 40])  # numbers per answer, inclusive range
    steps: list[int] = field(default_factory=lambda: [1])  # by 2s: 0 of 256 samples right before training
    down: bool = False  # also count down
    start_max: int = 50  # runs stay below 90: two-digit numbers, ~4 tokens each with the separator
    train_size: int = 2000  # drawn with repetition from the training runs
    test_size: int = 200  # distinct held-out runs, at most as many as there are
    test_fraction: float = 0.3
    suffix: str = " Write only the numbers, separated by commas."
    run_on_credit: bool = True  # false: a run past its last number earns 0 (no credit on the run-on plateau)


@register_task("count")
class Count(Task):
    """Write out a run of numbers (offline; passes on exactly the run, in order; partial credit below 0.5)."""

    Options = CountOptions

    def __init__(self, options: CountOptions, seed: int = 0):
        super().__init__(options, seed)
        o = options
        if len(o.lengths) not in (1, 2) or not 2 <= o.lengths[0] <= o.lengths[-1]:
            raise ValueError(f"count: lengths {o.lengths} must be [n] or [min, max] with 2 <= min <= max")
        if not o.steps or min(o.steps) < 1:
            raise ValueError(f"count: steps {o.steps} must be positive integers, e.g. [1, 2]")
        if o.start_max < 1 or o.start_max + max(o.steps) * (o.lengths[-1] - 1) > _LARGEST:
            raise ValueError(f"count: start_max={o.start_max} must be >= 1 and keep every number <= {_LARGEST} "
                             f"(start_max + largest step x (longest - 1))")
        if not 0 < o.test_fraction < 1 or o.train_size < 1 or o.test_size < 1:
            raise ValueError("count: test_fraction must lie in (0, 1) and train_size, test_size be >= 1")
        # Every (first number, step, length) there is, split by range; the data seeds are fixed, not
        # the run seed: every run and algorithm sees the same problems.
        runs = [(low, step, length, sign) for low in range(1, o.start_max + 1) for step in sorted(set(o.steps))
                for length in range(o.lengths[0], o.lengths[-1] + 1) for sign in ([1, -1] if o.down else [1])]
        test, train = [], []
        for r in runs:  # held out by the range, not the direction: a run and its reverse share a split
            (test if held_out(f"{r[0]}:{r[1]}:{r[2]}", o.test_fraction) else train).append(r)
        if not test or not train:
            raise ValueError(f"count: {len(runs)} possible runs leave the {'test' if not test else 'training'} split "
                             "empty: widen lengths or start_max, or move test_fraction towards 0.5")
        rng = random.Random(4321)
        rng.shuffle(test)
        self._test = [self._problem("test", i, r, rng) for i, r in enumerate(test[: o.test_size])]
        rng = random.Random(1234)
        self._train = [self._problem("train", i, rng.choice(train), rng) for i in range(o.train_size)]

    def _problem(self, split: str, index: int, run: tuple[int, int, int, int], rng: random.Random) -> Problem:
        low, step, length, sign = run
        numbers = [low + step * i for i in range(length)][::sign]
        template = rng.choice(_TEMPLATES[sign]) if step == 1 else _STEPPED[sign]
        text = template.format(a=numbers[0], b=numbers[-1], s=step)
        return Problem(id=f"{split}-{index}", prompt=text + self.options.suffix, answer=numbers,
                       meta={"start": numbers[0], "step": sign * step, "length": length})

    def train_problems(self) -> list[Problem]:
        return self._train

    def test_problems(self) -> list[Problem]:
        return self._test

    def grade(self, problem: Problem, completion: str) -> Grade:
        blocks = _BLOCK.findall(completion)
        if not blocks:
            return Grade(0.0, False, "no_answer", "no number in the completion")
        run, want = [int(x) for x in _NUMBER.findall(blocks[-1])], list(problem.answer)
        if run == want:
            return Grade(1.0, True, "pass", f"all {len(want)} numbers")
        if not self.options.run_on_credit and _past_the_end(run, want, problem.meta["step"]):
            return Grade(0.0, False, "fail", f"ran past {want[-1]}: {len(run)} numbers written, {len(want)} wanted")
        # Partial credit, at most half: the longest common subsequence over the longer of the two runs,
        # so a skipped, repeated or wrong number costs one, and stopping early or running on past
        # the end cost what they leave out or add. Only the exact run passes.
        common = _lcs(run, want)
        return Grade(0.5 * common / max(len(run), len(want)), False, "fail",
                     f"{common} of {len(want)} numbers in order, {len(run)} written")


def _past_the_end(run: list[int], want: list[int], step: int) -> bool:
    """The run goes on after the answer's last number: it writes that number before its own end, or
    it ends beyond it in the counting direction (a skipped last number does not hide a run-on)."""
    return want[-1] in run[:-1] or (run[-1] - want[-1]) * step > 0


def _lcs(a: list[int], b: list[int]) -> int:
    """Length of the longest common subsequence (O(len(a) * len(b)); runs are tens of numbers)."""
    row = [0] * (len(b) + 1)
    for x in a:
        prev = 0  # row[j - 1] of the previous row
        for j, y in enumerate(b, 1):
            prev, row[j] = row[j], prev + 1 if x == y else max(row[j], row[j - 1])
    return row[-1]
