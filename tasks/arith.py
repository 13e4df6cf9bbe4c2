"""`arith`: seeded short arithmetic word problems, the embedded default task.

Difficulty is tuned for SmolLM2-135M-Instruct so that sampled accuracy starts around 20-50% with
many problems getting mixed right/wrong outcomes within a group (the signal group-baseline RL
needs). Level 1 = one-digit a+b and a*b (the default); level 2 = two-digit a+b and a-b (harder).
`terms` > 2 turns each sum into a chain of that many numbers (a+b+c...), a problem with steps; the
embedded model gets 4-6% of three-term sums right, asked for the working or not (task_probe-long-task).
Held-out problems use (a, op, b) triples never seen in training, so evaluation measures more than
memorisation of the training set.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field

from rapidbench.registry import register_task
from rapidbench.tasks.base import Grade, Problem, Task, TaskOptions, held_out

_TEMPLATES = {
    "+": [
        "What is {a} + {b}?",
        "{name} has {a} {thing}s and gets {b} more. How many {thing}s does {name} have now?",
        "Add {a} and {b}.",
    ],
    "-": [
        "What is {a} - {b}?",
        "{name} has {a} {thing}s and gives away {b}. How many {thing}s are left?",
    ],
    "*": [
        "What is {a} * {b}?",
        "{name} has {a} bags with {b} {thing}s in each. How many {thing}s is that in total?",
        "Multiply {a} by {b}.",
    ],
}
# Sums of more than two numbers (`terms` > 2): {nums} is "3, 5 and 2", {expr} is "3 + 5 + 2".
_CHAIN_TEMPLATES = [
    "What is {expr}?",
    "Add {nums}.",
    "{name} gets {nums} {thing}s on {k} days. How many {thing}s is that in total?",
]
_NAMES = ["Tom", "Ana", "Li", "Sam", "Mia", "Omar", "Eva", "Raj"]
_THINGS = ["apple", "pen", "book", "coin", "card", "ball"]
_LEVELS = {1: [("+", 1), ("*", 1)], 2: [("+", 2), ("-", 2)]}
_NUMBER = re.compile(r"-?\d+(?:,\d{3})*(?:\.\d+)?")


def last_number(text: str) -> float | None:
    """The last number in the text (the model rarely follows an answer format, so grade this)."""
    found = _NUMBER.findall(text)
    if not found:
        return None
    try:
        return float(found[-1].replace(",", ""))
    except ValueError:
        return None


@dataclass
class ArithOptions(TaskOptions):
    levels: list[int] = field(default_factory=lambda: [1])
    train_size: int = 2000
    test_size: int = 200
    test_fraction: float = 0.3  # share of (a, op, b) triples held out for testing
    ops: list[str] = field(default_factory=lambda: ["+", "-", "*"])  # keep only these operations of the levels
    suffix: str = " Reply with the number only."  # asked for the working, ~140-token answers it learns to drop
    terms: int = 2  # numbers in each sum; > 2 makes the sums chains (multiplication stays a*b)


@register_task("arith")
class Arith(Task):
    """Seeded one-digit arithmetic word problems (embedded default; offline; exact-match reward)."""

    Options = ArithOptions

    def __init__(self, options: ArithOptions, seed: int = 0):
        super().__init__(options, seed)
        bad = [lv for lv in options.levels if lv not in _LEVELS]
        if bad or not options.levels:
            raise ValueError(f"arith: unknown level {bad or '[]'}; valid levels: {sorted(_LEVELS)}")
        if not [k for lv in options.levels for k in _LEVELS[lv] if k[0] in options.ops]:
            raise ValueError(f"arith: levels {options.levels} have no operation among ops {options.ops}")
        if options.terms < 2:
            raise ValueError(f"arith: terms={options.terms}; a sum needs at least 2 numbers (terms: 2 or more)")
        # The data seed is fixed, not the run seed: every run and algorithm sees the same problems.
        self._train = self._generate("train", options.train_size, data_seed=1234)
        self._test = self._generate("test", options.test_size, data_seed=4321)

    def _generate(self, split: str, n: int, data_seed: int) -> list[Problem]:
        rng = random.Random(data_seed)
        out: list[Problem] = []
        want_test = split == "test"
        kinds = [k for lv in self.options.levels for k in _LEVELS[lv] if k[0] in self.options.ops]
        while len(out) < n:
            op, digits = rng.choice(kinds)
            lo, hi = (1, 9) if digits == 1 else (10, 99)
            a, b = rng.randint(lo, hi), rng.randint(lo, hi)
            if op == "+" and self.options.terms > 2:
                out += self._chain(rng, split, len(out), (a, b, *(rng.randint(lo, hi) for _ in range(self.options.terms - 2))))
                continue
            if op == "-" and b > a:
                a, b = b, a
            if held_out(f"{a}{op}{b}", self.options.test_fraction) != want_test:
                continue
            text = rng.choice(_TEMPLATES[op]).format(a=a, b=b, name=rng.choice(_NAMES), thing=rng.choice(_THINGS))
            answer = {"+": a + b, "-": a - b, "*": a * b}[op]
            out.append(Problem(id=f"{split}-{len(out)}", prompt=text + self.options.suffix, answer=answer,
                               meta={"a": a, "b": b, "op": op}))
        return out

    def _chain(self, rng: random.Random, split: str, index: int, nums: tuple[int, ...]) -> list[Problem]:
        """One sum of several numbers as a problem, or none if it belongs to the other split."""
        if held_out("+".join(map(str, nums)), self.options.test_fraction) != (split == "test"):
            return []
        listed = ", ".join(map(str, nums[:-1])) + f" and {nums[-1]}"
        text = rng.choice(_CHAIN_TEMPLATES).format(expr=" + ".join(map(str, nums)), nums=listed, k=len(nums),
                                                   name=rng.choice(_NAMES), thing=rng.choice(_THINGS))
        return [Problem(id=f"{split}-{index}", prompt=text + self.options.suffix, answer=sum(nums),
                        meta={"op": "+", "operands": list(nums)})]

    def train_problems(self) -> list[Problem]:
        return self._train

    def test_problems(self) -> list[Problem]:
        return self._test

    def grade(self, problem: Problem, completion: str) -> Grade:
        got = last_number(completion)
        if got is None:
            return Grade(0.0, False, "no_answer", "no number in the completion")
        ok = abs(got - float(problem.answer)) < 1e-9
        return Grade(float(ok), ok, "pass" if ok else "fail", f"expected {problem.answer}, got {got:g}")
